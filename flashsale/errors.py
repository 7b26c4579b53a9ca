"""Flash-sale failures, each with the stable code the API returns."""

from __future__ import annotations

from inventory.errors import Conflict, DomainError, Gone, InvalidInput, NotFound, Unavailable


class SaleNotFound(NotFound):
    """No such sale."""

    code = "sale_not_found"


class OrderNotFound(NotFound):
    """No such order."""

    code = "order_not_found"


class SoldOut(Conflict):
    """No stock left."""

    code = "sold_out"


class LimitReached(Conflict):
    """The buyer already holds the per-user limit."""

    code = "limit_reached"


class TooManyAttempts(DomainError):
    """The buyer has made too many distinct attempts in this sale."""

    code = "too_many_attempts"
    status = 429


class NotOpen(Conflict):
    """The sale has not opened yet."""

    code = "not_open"


class Ended(Gone):
    """The sale is over."""

    code = "ended"


class OrderStateConflict(Conflict):
    """The order is not in a state that allows this (e.g. paying a cancelled order)."""

    code = "order_state"


class HoldExpired(Gone):
    """The order's payment hold ran out; its stock went back on sale."""

    code = "expired"


class BadSaleInput(InvalidInput):
    """A sale or buy parameter is out of range."""

    code = "bad_request"


class RedisUnavailable(Unavailable):
    """Redis is unreachable; nothing was written."""

    code = "unavailable"
