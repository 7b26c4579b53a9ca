"""One synthetic viewer: its socket, the last ``seq`` it applied, and its part in the sale."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from loadtest.chat_load import WsClient
    from loadtest.show.crowd import Crowd


class Viewer:
    """A viewer's state; the crowd does the work (one shared decode per frame)."""

    __slots__ = (
        "buyer",
        "crowd",
        "idx",
        "join_ns",
        "last_sale",
        "leaving",
        "live",
        "rejoin",
        "retries",
        "seq",
        "sock",
        "tap_ns",
        "tap_offset_s",
        "token",
    )

    def __init__(self, crowd: Crowd, idx: int, token: str, buyer: bool, tap_offset_s: float):
        self.crowd = crowd
        self.idx = idx
        self.token = token
        self.buyer = buyer
        self.tap_offset_s = tap_offset_s
        self.sock: WsClient | None = None
        self.seq = 0
        self.live = False  # has its snapshot (or resumed) on the current socket
        self.leaving = False  # we closed the socket ourselves
        self.rejoin = False  # the current join carries ``since``
        self.last_sale = 0  # the last sale whose opening this viewer acted on
        self.join_ns = 0
        self.tap_ns = 0
        self.retries = 0

    def on_frame(self, payload: bytes, now_ns: int) -> None:
        """A binary frame arrived on this viewer's socket."""
        self.crowd.on_frame(self, payload, now_ns)
