"""The provably fair draw: deterministic, verifiable, a wrong seed detected, 20,000 entries."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from pathlib import Path

import pytest

from flashsale.audit import audit_sale
from flashsale.draw import (
    DrawClosed,
    DrawNotDue,
    Draws,
    SeedMismatch,
    commitment_of,
    draw_winners,
    entries_hash,
    entry_id,
    verify,
)
from flashsale.persister import Persister
from tests.flashsale.conftest import OPS, Core
from web import cli

KEY = b"test entry key"


def test_the_documented_algorithm_is_deterministic() -> None:
    """Same entries (in any order, repeated) and seed give the same winners: HMAC rank, first N."""
    seed = bytes(range(32))
    entries = [f"u{i}" for i in range(1000)]
    shuffled = list(reversed(entries)) + entries[:10]
    first = draw_winners(entries, seed, 5)
    assert first == draw_winners(shuffled, seed, 5)
    by_hand = sorted(entries, key=lambda u: hmac.new(seed, u.encode(), hashlib.sha256).hexdigest())
    assert first == by_hand[:5]
    assert draw_winners(entries, b"\x01" + seed[1:], 5) != first
    assert (
        entries_hash(shuffled)
        == hashlib.sha256("".join(f"{u}\n" for u in sorted(entries)).encode()).hexdigest()
    )


def test_a_seed_that_does_not_match_its_commitment_is_detected() -> None:
    """verify() re-runs the draw only for the committed seed."""
    seed = bytes(32)
    commitment = commitment_of(seed)
    assert verify(["a", "b", "c"], seed, commitment.upper(), 2) == draw_winners("abc", seed, 2)
    with pytest.raises(SeedMismatch):
        verify(["a", "b", "c"], b"\x01" * 32, commitment, 2)


async def test_a_live_draw_of_20000_entries(core: Core) -> None:
    """Entries once per user until the window closes; winners get orders; anyone can verify."""
    draws = Draws(core.redis, core.sales, core.prefix, KEY)
    product = await core.catalog.create_product("Sneaker", 20000)
    sale = await core.sales.create_sale(product.id, 50, 1, OPS, hold_s=300)
    draw = await draws.create(sale.id, window_s=600, by=OPS)
    assert draw.seed is None and len(draw.commitment) == 64
    users = [f"user-{i}" for i in range(20_000)]
    for start in range(0, len(users), 500):
        await asyncio.gather(*(draws.enter(sale.id, u) for u in users[start : start + 500]))
    eid, new = await draws.enter(sale.id, "user-7")
    assert (eid, new) == (entry_id(KEY, sale.id, "user-7"), False)
    with pytest.raises(DrawNotDue):
        await draws.close(sale.id)
    with pytest.raises(DrawNotDue):
        await draws.entries(sale.id)
    now = await draws.get(sale.id)
    assert now.entries == 20_000
    done = await draws.close(sale.id, now=True)  # the host ends the window early
    with pytest.raises(DrawClosed):
        await draws.enter(sale.id, "late")
    again = await draws.close(sale.id)
    assert again.winner_ids == done.winner_ids
    assert done.state == "awarded" and done.seed is not None and len(done.winner_ids) == 50
    entries = await draws.entries(sale.id)
    assert done.entries_hash == entries_hash(entries)
    assert list(done.winner_ids) == verify(entries, bytes.fromhex(done.seed), draw.commitment, 50)
    await Persister(core.redis, core.ledger, core.prefix, consumer="t").drain(sale.id)
    orders = await core.ledger.orders_for_sale(sale.id)
    by_entry = {entry_id(KEY, sale.id, u): u for u in users}
    assert sorted(o.user_id for o in orders) == sorted(by_entry[e] for e in done.winner_ids)
    assert "user-" not in "".join(entries)  # the published list names nobody
    assert all(o.state == "reserved" for o in orders)
    report = await audit_sale(core.redis, core.ledger, core.prefix, sale.id)
    assert report.ok, report.to_json()


async def test_entries_close_by_redis_clock(core: Core) -> None:
    """After the window, by Redis's clock, no entry is taken and the draw can be closed."""
    draws = Draws(core.redis, core.sales, core.prefix, KEY)
    product = await core.catalog.create_product("Cap", 900)
    sale = await core.sales.create_sale(product.id, 1, 1, OPS)
    draw = await draws.create(sale.id, window_s=5, by=OPS)
    ann, new = await draws.enter(sale.id, "ann")
    assert new
    await asyncio.sleep((draw.end_ms - draw.clock_ms) / 1000 + 0.05)
    with pytest.raises(DrawClosed):
        await draws.enter(sale.id, "bob")
    assert await draws.close_due() == 1  # what the draw closer runs in every process
    assert await draws.close_due() == 0
    done = await draws.get(sale.id)
    assert done.winner_ids == (ann,) and done.state == "awarded"


def test_livesell_verify_draw_prints_the_winners_and_detects_a_wrong_seed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI re-runs the draw from a file; a seed that is not the committed one exits 1."""
    seed = bytes(range(32))
    entries = [f"e{i:04d}" for i in range(300)]
    path = tmp_path / "entries.txt"
    path.write_text("".join(f"{e}\n" for e in reversed(entries)))
    args = ["verify-draw", "--entries", str(path), "--commitment", commitment_of(seed),
            "--winners", "3"]  # fmt: skip
    assert cli.main([*args, "--seed", seed.hex()]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["winners"] == draw_winners(entries, seed, 3) and out["entries"] == 300
    assert out["entries_hash"] == entries_hash(entries)
    assert cli.main([*args, "--seed", (b"\x00" * 32).hex()]) == 1
    assert json.loads(capsys.readouterr().out)["error"] == "seed_mismatch"
