"""The demo's organizations, logins, names and per-user limits, and how limits fit the pools."""

import random
from dataclasses import dataclass, field

from accounts.models import Membership, Organization
from tokens.models import TokenKind

PASSWORD = "demo-pass-2026"
MARKER_SLUG = "department-of-demos"
SALES_EMAIL = "sales@example.com"
ADMIN_EMAIL = "admin@demo.example.com"
MEMBER_EMAIL = "member@demo.example.com"
EVENT_DAYS = 90

INFERENCE_MODELS = ["gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet", "llama-3-70b"]
INFERENCE_WEIGHTS = [5, 3, 4, 2]
EMBEDDING_MODELS = ["text-embedding-3-large", "text-embedding-3-small"]
EMBEDDING_WEIGHTS = [3, 1]
# The model catalogue sales keep: (gateway name, display name, kind, active). Every model the
# usage uses, an expensive one no one used yet, and a retired one.
CATALOGUE = [
    ("gpt-4o", "GPT-4o", TokenKind.INFERENCE, True),
    ("gpt-4o-mini", "GPT-4o mini", TokenKind.INFERENCE, True),
    ("claude-3-5-sonnet", "Claude 3.5 Sonnet", TokenKind.INFERENCE, True),
    ("llama-3-70b", "Llama 3 70B", TokenKind.INFERENCE, True),
    ("o1", "o1 (reasoning, expensive)", TokenKind.INFERENCE, True),
    ("gpt-3.5-turbo", "GPT-3.5 Turbo (retired)", TokenKind.INFERENCE, False),
    ("text-embedding-3-large", "Text Embedding 3 Large", TokenKind.EMBEDDING, True),
    ("text-embedding-3-small", "Text Embedding 3 Small", TokenKind.EMBEDDING, True),
]

# fmt: off
FIRST_NAMES = [
    "Ada", "Alan", "Barbara", "Brian", "Carmen", "Chen", "Dana", "Dmitri", "Elena", "Emeka",
    "Farah", "Felix", "Grace", "Gustavo", "Hana", "Hugo", "Ines", "Ivan", "Jamal", "Julia",
    "Kenji", "Kira", "Leila", "Lucas", "Maya", "Mateo", "Nadia", "Noah", "Olga", "Omar", "Priya",
    "Pablo", "Quinn", "Rosa", "Rahul", "Sofia", "Sven", "Tara", "Tomas", "Uma", "Victor", "Wen",
    "Xavier", "Yara", "Zoe",
]
LAST_NAMES = [
    "Abbott", "Bakker", "Castillo", "Dubois", "Eriksen", "Fischer", "Garcia", "Haddad", "Ibrahim",
    "Jensen", "Kowalski", "Larsen", "Moreau", "Nakamura", "Okafor", "Petrov", "Quint", "Rossi",
    "Schmidt", "Tanaka", "Ueda", "Varga", "Weber", "Xu", "Yilmaz", "Zhang",
]
# fmt: on

# Per-user monthly limits to draw from (inference ≥ the 200K platform floor).
INFERENCE_CHOICES = [200_000, 250_000, 300_000, 500_000, 750_000, 1_000_000, 1_500_000, 2_000_000]
EMBEDDING_CHOICES = [0, 0, 100_000, 250_000, 500_000]


@dataclass
class OrgPlan:
    name: str
    slug: str
    domain: str
    size: int
    status: str
    months_ago: int
    # (kind, tokens per month, start months ago, end months ago or None)
    purchases: list[tuple[str, int, int, int | None]]
    admins: int = 1
    banned: int = 0
    unpaid: int = 0
    fixed_users: list[tuple[str, str, str]] = field(default_factory=list)  # email, name, role
    floor_only: bool = False  # every member at the 200K floor (the seeds' example)


PLANS = [
    OrgPlan(
        name="Department of Demos",
        slug=MARKER_SLUG,
        domain="demo.example.com",
        size=130,
        status=Organization.Status.ACTIVE,
        months_ago=9,
        purchases=[
            ("inference", 10_000_000, 9, 7),  # an ended trial purchase, kept as history
            ("inference", 40_000_000, 8, None),
            ("inference", 60_000_000, 3, None),
            ("embedding", 20_000_000, 6, None),
        ],
        admins=3,
        banned=3,
        unpaid=4,
        fixed_users=[
            (ADMIN_EMAIL, "Avery Admin", Membership.Role.ADMIN),
            (MEMBER_EMAIL, "Morgan Member", Membership.Role.MEMBER),
        ],
    ),
    OrgPlan(
        name="Acme Analytics",
        slug="acme-analytics",
        domain="acme-analytics.example.com",
        size=25,
        status=Organization.Status.ACTIVE,
        months_ago=5,
        purchases=[("inference", 20_000_000, 5, None), ("embedding", 4_000_000, 4, None)],
        admins=2,
        banned=1,
        unpaid=1,
    ),
    OrgPlan(
        name="Small Shop",
        slug="small-shop",
        domain="smallshop.example.com",
        size=4,
        status=Organization.Status.ACTIVE,
        months_ago=4,
        purchases=[("inference", 2_000_000, 4, None), ("embedding", 2_000_000, 2, None)],
        floor_only=True,
    ),
    OrgPlan(
        name="Pending Partners",
        slug="pending-partners",
        domain="pending.example.com",
        size=3,
        status=Organization.Status.PENDING,
        months_ago=0,
        purchases=[("inference", 2_000_000, 0, None)],
        floor_only=True,
    ),
    OrgPlan(
        name="Suspended Systems",
        slug="suspended-systems",
        domain="suspended.example.com",
        size=3,
        status=Organization.Status.SUSPENDED,
        months_ago=6,
        purchases=[("inference", 2_000_000, 6, None)],
        floor_only=True,
    ),
]


def member_limits(
    rng: random.Random, plan: OrgPlan, pools: dict[str, int]
) -> list[tuple[int, int]]:
    """Varied (inference, embedding) maxima whose totals stay within the current pools."""
    if plan.floor_only:
        emb = 250_000 if pools["embedding"] >= 250_000 * plan.size else 0
        return [(200_000, emb)] * plan.size
    limits = [
        (rng.choice(INFERENCE_CHOICES), rng.choice(EMBEDDING_CHOICES)) for _ in range(plan.size)
    ]
    # Trim the largest allocations until each pool keeps some unallocated headroom.
    for index, floor in ((0, 200_000), (1, 0)):
        budget = pools[TokenKind.values[index]] * 9 // 10
        while sum(limit[index] for limit in limits) > budget:
            biggest = max(range(plan.size), key=lambda i: limits[i][index])
            row = list(limits[biggest])
            row[index] = max(floor, row[index] // 2)
            limits[biggest] = (row[0], row[1])
    return limits


def current_pools(plan: OrgPlan) -> dict[str, int]:
    pools = dict.fromkeys(TokenKind.values, 0)
    for kind, amount, _start, end in plan.purchases:
        if end is None or end == 0:
            pools[kind] += amount
    return pools
