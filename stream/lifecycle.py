"""How the relay tells the rest of the product that a stream went live or ended."""

from __future__ import annotations

from typing import Protocol

#: The reason a broadcast ended when its publisher ended it on purpose (the WHIP DELETE);
#: every other reason (disconnected, no_media, shutdown) may be followed by the same host's return.
UNPUBLISHED = "unpublished"


class StreamLifecycle(Protocol):
    """Receives stream state changes; implemented outside ``stream`` (the web layer)."""

    async def stream_live(self, stream_id: str) -> None:
        """The publisher's media started flowing."""
        ...

    async def stream_ended(self, stream_id: str, reason: str) -> None:
        """The broadcast ended (``reason``: unpublished, disconnected, no_media, shutdown)."""
        ...


class NullLifecycle:
    """A lifecycle that ignores every event (tests, benchmarks)."""

    async def stream_live(self, stream_id: str) -> None:
        """Ignore."""

    async def stream_ended(self, stream_id: str, reason: str) -> None:
        """Ignore."""
