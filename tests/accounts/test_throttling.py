"""Login throttling: repeated failures lock the account and the address for a while."""

from django.urls import reverse

LOGIN = reverse("accounts:login")


def attempt(client, email, password="wrong-password", ip="10.1.2.3"):
    return client.post(LOGIN, {"username": email, "password": password}, REMOTE_ADDR=ip)


def test_five_failures_lock_the_account_even_with_the_right_password(
    client, bob, password, settings
):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert attempt(client, bob.email).status_code == 200
    assert attempt(client, bob.email).status_code == 429  # the limit-th failure locks
    response = attempt(client, bob.email, password=password)
    assert response.status_code == 429
    assert "Too many failed logins" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_failures_spread_over_accounts_lock_the_address(client, db, settings):
    for n in range(settings.AXES_FAILURE_LIMIT):
        attempt(client, f"nobody{n}@example.com", ip="10.9.9.9")
    assert attempt(client, "another@example.com", ip="10.9.9.9").status_code == 429


def test_a_success_before_the_limit_clears_the_count(client, bob, password, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        attempt(client, bob.email)
    assert attempt(client, bob.email, password=password).status_code == 302
    client.logout()
    assert attempt(client, bob.email).status_code == 200  # counting starts afresh
