"""The usage API's package (tokens/usage_api/) runs one way: each module imports only the
modules listed before it (the order of its __init__ docstring), so no cycle can come back
through a function-level import; and its SQL takes names from the models."""

import datetime as dt
from pathlib import Path

from accounts.models import Membership, Organization, User
from tests.test_layers import _imports
from tokens.models import (
    AllocationPolicy,
    ApiKey,
    DailyUsage,
    MonthlyUsage,
    TokenKind,
    UsageEvent,
)
from tokens.usage_api import postgres

PACKAGE = Path(postgres.__file__).parent
ORDER = [
    "results",
    "errors",
    "tables",
    "keys",
    "members",
    "protocol",
    "sqlite",
    "postgres",
    "hook",
    "recording",
    "balance",
    "openapi",
    "views",
    "urls",
    "pool",
    "batcher",
    "gate",
    "fastpath",
]


def test_every_module_of_the_package_is_in_the_order():
    modules = {path.stem for path in PACKAGE.glob("*.py")} - {"__init__"}
    assert modules == set(ORDER)


def test_each_module_imports_only_the_modules_before_it():
    upward = []
    for position, name in enumerate(ORDER):
        for imported, in_function, line in _imports(PACKAGE / f"{name}.py"):
            if imported.startswith("tokens.usage_api"):
                target = imported.removeprefix("tokens.usage_api").lstrip(".")
                if in_function or target not in ORDER[:position]:
                    upward.append(f"{name}.py:{line} imports {imported}")
    assert not upward


def test_the_statement_takes_its_tables_from_the_models_and_its_literals_as_parameters():
    models = [ApiKey, Organization, AllocationPolicy, User, Membership, UsageEvent]
    for sql in (postgres.ONE_SQL, postgres.BATCH_SQL):
        for model in [*models, MonthlyUsage, DailyUsage]:
            assert f'"{model._meta.db_table}"' in sql, model
        assert "'active'" not in sql and "'inference'" not in sql
    assert f'"{MonthlyUsage._meta.db_table}"' in postgres.ENSURE_MONTH_SQL
    params = postgres.params([], dt.datetime(2026, 3, 10, tzinfo=dt.UTC))
    assert params["active"] == Organization.Status.ACTIVE
    assert params["inference"] == TokenKind.INFERENCE
