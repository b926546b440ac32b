"""Fresh request ids: 32 hex digits of randomness, never repeated, not even across a fork."""

import os
import re

from asksage_admin.lib.request_id import new_request_id, request_id_from


def test_fresh_ids_are_32_hex_digits_and_never_repeat():
    ids = [new_request_id() for _ in range(2_000)]  # several refills of the batch
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_a_malformed_incoming_id_is_replaced_by_a_fresh_one():
    assert request_id_from("trace-7.a:b") == "trace-7.a:b"
    assert re.fullmatch(r"[0-9a-f]{32}", request_id_from("two words\n"))


def test_a_forked_worker_does_not_hand_out_its_parents_next_ids():
    new_request_id()  # the parent holds a batch of ids not yet handed out
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: what a gunicorn worker forked from the master would draw
        try:
            os.write(write, "".join(new_request_id() for _ in range(5)).encode())
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 1024).decode()
    os.close(read)
    parents = {new_request_id() for _ in range(5)}
    assert len(child) == 160
    assert not {child[i : i + 32] for i in range(0, 160, 32)} & parents
