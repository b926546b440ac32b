"""Factories for the cast of the tests."""

import factory
from django.utils import timezone

from accounts.models import Membership, Organization, User
from asksage_admin.lib.months import current_month
from tokens.models import MonthlyUsage, Purchase

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

    user = factory.SubFactory(UserFactory)
    organization = factory.SubFactory(OrganizationFactory)
    kind = "inference"
    month = factory.LazyFunction(current_month)
    used = 0
