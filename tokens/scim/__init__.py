"""SCIM 2.0 provisioning (RFC 7643/7644) for one organization per token.

The token is an organization's API key with the `scim` scope: created once on the API Keys
page, stored as a keyed hash, revocable and audited like every key. The organization is always
the key's, never the request's: every query here starts from `key.organization`, so one
organization's IdP cannot see or touch another's users (they answer 404).

Why not django-scim2: it is configured by settings for one directory (one user model, one
queryset, one auth check) and its adapters resolve objects globally; scoping every lookup to
the key's organization and mapping Groups onto three fixed roles would mean overriding most
of it. The protocol surface Entra ID and Okta use is small, so it is plain Django views here.
"""
