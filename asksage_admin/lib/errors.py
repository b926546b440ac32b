"""The one domain error type services raise."""


class DomainError(Exception):
    """A rule refused the write. `errors` maps a field (or "__all__") to its messages."""

    def __init__(self, message: str | None = None, errors: dict[str, list[str]] | None = None):
        self.errors: dict[str, list[str]] = dict(errors or {})
        if message:
            self.errors.setdefault("__all__", []).append(message)
        super().__init__(message or "; ".join(m for msgs in self.errors.values() for m in msgs))

    @property
    def messages(self) -> list[str]:
        return [m for msgs in self.errors.values() for m in msgs]
