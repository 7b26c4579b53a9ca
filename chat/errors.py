"""Room failures, each with the stable ``code`` the socket's ``error`` event carries."""

from __future__ import annotations

from inventory.errors import DomainError, InvalidInput, NotFound


class BadFrame(InvalidInput):
    """The frame is not a valid msgpack map of a known event with valid fields."""

    code = "bad_frame"
    #: The client's ``ref`` when the frame had a valid one, so the error can echo it.
    ref: str | int | None = None


class TooLong(BadFrame):
    """The text is longer than the room allows."""

    code = "too_long"


class Unauthorized(DomainError):
    """A bearer token is needed for this (anonymous viewers may only watch)."""

    code = "unauthorized"
    status = 401


class Forbidden(DomainError):
    """The caller's room role does not allow this."""

    code = "forbidden"
    status = 403


class SelfModeration(Forbidden):
    """Moderating yourself: refused, but an honest slip, not abuse (no strike)."""


class Muted(DomainError):
    """The caller is muted in this room until ``until_ms``."""

    code = "muted"
    status = 403

    def __init__(self, until_ms: int) -> None:
        super().__init__(f"you are muted until {until_ms}")
        self.until_ms = until_ms


class Banned(DomainError):
    """The caller is banned from this room."""

    code = "banned"
    status = 403


class RateLimited(DomainError):
    """Too many messages; retry after ``retry_after_ms``."""

    code = "rate_limited"
    status = 429

    def __init__(self, retry_after_ms: int, message: str = "") -> None:
        super().__init__(message or f"too many messages; retry in {retry_after_ms} ms")
        self.retry_after_ms = retry_after_ms


class SlowMode(RateLimited):
    """Slow mode is on: one message per interval per viewer."""

    code = "slow_mode"


class BannedWord(InvalidInput):
    """The message contains a word this room does not allow."""

    code = "banned_word"


class RoomNotFound(NotFound):
    """No stream with this id."""

    code = "stream_not_found"


class MessageNotFound(NotFound):
    """No chat message with this sequence number in the room's recent history."""

    code = "message_not_found"
