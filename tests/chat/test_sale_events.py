"""Sale phases in the live room: told once per transition by Redis's clock, on every server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from tests.chat.test_room_ws import Socket, connect, make_stream, token
from tests.flashsale.helpers import buy, make_sale
from web.app import create_app
from web.auth import TokenSigner
from web.settings import Settings

Auth = Callable[..., dict[str, str]]
SALE_FIELDS = {
    "id", "product_id", "stream_id", "price_cents", "quantity", "per_user_limit", "starts_at_ms",
    "ends_at_ms", "hold_s", "state", "remaining", "sold_out", "server_time_ms", "rehearsal",
}  # fmt: skip
#: A recorded sale as a viewer must see it: (phase, sale state, remaining).
RECORDED = [
    ("scheduled", "scheduled", 2),
    ("countdown", "countdown", 2),
    ("opened", "open", 2),
    ("sold_out", "open", 0),  # the rush
    ("restocked", "open", 1),  # a buyer cancelled
    ("sold_out", "open", 0),  # someone else bought it
    ("restocked", "open", 1),  # that hold expired unpaid
    ("closed", "ended", 1),  # the window ran out
]


def phase(name: str) -> Callable[[dict[str, Any]], bool]:
    """Matches the room's ``sale`` event of one phase."""
    return lambda e: e["type"] == "sale" and e["phase"] == name


def sale_events(sock: Socket, after: int = 0) -> list[dict[str, Any]]:
    """The sequenced sale events a socket got after ``after``."""
    return [
        {k: v for k, v in e.items() if k != "_seen"}  # the test's own bookkeeping
        for e in sock.events
        if e["type"] == "sale" and e["seq"] > after
    ]


def recorded(events: list[dict[str, Any]]) -> list[tuple[str, str, int]]:
    """(phase, state, remaining) of each sale event."""
    return [(e["phase"], e["sale"]["state"], e["sale"]["remaining"]) for e in events]


async def test_a_recorded_sale_reaches_viewers_on_two_servers_exactly_once(
    client: TestClient, settings: Settings, auth: Auth, signer: TokenSigner
) -> None:
    other = TestClient(TestServer(create_app(settings)))
    await other.start_server()
    try:
        sid = await make_stream(client, auth)
        one = await connect(client, f"/ws/rooms/{sid}")
        two = await connect(other, f"/ws/rooms/{sid}")
        late = await connect(other, f"/ws/rooms/{sid}")
        sale = await make_sale(
            client, auth, quantity=2, limit=1, open_now=False, stream_id=sid, duration_s=4,
            hold_s=2,
        )  # fmt: skip
        admin = auth("admin", "ops")
        r = await other.post(
            f"/api/sales/{sale['id']}/open", json={"countdown_s": 1}, headers=admin
        )
        assert r.status == 200 and (await r.json())["state"] == "countdown"
        countdown = await one.until(phase("countdown"))
        left = countdown["sale"]["starts_at_ms"] - countdown["sale"]["server_time_ms"]
        assert 0 < left <= 1000, "a page counts down from the event alone"
        await one.until(phase("opened"), wait_s=5)
        # The rush: six buyers for two units, half of them on each server.
        servers = (client, other)
        results = await asyncio.gather(
            *(buy(servers[i % 2], auth, sale["id"], f"u{i}", f"k{i}") for i in range(6))
        )
        winners = [body["order"] for status, body in results if status == 201]
        assert len(winners) == 2
        await late.until(phase("sold_out"))
        since = max(e.get("seq", 0) for e in late.events)
        await late.ws.close()
        first, second = winners
        r = await other.post(
            f"/api/orders/{first['id']}/cancel", headers=auth("viewer", first["user_id"])
        )
        assert r.status == 200
        await one.until(phase("restocked"))
        r = await client.post(
            f"/api/orders/{second['id']}/pay", headers=auth("viewer", second["user_id"])
        )
        assert r.status == 200
        status, _ = await buy(other, auth, sale["id"], "carol", "c1")  # never paid: expires
        assert status == 201
        await one.until(lambda e: phase("sold_out")(e) and e["seq"] > since)
        # Reconnect mid-way: what was missed comes as a replay, the rest live, each once.
        back = await connect(client, f"/ws/rooms/{sid}?since={since}")
        assert back.events[0]["type"] == "resumed"
        for sock in (one, two, back):
            await sock.until(phase("closed"), wait_s=10)
        await asyncio.sleep(0.3)  # anything sent twice would arrive now
        for sock in (one, two, back):
            while True:  # read what is already there
                try:
                    await sock.until(lambda e: False, wait_s=0.05)
                except TimeoutError:
                    break
    finally:
        await other.close()
    seen_one, seen_two = sale_events(one), sale_events(two)
    assert recorded(seen_one) == RECORDED
    assert [e["seq"] for e in seen_one] == [e["seq"] for e in seen_two]
    assert [e["seq"] for e in seen_one] == sorted({e["seq"] for e in seen_one})
    assert seen_one == seen_two, "both servers deliver the very same events"
    assert recorded(sale_events(back, since)) == RECORDED[4:]
    for e in seen_one:
        assert set(e["sale"]) == SALE_FIELDS and e["sale"]["id"] == sale["id"]
        assert e["at_ms"] == e["sale"]["server_time_ms"]
    opened, closed = seen_one[2], seen_one[-1]
    assert opened["at_ms"] >= opened["sale"]["starts_at_ms"], "opened when buying began"
    assert closed["at_ms"] >= closed["sale"]["ends_at_ms"], "closed when the window ended"
    assert opened["at_ms"] - opened["sale"]["starts_at_ms"] < 1000


