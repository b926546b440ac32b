"""asksage_admin.ops.body_limit: a body over the cap is never read into the app."""

import asyncio
from concurrent.futures import ThreadPoolExecutor

from asksage_admin.ops.body_limit import BodyLimitASGI, body_cap


def run(body_chunks: list[bytes], declared: int | None):
    """What the wrapped app reads, as (body, last message type)."""
    incoming = [
        {"type": "http.request", "body": chunk, "more_body": n < len(body_chunks) - 1}
        for n, chunk in enumerate(body_chunks)
    ] + [{"type": "http.disconnect"}]
    pulled = []

    async def receive():
        message = incoming.pop(0)
        pulled.append(message["type"])
        return message

    seen: dict = {"body": b""}

    async def app(scope, receive, send):
        while True:
            message = await receive()
            seen["last"] = message["type"]
            if message["type"] != "http.request":
                return
            seen["body"] += message["body"]
            if not message.get("more_body"):
                return

    headers = [] if declared is None else [(b"content-length", str(declared).encode())]
    scope = {"type": "http", "method": "POST", "path": "/panel/users/import/", "headers": headers}
    # In a thread of its own: a browser test may hold an event loop in the main thread.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, BodyLimitASGI(app)(scope, receive, None)).result()
    return seen["body"], seen["last"], pulled


def test_a_body_within_the_cap_passes_whole():
    body, last, _ = run([b"abc", b"def"], declared=6)
    assert (body, last) == (b"abcdef", "http.request")


def test_a_body_declared_over_the_cap_reaches_the_app_empty_and_unread():
    cap = body_cap()
    body, last, pulled = run([b"x" * 1000] * 3, declared=cap + 1)
    assert (body, last) == (b"", "http.request")
    assert pulled == []  # the client's body was not even pulled from the server


def test_an_undeclared_body_past_the_cap_reads_as_a_disconnect():
    chunk = b"x" * (body_cap() // 2 + 1)
    body, last, _ = run([chunk, chunk, chunk], declared=None)
    assert last == "http.disconnect" and len(body) == len(chunk)
