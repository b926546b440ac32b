"""The audit trail moved from `analytics` to `audit` (audit 0001, analytics 0005, accounts 0004):
a database migrated by the code before the move keeps every row, its chain and its permissions."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from audit import chain, integrity
from audit.models import AuditChain, AuditLog
from audit.services import audit_record

# The migration state of main before the move (its leaf migrations).
BEFORE = [
    ("accounts", "0003_staff_groups"),
    ("analytics", "0004_audit_chain_seq_unique"),
    ("tokens", "0010_usage_rollups_keyed_by_organization"),
    ("audit", None),
]


def _migrate(targets) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    ContentType.objects.clear_cache()


def _latest() -> list[tuple[str, str]]:
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


@pytest.mark.django_db(transaction=True)
def test_moving_the_audit_trail_to_its_own_app_keeps_every_row_chain_and_permission(
    org_a, org_b, alice, carol
):
    _migrate(BEFORE)
    try:
        old = MigrationExecutor(connection).loader.project_state(BEFORE[:3]).apps
        # Rows written the way the old code wrote them: the same table, sealed on the chain.
        for n in range(3):
            audit_record(action="allocation.changed", organization=org_a, actor=alice, new=n)
        audit_record(action="allocation.changed", organization=org_b, actor=carol, new=9)
        audit_record(action="auth.login_failed", email="who@example.com")
        OldContentType = old.get_model("contenttypes", "ContentType")
        OldPermission = old.get_model("auth", "Permission")
        OldGroup = old.get_model("auth", "Group")
        content_type, _ = OldContentType.objects.get_or_create(
            app_label="analytics", model="auditlog"
        )
        permission, _ = OldPermission.objects.get_or_create(
            content_type=content_type, codename="view_auditlog", defaults={"name": "view"}
        )
        lead, _ = OldGroup.objects.get_or_create(name="Sales lead")
        lead.permissions.add(permission)
        rows_before = list(
            AuditLog.objects.order_by("id").values_list("id", "chain", "seq", "prev_hash", "hash")
        )
        heads_before = list(AuditChain.objects.order_by("key").values_list())
    finally:
        _migrate(_latest())

    assert (
        list(AuditLog.objects.order_by("id").values_list("id", "chain", "seq", "prev_hash", "hash"))
        == rows_before
    )
    assert list(AuditChain.objects.order_by("key").values_list()) == heads_before
    assert len(rows_before) == 5
    assert all(verdict.intact for verdict in integrity.verify_all())

    # The permission row is the same one, under the new label, and the group still holds it.
    moved = ContentType.objects.get(app_label="audit", model="auditlog")
    assert moved.pk == content_type.pk
    assert not ContentType.objects.filter(app_label="analytics", model="auditlog").exists()
    assert Permission.objects.get(content_type=moved, codename="view_auditlog").pk == permission.pk
    assert Group.objects.get(name="Sales lead").permissions.filter(pk=permission.pk).exists()

    # Writing goes on from where the chain was.
    row = audit_record(action="allocation.changed", organization=org_a, actor=alice, new=3)
    assert row.seq == 4 and row.chain == chain.chain_key(org_a.pk)
    assert integrity.verify(chain.chain_key(org_a.pk)).intact
