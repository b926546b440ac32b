"""Guesses at the second factor sent all at once are checked one at a time (real threads).

On PostgreSQL the threads overlap and the device rows' locks serialize them; on SQLite the
database lock does. Either way only the first guess is checked: the others find the wait it
started and are refused unchecked.
"""

import datetime as dt
import threading

import pytest
import time_machine
from django.db import connections
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.mfa import mfa_verify
from asksage_admin.lib.errors import DomainError
from audit.models import AuditLog

pytestmark = pytest.mark.django_db(transaction=True)

GUESSES = 8


def guess_together(user) -> list[str]:
    barrier = threading.Barrier(GUESSES)
    outcomes: list[str] = [""] * GUESSES

    def guess(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            mfa_verify(request=None, user=user, token=f"{index:06d}")
            outcomes[index] = "accepted"
        except DomainError as exc:
            outcomes[index] = " ".join(exc.messages)
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            outcomes[index] = repr(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(GUESSES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def test_guesses_sent_at_once_are_checked_one_at_a_time(alice):
    device = TOTPDevice.objects.create(user=alice, name="app", confirmed=True)
    with time_machine.travel(dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC), tick=False):
        outcomes = guess_together(alice)

    assert sum("That code is not valid" in o for o in outcomes) == 1, outcomes
    assert sum("Too many wrong codes. Try again in 1 second." in o for o in outcomes) == 7
    device.refresh_from_db()
    assert device.throttling_failure_count == 1
    assert AuditLog.objects.filter(action="mfa.failed").count() == 1