async def test_snapshot_shows_the_sale_that_matters_and_the_rest(
    client: TestClient, auth: Auth, signer: TokenSigner
) -> None:
    sid = await make_stream(client, auth)
    admin = auth("admin", "ops")
    selling = await make_sale(client, auth, quantity=5, stream_id=sid)
    later = await make_sale(client, auth, open_now=False, stream_id=sid)
    # Sale 8 open and selling, sale 9 created after it: a new viewer sees sale 8.
    snap = (await connect(client, f"/ws/rooms/{sid}")).events[0]
    assert snap["sale"]["id"] == selling["id"] and snap["sale"]["state"] == "open"
    assert [s["id"] for s in snap["sales"]] == [selling["id"], later["id"]]
    assert [s["state"] for s in snap["sales"]] == ["open", "scheduled"]
    soon = await make_sale(client, auth, open_now=False, stream_id=sid)
    r = await client.post(f"/api/sales/{soon['id']}/open", json={"countdown_s": 60}, headers=admin)
    assert r.status == 200
    snap = (await connect(client, f"/ws/rooms/{sid}")).events[0]
    assert [s["id"] for s in snap["sales"]] == [selling["id"], soon["id"], later["id"]]
    r = await client.post(f"/api/sales/{selling['id']}/close", headers=admin)
    assert r.status == 200
    snap = (await connect(client, f"/ws/rooms/{sid}")).events[0]
    assert snap["sale"]["id"] == soon["id"] and snap["sale"]["state"] == "countdown"
    assert [s["id"] for s in snap["sales"]] == [soon["id"], later["id"]]


async def test_a_sale_that_changed_while_nobody_watched_is_right_in_the_snapshot(
    client: TestClient, auth: Auth, signer: TokenSigner
) -> None:
    sid = await make_stream(client, auth)
    start = int(time.time() * 1000) + 400
    sale = await make_sale(
        client, auth, quantity=1, open_now=False, stream_id=sid, starts_at_ms=start, duration_s=2
    )
    assert sale["state"] == "countdown"
    snap = (await connect(client, f"/ws/rooms/{sid}")).events[0]
    assert snap["sale"]["state"] == "countdown"
    await asyncio.sleep(0.6)
    snap = (await connect(client, f"/ws/rooms/{sid}")).events[0]
    assert snap["sale"]["state"] == "open" and snap["sale"]["sold_out"] is False
    assert (await buy(client, auth, sale["id"], "bob", "b1"))[0] == 201
    snap = (await connect(client, f"/ws/rooms/{sid}")).events[0]
    assert snap["sale"]["remaining"] == 0 and snap["sale"]["sold_out"] is True
    await asyncio.sleep(2)
    snap = (await connect(client, f"/ws/rooms/{sid}")).events[0]
    assert snap["sale"] is None and snap["sales"] == []
    r = await client.get(f"/api/sales/{sale['id']}")
    assert (await r.json())["state"] == "ended"


async def test_socket_buys_are_for_this_rooms_sales_and_muted_viewers_may_buy(
    client: TestClient, auth: Auth, signer: TokenSigner
) -> None:
    here = await make_stream(client, auth)
    there = await make_stream(client, auth)
    elsewhere = await make_sale(client, auth, stream_id=there)
    loose = await make_sale(client, auth)  # a sale in no stream: HTTP only
    mine = await make_sale(client, auth, stream_id=here)
    r = await client.post(
        f"/api/streams/{here}/room/mute",
        json={"user_id": "alice", "seconds": 600},
        headers=auth("host", "hostess"),
    )
    assert r.status == 200
    alice = await connect(client, f"/ws/rooms/{here}?token={token(signer, 'alice')}")
    for sale_id, ref in ((elsewhere["id"], "x"), (loose["id"], "y"), (10**9, "z")):
        await alice.send("buy", sale_id=sale_id, key=f"k-{ref}", ref=ref)
        err = await alice.until(lambda e, ref=ref: e["type"] == "error" and e["ref"] == ref)
        assert err["code"] == "sale_not_found"
    await alice.send("chat", text="can I talk?", ref="c")
    assert (await alice.until(lambda e: e.get("ref") == "c"))["code"] == "muted"
    await alice.send("buy", sale_id=mine["id"], key="k-mine", ref="m")
    res = await alice.until(lambda e: e.get("ref") == "m")
    assert res["type"] == "buy_result" and res["order"]["state"] == "reserved"
    r = await client.get(f"/api/sales/{elsewhere['id']}")
    assert (await r.json())["remaining"] == elsewhere["remaining"], "nothing was reserved"
