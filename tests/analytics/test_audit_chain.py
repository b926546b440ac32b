"""The tamper-evident audit trail: every row chained to the one before it in its organization."""

import threading

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, connections

from audit import chain, integrity
from audit.models import GENESIS, AppendOnlyError, AuditChain, AuditLog
from audit.services import audit_bulk, audit_record
from tests.factories import MembershipFactory, OrganizationFactory


def raw(sql: str, params: list) -> None:
    table = AuditLog._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(sql.format(table=table), params)


def org_chain(org) -> integrity.Verdict:
    return integrity.verify(chain.chain_key(org.pk))


def test_each_row_links_to_the_previous_row_of_its_organization(audit, org_a, org_b, carol):
    first = audit(action="user.paid")
    other = audit_record(action="user.paid", organization=org_b, actor=carol)
    second = audit(action="user.banned")

    assert (first.seq, first.prev_hash) == (1, GENESIS)
    assert (second.seq, second.prev_hash) == (2, first.hash)
    assert (other.chain, other.seq, other.prev_hash) == (f"org:{org_b.pk}", 1, GENESIS)
    assert len(first.hash) == 64 and first.hash != second.hash
    assert org_chain(org_a).intact and org_chain(org_a).checked == 2


def test_rows_without_an_organization_form_the_global_chain(db):
    one = audit_record(action="auth.login_failed", email="nobody@example.com")
    two = audit_record(action="auth.login_failed", email="someone@example.com")

    assert (one.chain, two.chain) == ("global", "global")
    assert two.prev_hash == one.hash
    assert integrity.verify("global").intact


def test_the_hash_survives_a_round_trip_through_the_database(audit, bob):
    row = audit(
        target_user=bob,
        column="max_inference_tokens",
        old=200_000,
        new=300_000,
        ip="2001:0db8:0000:0000:0000:0000:0000:0001",
        note="déjà vu",
        nested={"b": [1, 2.5], "a": None},
    )

    stored = AuditLog.objects.get(pk=row.pk)
    assert stored.ip == "2001:db8::1"
    assert chain.row_hash(stored) == row.hash


def test_editing_a_row_in_the_database_is_detected(audit, org_a):
    audit(old=1, new=2)
    edited = audit(old=2, new=3)
    audit(old=3, new=4)

    raw("UPDATE {table} SET new_value = %s WHERE id = %s", ["9000000", edited.pk])

    verdict = org_chain(org_a)
    assert not verdict.intact
    assert (verdict.row_id, verdict.seq) == (edited.pk, 2)
    assert "altered" in verdict.problem


def test_editing_a_row_and_its_hash_breaks_the_link_of_the_next_row(audit, org_a):
    audit()
    edited = audit(new=5)
    after = audit()
    edited.new_value = "6"
    raw(
        "UPDATE {table} SET new_value = %s, hash = %s WHERE id = %s",
        ["6", chain.row_hash(edited), edited.pk],
    )

    verdict = org_chain(org_a)
    assert (verdict.row_id, verdict.problem) == (after.pk, "it does not link to the previous row")


def test_deleting_a_row_in_the_middle_is_detected(audit, org_a):
    audit()
    removed = audit()
    after = audit()

    raw("DELETE FROM {table} WHERE id = %s", [removed.pk])

    verdict = org_chain(org_a)
    assert verdict.row_id == after.pk
    assert verdict.problem == "row #2 is missing (removed?)"


def test_deleting_the_last_rows_is_detected(audit, org_a):
    audit()
    last = audit()

    raw("DELETE FROM {table} WHERE id = %s", [last.pk])

    verdict = org_chain(org_a)
    assert not verdict.intact
    assert verdict.problem == "the last 1 row(s) were removed"


def test_moving_a_row_to_another_organization_is_detected(audit, org_a, org_b):
    audit()
    moved = audit()
    raw("UPDATE {table} SET organization_id = %s WHERE id = %s", [org_b.pk, moved.pk])

    assert not org_chain(org_a).intact


