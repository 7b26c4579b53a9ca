"""The fan-out's delivery lag: measured per stamped event, only when a socket was written."""

from __future__ import annotations

import time

import msgpack

from chat.fanout import LocalRoom
from chat.keys import RoomKeys
from chat.member import Delivery, Member, RoomLimits
from chat.protocol import encode, unwrap
from tests.chat.helpers import FakeConnection


class Lags:
    """chat.fanout.FanoutMeter that keeps what it hears."""

    def __init__(self) -> None:
        self.seen: list[float] = []

    def delivery_lag(self, seconds: float) -> None:
        """Keep the lag."""
        self.seen.append(seconds)


def room_with(*conns: FakeConnection) -> tuple[LocalRoom, Lags]:
    """A local room whose members are live on ``conns``."""
    lags = Lags()
    room = LocalRoom("s1", RoomKeys.of("t", "s1"), lags)
    for conn in conns:
        member = Member("s1", conn, None, RoomLimits())
        member.state = Delivery.LIVE
        room.live[member] = conn
    return room, lags


def now_us() -> int:
    """The wall clock in microseconds, as the stamps are."""
    return time.time_ns() // 1000


def test_a_stamped_message_unwraps_to_the_event_and_its_time() -> None:
    event = encode({"type": "chat", "text": "hi", "seq": 3})
    stamp = now_us()
    assert unwrap(msgpack.packb(stamp) + event) == (event, stamp)
    assert unwrap(event) == (event, 0)  # unsequenced broadcasts carry no stamp


async def test_each_stamped_event_of_a_frame_is_measured_once() -> None:
    conns = [FakeConnection() for _ in range(3)]
    room, lags = room_with(*conns)
    past = now_us() - 20_000
    room.push(encode({"type": "chat", "seq": 1}), 1, 0.05, past)
    room.push(encode({"type": "viewers", "count": 3}), 0, 0.05)  # unstamped
    room.push(encode({"type": "chat", "seq": 2}), 2, 0.05, now_us() + 5_000_000)  # clock skew
    room.flush()
    assert all(len(c.frames) == 1 for c in conns)
    assert len(lags.seen) == 2  # per event, not per socket; the unstamped one is not
    assert lags.seen[0] >= 0.02 and lags.seen[1] == 0.0  # a clock ahead reads as no lag
    room.flush()  # nothing pending: nothing measured again
    assert len(lags.seen) == 2


async def test_no_measure_when_no_socket_took_the_frame() -> None:
    full = FakeConnection(backlog=2 << 20)  # its buffer is full: set aside, not written
    room, lags = room_with(full)
    room.push(encode({"type": "chat", "seq": 1}), 1, 0.05, now_us())
    room.flush()
    assert full.frames == [] and len(room.lagging) == 1
    assert lags.seen == []


async def test_measured_when_some_sockets_took_the_frame_and_others_were_full() -> None:
    ok, full = FakeConnection(), FakeConnection(backlog=2 << 20)
    room, lags = room_with(ok, full)
    room.push(encode({"type": "chat", "seq": 1}), 1, 0.05, now_us())
    room.flush()
    assert len(ok.frames) == 1 and full.frames == []
    assert len(lags.seen) == 1
