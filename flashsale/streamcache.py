"""Which stream each sale sells in, asked once per sale (a sale never changes stream)."""

from __future__ import annotations

from flashsale.memo import Memo
from flashsale.service import SaleService


class StreamCache:
    """Caches ``SaleService.get_sale(id).stream_id`` so hot paths do not query SQL per call."""

    def __init__(self, sales: SaleService) -> None:
        self._sales = sales
        self._stream_of: Memo[int, str | None] = Memo()

    async def stream_of(self, sale_id: int) -> str | None:
        """The stream a sale sells in (None for a sale outside any show)."""

        async def load() -> str | None:
            return (await self._sales.get_sale(sale_id)).stream_id

        return await self._stream_of.get(sale_id, load)

    def known(self, sale_id: int) -> str | None:
        """The cached stream of a sale, without asking (None when not cached yet)."""
        return self._stream_of.known(sale_id)
