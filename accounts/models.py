"""Users, organizations (enterprise accounts) and memberships."""

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from asksage_admin.lib.amounts import MAX_TOKENS


class UserManager(BaseUserManager):
    use_in_migrations = True

    def get_by_natural_key(self, username):
        return self.get(email__iexact=username)

    def create_user(self, email, password=None, **extra):
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email, password=None, **extra):
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        extra.setdefault("terms_accepted_at", timezone.now())
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A person. Logs in by email; never deleted, only disabled (unpaid or banned)."""

    email = models.EmailField(max_length=254)
    name = models.CharField(max_length=150)
    terms_accepted_at = models.DateTimeField(null=True, blank=True)
    is_paid = models.BooleanField(
        "paid", default=True, help_text="Unpaid users can log in but have no paid features."
    )
    is_banned = models.BooleanField(
        "banned", default=False, help_text="Banned users cannot log in at all."
    )
    is_staff = models.BooleanField(
        "sales staff", default=False, help_text="Can use the sales admin at /staff/."
    )
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["name"]

    class Meta:
        constraints = [
            models.UniqueConstraint(Lower("email"), name="user_email_ci_unique"),
        ]
        indexes = [models.Index(fields=["name"], name="user_name_idx")]
        # Account-recovery powers in the sales admin, held by the "Sales lead" group
        # (accounts/staff_roles.py).
        permissions = [
            ("reset_second_factor", "Can reset the second factor of a user who is not staff"),
            ("set_user_password", "Can set the password of a user who is not staff"),
        ]

    def __str__(self) -> str:
        return self.email

    def save(self, *args, **kwargs):
        self.email = self.email.strip().lower()
        super().save(*args, **kwargs)

    def get_full_name(self) -> str:
        return self.name or self.email

    def get_short_name(self) -> str:
        return self.name.split(" ")[0] if self.name else self.email


def platform_min_inference() -> int:
    return settings.PLATFORM_MIN_INFERENCE_TOKENS


def platform_min_embedding() -> int:
    return settings.PLATFORM_MIN_EMBEDDING_TOKENS


class Organization(models.Model):
    """An enterprise account: buys monthly token pools and hands them to its members."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"

    class OnDeactivation(models.TextChoices):
        RETURN = "return", "Return the allocation to the pool"
        KEEP = "keep", "Keep the allocation"

    name = models.CharField(max_length=200, unique=True)
    slug = models.SlugField(max_length=200, unique=True)
    billing_address = models.TextField()
    status = models.CharField(max_length=10, choices=Status, default=Status.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    activated_at = models.DateTimeField(null=True, blank=True)
    suspended_at = models.DateTimeField(null=True, blank=True)
    admin_notes = models.TextField(blank=True)
    min_inference_tokens = models.BigIntegerField(
        default=platform_min_inference,
        help_text="Floor for every member's Max Inference Tokens (never below the platform's).",
    )
    min_embedding_tokens = models.BigIntegerField(
        default=platform_min_embedding,
        help_text="Floor for every member's Max Embedding Tokens.",
    )
    # False: every model is allowed and the usage API reads no grant row (the default, and
    # every organization's after the migration); True: only the models granted in
    # tokens.ModelGrant (set by the Admin Panel's Models page, `tokens.services.model_access`).
    models_restricted = models.BooleanField(
        default=False,
        help_text="Only the models the organization's admins enabled may be used.",
    )
    # What a ban (SCIM `active: false`, the panel's Banned toggle) does to the member's
    # maxima; re-activation raises them back to the floors, if the pool covers them.
    on_deactivation = models.CharField(
        "when a member is deactivated",
        max_length=10,
        choices=OnDeactivation,
        default=OnDeactivation.RETURN,
        help_text="Return: a banned member's maxima go to 0 and the tokens back to the pool; "
        "re-activation gives the floors again, if the pool covers them. Keep: the maxima "
        "stay as they were, held for the member while they cannot use them.",
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=["pending", "active", "suspended"]),
                name="org_status_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(
                    min_inference_tokens__gte=0, min_inference_tokens__lte=MAX_TOKENS
                )
                & models.Q(min_embedding_tokens__gte=0, min_embedding_tokens__lte=MAX_TOKENS),
                name="org_floors_in_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE

    def floor(self, kind: str) -> int:
        return self.min_inference_tokens if kind == "inference" else self.min_embedding_tokens


AUDITOR_READ_ONLY = "Auditors have read-only access: they change nothing."


