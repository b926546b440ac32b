"""Single sign-on with OpenID Connect, per organization: the login page routes an address to
its organization's identity provider (`accounts.sso`), these views run the code flow through
authlib (`client`), and `services.sso_sign_in` decides who the signed-in person is here, under
the organization's membership rules and pools."""
