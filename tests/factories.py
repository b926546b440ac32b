"""Factories for the cast of the tests, their usage, and helpers that read a max back."""

import datetime as dt

import factory
from django.db.models import F
from django.utils import timezone

from accounts.models import IdentityProvider, Membership, Organization, User
from accounts.sso_secrets import secret_store
from asksage_admin.lib.months import current_month
from tokens.models import DailyUsage, MonthlyUsage, PlatformModel, Purchase, UsageEvent
from tokens.rollup import org_daily_usage_add

PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    name = factory.Sequence(lambda n: f"User {n}")
    terms_accepted_at = factory.LazyFunction(timezone.now)
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):  # noqa: N805 - factory_boy's hook signature
        if create:
            obj.save()


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"Organization {n}")
    slug = factory.Sequence(lambda n: f"organization-{n}")
    billing_address = "1 Main Street, Springfield"
    status = Organization.Status.ACTIVE
    activated_at = factory.LazyFunction(timezone.now)


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    organization = factory.SubFactory(OrganizationFactory)
    role = Membership.Role.MEMBER
    max_inference_tokens = 200_000
    max_embedding_tokens = 0


class IdentityProviderFactory(factory.django.DjangoModelFactory):
    """An organization's OpenID Connect provider; `domains=["acme.gov"]` adds its domains."""

    class Meta:
        model = IdentityProvider
        skip_postgeneration_save = True

    organization = factory.SubFactory(OrganizationFactory)
    issuer = "https://idp.example.net"
    client_id = "admin-console"
    client_secret = factory.LazyFunction(lambda: secret_store("s3cret"))
    jit_enabled = True

    @factory.post_generation
    def domains(obj, create, extracted, **kwargs):  # noqa: N805 - factory_boy's hook signature
        for domain in extracted or ():
            obj.domains.create(domain=domain)


class PlatformModelFactory(factory.django.DjangoModelFactory):
    """A catalogue model: `PlatformModelFactory(name="gpt-4o", display_name="GPT-4o")`."""

    class Meta:
        model = PlatformModel
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"model-{n}")
    display_name = factory.LazyAttribute(lambda m: m.name.upper())
    kind = "inference"


class PurchaseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Purchase

    organization = factory.SubFactory(OrganizationFactory)
    kind = "inference"
    tokens_per_month = 2_000_000
    start_month = factory.LazyFunction(current_month)


class MonthlyUsageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MonthlyUsage
        skip_postgeneration_save = True

    user = factory.SubFactory(UserFactory)
    organization = factory.SubFactory(OrganizationFactory)
    kind = "inference"
    month = factory.LazyFunction(current_month)
    used = 0

    @factory.post_generation
    def _total(obj, create, extracted, **kwargs):  # noqa: N805 - factory_boy's hook signature
        """Add the usage to the member's lifetime total, as the usage API does."""
        if create and obj.used:
            Membership.objects.filter(user=obj.user, organization=obj.organization).update(
                total_used=F("total_used") + obj.used
            )


def utc_today() -> dt.date:
    return timezone.now().astimezone(dt.UTC).date()


class DailyUsageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DailyUsage
        skip_postgeneration_save = True

    user = factory.SubFactory(UserFactory)
    organization = factory.SubFactory(OrganizationFactory)
    kind = "inference"
    model = "gpt-4o"
    day = factory.LazyFunction(utc_today)
    tokens = 1_000
    events = 1

    @factory.post_generation
    def _rollup(obj, create, extracted, **kwargs):  # noqa: N805 - factory_boy's hook signature
        """Add the row to the organization's rollup, as the usage API does."""
        if create:
            org_daily_usage_add(
                organization_id=obj.organization_id,
                day=obj.day,
                kind=obj.kind,
                model=obj.model,
                tokens=obj.tokens,
                events=obj.events,
            )


def usage_recorded(**fields) -> DailyUsage:
    """A DailyUsage row (and the organization's rollup) plus its share of MonthlyUsage, as
    the recording writes all three: totals agree whichever table a read takes them from
    (the statistics read whole months from MonthlyUsage, their days from DailyUsage)."""
    row = DailyUsageFactory(**fields)
    monthly, _ = MonthlyUsage.objects.get_or_create(
        organization_id=row.organization_id,
        user_id=row.user_id,
        kind=row.kind,
        month=row.day.replace(day=1),
    )
    MonthlyUsage.objects.filter(pk=monthly.pk).update(used=F("used") + row.tokens)
    return row


class UsageEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = UsageEvent

    user = factory.SubFactory(UserFactory)
    organization = factory.SubFactory(OrganizationFactory)
    kind = "inference"
    tokens = 1_000
    model = "gpt-4o"
    created_at = factory.LazyFunction(timezone.now)


# Reading back and setting what the tests check --------------------------------------------


def max_of(user, column: str = "max_inference_tokens") -> int:
    """The user's stored max for a column, read fresh from the database."""
    return Membership.objects.values_list(column, flat=True).get(user=user)


def set_max(user, value: int, column: str = "max_inference_tokens") -> None:
    """Set the user's max directly (no service, no audit): arranging a test, not acting."""
    Membership.objects.filter(user=user).update(**{column: value})


def used(user, kind: str = "inference") -> int:
    """What the user has used this month of a kind (0 before any usage)."""
    row = MonthlyUsage.objects.filter(user=user, kind=kind, month=current_month()).first()
    return row.used if row else 0
