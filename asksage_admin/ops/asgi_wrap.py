"""The shape every ASGI wrapper of ours shares: hand anything but HTTP straight through and
expose the wrapped application's own attributes, so the wrappers stack in any order."""


class HttpWrapperASGI:
    def __init__(self, app):
        self.app = app

    def __getattr__(self, name):  # the wrapped application's own attributes (aclose, …)
        return getattr(self.app, name)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.http(scope, receive, send)

    async def http(self, scope, receive, send) -> None:
        raise NotImplementedError
