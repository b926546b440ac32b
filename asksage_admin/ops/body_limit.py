"""Request bodies bounded before Django reads them (ASGI).

Django's ASGI handler reads a whole request body (spooling it to disk past
FILE_UPLOAD_MAX_MEMORY_SIZE) before any view runs, so a view's own size check would come after
a gigabyte upload was stored. Here, a body declared larger than any page accepts is not read:
Django gets the request with an empty body and its declared Content-Length, which the import
view refuses in words (422) and any other form refuses as too big (400). A body that sends
more than the cap without declaring it is cut off as a disconnect.
"""

from django.conf import settings

from asksage_admin.lib.uploads import MULTIPART_SLACK
from asksage_admin.ops.asgi_wrap import HttpWrapperASGI

_LENGTH = b"content-length"


def body_cap() -> int:
    """The largest body any page accepts: an import file, or a form's fields."""
    return max(settings.IMPORT_MAX_BYTES, settings.DATA_UPLOAD_MAX_MEMORY_SIZE) + MULTIPART_SLACK


def _declared(scope) -> int | None:
    raw = next((v for k, v in scope.get("headers", ()) if k == _LENGTH), None)
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


class BodyLimitASGI(HttpWrapperASGI):
    async def http(self, scope, receive, send) -> None:
        cap = body_cap()
        declared = _declared(scope)
        if declared is not None and declared > cap:
            await self.app(scope, _unread(receive), send)
            return
        await self.app(scope, _counted(receive, cap), send)


def _unread(receive):
    """An empty body in place of the declared one; then only the client's disconnect."""
    sent = False

    async def empty():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        while True:  # the unread body is discarded as it arrives, never stored
            message = await receive()
            if message["type"] == "http.disconnect":
                return message

    return empty


def _counted(receive, cap: int):
    """The body as sent, until it passes the cap: then the request reads as abandoned."""
    seen = 0

    async def counted():
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > cap:
                return {"type": "http.disconnect"}
        return message

    return counted
