"""What the sale service reports for monitoring, and the interface the edge implements to count it.

The domain never imports a metrics library: the web layer passes in a ``BuyMeter`` that turns
these calls into Prometheus series (web/metrics.py).
"""

from __future__ import annotations

from typing import Protocol


class BuyMeter(Protocol):
    """Hears every buy's outcome and every buy script call. Must be cheap and never raise."""

    def buy_outcome(self, outcome: str) -> None:
        """One buy ended: ``reserved``, ``duplicate`` or a domain error code (``sold_out``...)."""
        ...

    def lua_call(self, seconds: float, buyers: int) -> None:
        """One buy.lua call for ``buyers`` coalesced buyers took ``seconds`` (as awaited here)."""
        ...

    def holds_expired(self, count: int) -> None:
        """``count`` unpaid reservations expired and their stock went back on sale."""
        ...


class NullMeter:
    """A meter that counts nothing (the default)."""

    def buy_outcome(self, outcome: str) -> None:
        """Ignore ``outcome``."""

    def lua_call(self, seconds: float, buyers: int) -> None:
        """Ignore the call."""

    def holds_expired(self, count: int) -> None:
        """Ignore ``count``."""