def test_rows_cannot_be_changed_or_deleted_through_the_orm(audit):
    row = audit()

    with pytest.raises(AppendOnlyError):
        AuditLog.objects.filter(pk=row.pk).update(new_value="x")
    with pytest.raises(AppendOnlyError):
        AuditLog.objects.filter(pk=row.pk).delete()
    with pytest.raises(AppendOnlyError):
        row.delete()
    row.new_value = "x"
    with pytest.raises(AppendOnlyError):
        row.save()
    assert AuditLog.objects.get(pk=row.pk).new_value == ""


def test_bulk_rows_are_chained_in_order(org_a, alice, audit):
    audit()
    rows = [
        AuditLog(organization=org_a, actor=alice, action="allocation.changed", new_value=str(n))
        for n in range(5)
    ]

    audit_bulk(rows)

    assert [r.seq for r in rows] == [2, 3, 4, 5, 6]
    assert org_chain(org_a).intact
    assert AuditChain.objects.get(key=f"org:{org_a.pk}").last_seq == 6


def test_a_bulk_insert_across_organizations_keeps_each_chain(org_a, org_b, alice, carol):
    rows = [
        AuditLog(organization=org_a, actor=alice, action="allocation.changed"),
        AuditLog(organization=org_b, actor=carol, action="allocation.changed"),
        AuditLog(organization=None, action="allocation.changed"),
        AuditLog(organization=org_a, actor=alice, action="allocation.changed"),
    ]

    audit_bulk(rows)

    assert [r.seq for r in rows] == [1, 1, 1, 2]
    assert all(v.intact for v in integrity.verify_all())


@pytest.mark.parametrize("size", [5, 1000])
def test_a_bulk_insert_costs_the_same_queries_whatever_its_size(
    org_a, alice, size, django_assert_max_num_queries
):
    audit_record(action="allocation.changed", organization=org_a)
    rows = [
        AuditLog(organization=org_a, actor=alice, action="allocation.changed") for _ in range(size)
    ]

    # Lock-and-read the head, insert, move the head.
    with django_assert_max_num_queries(3):
        audit_bulk(rows)

    assert org_chain(org_a).checked == size + 1


def test_verify_audit_reports_every_chain_intact(audit, capsys):
    audit()
    audit_record(action="auth.login_failed", email="x@example.com")

    call_command("verify_audit")

    out = capsys.readouterr().out
    assert "intact" in out and "2 chain(s) intact." in out


def test_verify_audit_names_the_first_broken_row_and_fails(audit, org_a):
    audit()
    edited = audit()
    raw("UPDATE {table} SET action = %s WHERE id = %s", ["nothing.happened", edited.pk])

    with pytest.raises(CommandError) as error:
        call_command("verify_audit", "--org", org_a.slug)

    assert error.value.returncode == 1


def test_verify_audit_prints_the_broken_row(audit, org_a, capsys):
    audit()
    edited = audit()
    raw("UPDATE {table} SET action = %s WHERE id = %s", ["nothing.happened", edited.pk])

    with pytest.raises(CommandError):
        call_command("verify_audit", "--org", org_a.slug)

    assert f"broken at row {edited.pk} (#2): its content was altered" in capsys.readouterr().out


def test_verify_audit_refuses_an_unknown_organization(db):
    with pytest.raises(CommandError, match="No organization"):
        call_command("verify_audit", "--org", "nope")


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_never_fork_an_organizations_chain():
    org = OrganizationFactory()
    actor = MembershipFactory(organization=org).user
    errors = []

    def write(n: int) -> None:
        try:
            for i in range(10):
                if i % 2:
                    audit_record(
                        action="allocation.changed", organization=org, actor=actor, new=f"{n}.{i}"
                    )
                else:
                    audit_bulk(
                        [
                            AuditLog(
                                organization=org, action="allocation.changed", new_value=f"{n}.{i}"
                            )
                        ]
                        * 1
                    )
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    verdict = integrity.verify(chain.chain_key(org.pk))
    assert verdict.intact, str(verdict)
    assert verdict.checked == 40
