import pytest

from tests.factories import MembershipFactory, MonthlyUsageFactory


@pytest.fixture
def bob_usage(bob, org_a):
    """Bob has used 180,000 of his 200,000 inference tokens this month (90 %)."""
    return MonthlyUsageFactory(user=bob, organization=org_a, kind="inference", used=180_000)


@pytest.fixture
def many_members(org_a):
    def make(n: int, org=None):
        return [MembershipFactory(organization=org or org_a).user for _ in range(n)]

    return make
