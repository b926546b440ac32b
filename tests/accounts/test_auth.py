"""Registration, login by email, bans, logout and password reset."""

import re

import pytest
from django.urls import reverse

from accounts.models import User

pytestmark = pytest.mark.django_db

REGISTER = reverse("accounts:register")
LOGIN = reverse("accounts:login")
LOGOUT = reverse("accounts:logout")
HOME = reverse("member:home")
NEW_PASSWORD = "a-brand-new-passphrase-42"


def registration(**overrides) -> dict:
    data = {
        "email": "newcomer@example.com",
        "name": "Nina Newcomer",
        "password": "plenty-of-entropy-77",
        "accept_terms": "on",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


class TestRegistration:
    def test_it_refuses_without_accepting_the_terms(self, client):
        response = client.post(REGISTER, registration(accept_terms=None))
        assert response.status_code == 200
        assert "You must accept the terms and conditions." in response.content.decode()
        assert not User.objects.filter(email="newcomer@example.com").exists()

    def test_it_stores_when_the_terms_were_accepted_and_logs_in(self, client):
        response = client.post(REGISTER, registration())
        assert response.status_code == 302
        assert response.url == HOME
        user = User.objects.get(email="newcomer@example.com")
        assert user.terms_accepted_at is not None
        assert user.name == "Nina Newcomer"
        assert client.get(HOME).status_code == 200

    def test_it_refuses_an_email_already_registered_in_another_case(self, client, bob):
        response = client.post(REGISTER, registration(email="BOB@Example.COM"))
        assert response.status_code == 200
        assert "already exists" in response.content.decode()
        assert User.objects.filter(email__iexact="bob@example.com").count() == 1

    def test_it_lowercases_the_stored_email(self, client):
        client.post(REGISTER, registration(email="Mixed.Case@Example.com"))
        assert User.objects.filter(email="mixed.case@example.com").exists()


class TestLogin:
    def test_it_accepts_the_email_in_any_case(self, client, bob, password):
        response = client.post(LOGIN, {"username": "BOB@EXAMPLE.com", "password": password})
        assert response.status_code == 302
        assert response.url == HOME
        assert client.get(HOME).wsgi_request.user == bob

    def test_it_refuses_a_wrong_password(self, client, bob):
        response = client.post(LOGIN, {"username": "bob@example.com", "password": "nope"})
        assert response.status_code == 200
        assert "Email or password is incorrect." in response.content.decode()

    def test_it_refuses_a_banned_user_and_says_why(self, client, bob, password):
        User.objects.filter(pk=bob.pk).update(is_banned=True)
        response = client.post(LOGIN, {"username": "bob@example.com", "password": password})
        assert response.status_code == 200
        assert "This account has been banned." in response.content.decode()
        assert not response.wsgi_request.user.is_authenticated

    def test_a_session_stops_working_once_its_user_is_banned(self, client, bob):
        client.force_login(bob)
        assert client.get(HOME).status_code == 200
        User.objects.filter(pk=bob.pk).update(is_banned=True)
        response = client.get(HOME, follow=True)
        assert response.redirect_chain[0] == (LOGIN, 302)
        assert "has been banned" in response.content.decode()
        # The session is gone, not just refused once.
        User.objects.filter(pk=bob.pk).update(is_banned=False)
        assert client.get(HOME).status_code == 302


class TestLogout:
    def test_it_logs_out_on_post(self, client, bob):
        client.force_login(bob)
        response = client.post(LOGOUT)
        assert response.status_code == 302
        assert response.url == LOGIN
        assert client.get(HOME).status_code == 302

    def test_it_refuses_a_get(self, client, bob):
        client.force_login(bob)
        assert client.get(LOGOUT).status_code == 405
        assert client.get(HOME).status_code == 200


class TestPasswordReset:
    def test_it_emails_a_link_that_sets_a_new_password(self, client, bob, mailoutbox):
        response = client.post(reverse("accounts:password_reset"), {"email": "Bob@Example.com"})
        assert response.status_code == 302
        assert len(mailoutbox) == 1
        assert mailoutbox[0].to == ["bob@example.com"]
        link = re.search(r"https?://testserver(/\S+)", mailoutbox[0].body).group(1)

        form = client.get(link, follow=True)
        assert form.status_code == 200
        assert "Choose a new password" in form.content.decode()
        set_password_url = form.redirect_chain[-1][0]
        done = client.post(
            set_password_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
        )
        assert done.status_code == 302
        assert done.url == reverse("accounts:password_reset_complete")

        bob.refresh_from_db()
        assert bob.check_password(NEW_PASSWORD)
        logged_in = client.post(
            reverse("accounts:login"), {"username": "bob@example.com", "password": NEW_PASSWORD}
        )
        assert logged_in.status_code == 302 and logged_in.url == reverse("member:home")

    def test_the_link_works_only_once(self, client, bob, mailoutbox):
        client.post(reverse("accounts:password_reset"), {"email": "bob@example.com"})
        link = re.search(r"https?://testserver(/\S+)", mailoutbox[0].body).group(1)
        set_password_url = client.get(link, follow=True).redirect_chain[-1][0]
        client.post(
            set_password_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
        )
        again = client.get(link, follow=True)
        assert "invalid or has already been used" in again.content.decode()

    def test_it_sends_nothing_for_an_unknown_email_but_says_the_same(self, client, mailoutbox):
        response = client.post(reverse("accounts:password_reset"), {"email": "ghost@example.com"})
        assert response.status_code == 302
        assert response.url == reverse("accounts:password_reset_done")
        assert mailoutbox == []
