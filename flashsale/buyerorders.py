"""A buyer's own orders in one show: what the room lists under "Your orders" with a Pay button.

Orders won rather than bought (an auction lot, a fair draw) never passed through the viewer's
buy button, so the room cannot know them from its own taps: it asks here. SQL finds the ids
(the persister writes every order within a second); Redis gives each one's live state.
"""

from __future__ import annotations

from collections.abc import Collection

from flashsale.errors import OrderNotFound
from flashsale.order import OrderView
from flashsale.service import SaleService
from inventory.ledger import Ledger


async def buyer_orders(
    sales: SaleService, ledger: Ledger, user_id: str, stream_id: str, limit: int = 30,
    lot_ids: Collection[int] = (),
) -> list[OrderView]:  # fmt: skip
    """The buyer's newest orders in the stream's sales and lots, newest first, live state."""
    found = []
    for order_id in await ledger.buyer_order_ids(user_id, stream_id, limit, lot_ids):
        try:
            found.append(await sales.get_order(order_id))
        except OrderNotFound:
            continue  # erased since (privacy): nothing to show
    return found
