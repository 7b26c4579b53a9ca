"""The bounds of a sale's terms, checked before anything is written."""

from __future__ import annotations

from flashsale import errors
from flashsale.view import NOT_SCHEDULED_END_MS
from inventory.errors import NotFound


def check_terms(
    product_id: int,
    quantity: int,
    per_user_limit: int,
    duration_s: int,
    hold_s: int,
    starts_at_ms: int | None,
) -> None:
    """Raise BadSaleInput (or NotFound for an impossible product id) for terms out of bounds."""
    if not 1 <= product_id <= 2**31 - 1:
        raise NotFound(f"product {product_id} not found")
    if not 1 <= quantity <= 10_000_000:
        raise errors.BadSaleInput("quantity must be 1..10,000,000")
    if not 1 <= per_user_limit <= 1000:
        raise errors.BadSaleInput("per_user_limit must be 1..1000")
    if not 1 <= duration_s <= 7 * 86400:
        raise errors.BadSaleInput("duration_s must be 1..604800")
    if not 1 <= hold_s <= 86400:
        raise errors.BadSaleInput("hold_s must be 1..86400")
    if starts_at_ms is not None and not 0 < starts_at_ms < NOT_SCHEDULED_END_MS:
        raise errors.BadSaleInput("starts_at_ms out of range")


def check_price(price_cents: int) -> None:
    """Raise BadSaleInput for a unit price outside 0..10^12 cents."""
    if not 0 <= price_cents <= 10**12:
        raise errors.BadSaleInput("price_cents must be between 0 and 10^12")
