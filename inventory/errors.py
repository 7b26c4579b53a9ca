"""The domain exception hierarchy. The web edge maps ``status`` and ``code`` to HTTP/ws errors."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every expected, user-facing failure. ``code`` is stable API."""

    code = "error"
    status = 400  # the HTTP status the edge uses; domain code never sends it itself
    #: The input field at fault, when one is (e.g. "member_price_cents"): a page shows the
    #: refusal next to that input. Stable API, like ``code``.
    field: str | None = None

    def __init__(
        self, message: str = "", code: str | None = None, *, field: str | None = None
    ) -> None:
        super().__init__(message or self.__class__.__doc__ or self.code)
        if code is not None:
            self.code = code
        if field is not None:
            self.field = field

    @property
    def message(self) -> str:
        """Human-readable explanation."""
        return str(self.args[0])


class InvalidInput(DomainError):
    """The request is malformed or out of range."""

    code = "bad_request"
    status = 400


class NotFound(DomainError):
    """The named object does not exist."""

    code = "not_found"
    status = 404


class Forbidden(DomainError):
    """The caller may not do this to that object (e.g. another host's product)."""

    code = "forbidden"
    status = 403


class Conflict(DomainError):
    """The request conflicts with the current state."""

    code = "conflict"
    status = 409


class Gone(DomainError):
    """The object existed but is over."""

    code = "gone"
    status = 410


class Unavailable(DomainError):
    """A backing service (Redis, the database) is unreachable; nothing was written."""

    code = "unavailable"
    status = 503
