"""axe-core on the sales admin's organization page, members paged (issue 16, item 7)."""

import pytest
from axe_playwright_python.sync_playwright import Axe

from tests.factories import MembershipFactory, PurchaseFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("width", [1400, 390])
def test_the_organization_page_has_no_axe_violations(
    page, live_server, login, sam, alice, bob, width
):
    org = alice.membership.organization
    PurchaseFactory(organization=org)  # provisioning records the first purchase
    for i in range(30):
        MembershipFactory(organization=org, user__email=f"m{i:02}@example.com")
    page.set_viewport_size({"width": width, "height": 900})
    login(page, sam)

    page.goto(f"{live_server.url}/staff/accounts/organization/{org.pk}/change/")

    assert page.get_by_text("Members 1–25 of 32").is_visible()
    violations = Axe().run(page).response["violations"]
    assert [(v["id"], [n["target"] for n in v["nodes"]]) for v in violations] == []