class Membership(models.Model):
    """A user's place in one organization, with their monthly token allocation."""

    class Role(models.TextChoices):
        ADMIN = "admin", "Admin"
        AUDITOR = "auditor", "Auditor (read-only)"
        MEMBER = "member", "Member"

    user = models.OneToOneField(User, on_delete=models.PROTECT, related_name="membership")
    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="memberships"
    )
    role = models.CharField(max_length=10, choices=Role, default=Role.MEMBER)
    max_inference_tokens = models.BigIntegerField(
        default=0, help_text="Monthly limit of inference tokens (prompts and completions)."
    )
    max_embedding_tokens = models.BigIntegerField(
        default=0,
        help_text="Monthly limit of embedding tokens (training datasets, ingested documents).",
    )
    joined_at = models.DateTimeField(default=timezone.now)
    # Lifetime "Total usage" in this organization: the sum of the member's MonthlyUsage here
    # (both kinds, every month), added to by the usage API in the transaction that records a
    # usage, so the user table shows and sorts it without summing per row.
    # `tokens.rollup.usage_total_mismatches` checks it; a database default, as raw INSERTs
    # (seeds, benchmarks) may omit it.
    total_used = models.BigIntegerField(
        default=0, db_default=0, help_text="Tokens used in this organization, ever."
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(role__in=["admin", "auditor", "member"]),
                name="membership_role_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(
                    max_inference_tokens__gte=0, max_inference_tokens__lte=MAX_TOKENS
                ),
                name="membership_max_inference_in_range",
            ),
            models.CheckConstraint(
                condition=models.Q(
                    max_embedding_tokens__gte=0, max_embedding_tokens__lte=MAX_TOKENS
                ),
                name="membership_max_embedding_in_range",
            ),
            models.CheckConstraint(
                condition=models.Q(total_used__gte=0), name="membership_total_used_non_negative"
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "role"], name="membership_org_role_idx"),
            # One per sortable column of User Management, with the table's tiebreak (the
            # user): the first page of any order is a short index scan, whatever the size.
            models.Index(
                fields=["organization", "max_inference_tokens", "user"],
                name="membership_org_maxinf_idx",
            ),
            models.Index(
                fields=["organization", "max_embedding_tokens", "user"],
                name="membership_org_maxemb_idx",
            ),
            # Not `total_used`: every usage report adds to it, and an indexed column changing
            # makes the update write a new entry in every index; unindexed, the updates are
            # HOT (fillfactor 80, migration 0012). Sorting by Total usage sorts the
            # organization's members instead: 47 ms at 100,000 (benchmarks/README.md).
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} ({self.role})"

    @property
    def is_admin(self) -> bool:
        return self.role == self.Role.ADMIN

    @property
    def is_read_only(self) -> bool:
        """Auditors change nothing, anywhere: not even a token request of their own."""
        return self.role == self.Role.AUDITOR

    @property
    def can_view_panel(self) -> bool:
        """Admins and read-only auditors see the Admin Panel; only admins change anything."""
        return self.role in {self.Role.ADMIN, self.Role.AUDITOR}


class IdentityProvider(models.Model):
    """An organization's OpenID Connect identity provider (single sign-on), set up by sales.

    The client secret is stored encrypted (`accounts.secrets`) or as a reference to an
    environment variable (`env:NAME`), never in clear. The email domains it signs in are
    `IdentityProviderDomain` rows, unique across organizations: one organization's IdP can
    never sign in an address of another's domain.
    """

    organization = models.OneToOneField(
        Organization, on_delete=models.PROTECT, related_name="identity_provider"
    )
    enabled = models.BooleanField(default=True)
    issuer = models.URLField(
        max_length=300,
        help_text="The IdP's issuer URL (its /.well-known/openid-configuration is read).",
    )
    client_id = models.CharField(max_length=300)
    client_secret = models.TextField(
        blank=True, help_text="Encrypted (Fernet), or a reference “env:VARIABLE_NAME”."
    )
    sso_required = models.BooleanField(
        "SSO required",
        default=False,
        help_text="Members may not sign in with a password (staff are never blocked).",
    )
    jit_enabled = models.BooleanField(
        "create members on first sign-in",
        default=False,
        help_text="A person of an allowed domain with no account becomes a member at the "
        "organization's floors, if the unallocated pool covers them.",
    )
    require_verified_email = models.BooleanField(
        default=True,
        help_text="Refuse an id_token without email_verified=true (turn off for Entra ID, "
        "which sends no such claim).",
    )
    trust_idp_mfa = models.BooleanField(
        "trust the IdP's second factor",
        default=True,
        help_text="An SSO session counts as second-factor verified (the IdP enforces MFA).",
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "identity provider (SSO)"
        verbose_name_plural = "identity providers (SSO)"

    def __str__(self) -> str:
        return f"SSO for {self.organization}"


class IdentityProviderDomain(models.Model):
    """An email domain an identity provider signs in; unique, so no two organizations can
    claim it."""

    provider = models.ForeignKey(IdentityProvider, on_delete=models.CASCADE, related_name="domains")
    domain = models.CharField(max_length=253, unique=True)

    def __str__(self) -> str:
        return self.domain


class SsoIdentity(models.Model):
    """A user's subject (`sub`) at an identity provider: bound at the first sign-in (matched
    by email), then the only key later sign-ins match on."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="sso_identities")
    provider = models.ForeignKey(
        IdentityProvider, on_delete=models.CASCADE, related_name="identities"
    )
    subject = models.CharField(max_length=255)
    created_at = models.DateTimeField(default=timezone.now)
    last_login = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "subject"], name="sso_identity_unique"),
            models.UniqueConstraint(fields=["provider", "user"], name="sso_identity_one_per_user"),
        ]

    def __str__(self) -> str:
        return f"{self.user} at {self.provider_id}"
