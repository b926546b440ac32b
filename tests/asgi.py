"""An in-process ASGI client: requests straight into an ASGI application, no server.

The application runs on one event loop in a background thread for as long as the client
lives, the way a server worker's loop does (the usage fast path keeps its connection pool on
that loop). Requests go one at a time (`request`) or many at once (`gather`).
"""

import asyncio
import json
import threading
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, field


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    messages: list[dict] = field(default_factory=list, repr=False)

    def json(self):
        return json.loads(self.body)

    def __getitem__(self, name: str) -> str:
        return self.headers[name.lower()]


class AsgiClient:
    def __init__(self, app, host: str = "testserver"):
        self.app = app
        self.host = host
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Awaitable, timeout: float = 60):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def request(self, method: str, path: str, body: bytes | str = b"", **headers) -> Answer:
        return self.run(self.arequest(method, path, body, **headers))

    def post_json(self, path: str, data, **headers) -> Answer:
        return self.request("POST", path, json.dumps(data), **headers)

    def gather(self, requests: Iterable[Awaitable]) -> list[Answer]:
        async def together():
            return await asyncio.gather(*requests)

        return self.run(together())

    async def arequest(
        self,
        method: str,
        path: str,
        body: bytes | str = b"",
        *,
        messages: list[dict] | None = None,
        scheme: str = "http",
        **headers: str,
    ) -> Answer:
        """One request. `headers` by name, underscores for dashes (idempotency_key=...);
        `messages` replaces the request body messages (to send a disconnect, say)."""
        body = body.encode() if isinstance(body, str) else body
        raw_headers = [(b"host", self.host.encode())]
        if body:
            raw_headers.append((b"content-type", b"application/json"))
            raw_headers.append((b"content-length", str(len(body)).encode()))
        for name, value in headers.items():
            raw_headers.append((name.replace("_", "-").lower().encode(), value.encode()))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": scheme,
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": raw_headers,
            "client": ("127.0.0.1", 50000),
            "server": (self.host, 80),
        }
        incoming = list(messages or [{"type": "http.request", "body": body, "more_body": False}])

        async def receive() -> dict:
            if incoming:
                return incoming.pop(0)
            await asyncio.Event().wait()  # a client that stays connected and quiet
            return {"type": "http.disconnect"}

        sent: list[dict] = []

        async def send(message: dict) -> None:
            sent.append(message)

        await self.app(scope, receive, send)
        start = next((m for m in sent if m["type"] == "http.response.start"), None)
        if start is None:
            return Answer(0, {}, b"", sent)
        answer_headers: dict[str, str] = {}
        for name, value in start["headers"]:
            answer_headers[name.decode().lower()] = value.decode()
        content = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        return Answer(start["status"], answer_headers, content, sent)

    async def lifespan(self, *types: str) -> list[dict]:
        """Send lifespan messages (`startup`, `shutdown`) and return the answers."""
        incoming = [{"type": f"lifespan.{kind}"} for kind in types]
        sent: list[dict] = []

        async def receive() -> dict:
            return incoming.pop(0)

        async def send(message: dict) -> None:
            sent.append(message)

        await self.app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
        return sent

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()
