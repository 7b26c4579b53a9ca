"""The room socket's writer: replies of one loop turn share one write, in order (fake transport)."""

from __future__ import annotations

import asyncio

from chat.protocol import Frame
from web.room import WsConnection


class Transport:
    """Records writes, like an asyncio transport whose buffer never drains."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return sum(map(len, self.writes))


class Ws:
    """Stands in for the aiohttp response: records the close."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.closed_after: list[bytes] | None = None

    async def close(self, code: int, message: bytes) -> None:
        self.closed_after = list(self.transport.writes)


def _conn(limit: int = 1 << 20) -> tuple[WsConnection, Transport, Ws]:
    t = Transport()
    ws = Ws(t)
    return WsConnection(ws, t, limit), t, ws  # type: ignore[arg-type]


async def test_replies_of_one_turn_go_out_in_one_write_with_later_frames_in_order() -> None:
    conn, t, _ = _conn()
    replies = [Frame(b"reply%d" % i) for i in range(3)]
    for f in replies:
        assert conn.send_frame(f, corked=True)
    broadcast = Frame(b"stock")
    assert conn.send_frame(broadcast)  # joins the corked replies: never overtakes them
    assert t.writes == []
    await asyncio.sleep(0)
    assert t.writes == [b"".join(f.wire for f in [*replies, broadcast])]


async def test_broadcast_frames_are_written_at_once_when_nothing_waits() -> None:
    conn, t, _ = _conn()
    frame = Frame(b"chat")
    assert conn.send_frame(frame)
    assert t.writes == [frame.wire]


async def test_corked_bytes_count_against_the_client_buffer_limit() -> None:
    conn, t, _ = _conn(limit=10)
    assert conn.send_frame(Frame(b"x" * 9), corked=True)
    assert not conn.send_frame(Frame(b"y" * 9), corked=True)
    await asyncio.sleep(0)
    assert len(t.writes) == 1


async def test_close_sends_the_waiting_reply_before_the_close_frame() -> None:
    conn, t, ws = _conn()
    reason = Frame(b"error: too many frames")
    conn.send_frame(reason, corked=True)
    await conn.close(4008, "abuse")
    assert ws.closed_after == [reason.wire]
    await asyncio.sleep(0)
    assert t.writes == [reason.wire]  # not written twice


async def test_a_closed_transport_gets_nothing() -> None:
    conn, t, _ = _conn()
    conn.send_frame(Frame(b"a"), corked=True)
    t.closing = True
    await asyncio.sleep(0)
    assert t.writes == []
