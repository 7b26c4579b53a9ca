"""``livesell verify-draw``: re-run a published draw from its entry list, seed and commitment."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from flashsale.draw import SeedMismatch, entries_hash, entry_list, verify


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``verify-draw`` subcommand."""
    p = sub.add_parser("verify-draw", help="re-run a published draw; exit 1 on a wrong seed")
    p.add_argument("--entries", required=True, help="the published entry ids, one per line")
    p.add_argument("--seed", required=True, help="the revealed seed, hex")
    p.add_argument("--commitment", required=True, help="the commitment published before entry")
    p.add_argument("--winners", type=int, required=True, help="how many winners were drawn")


def run(args: argparse.Namespace) -> int:
    """Print the winners (and the entry list's hash) as JSON; 1 when the seed does not match."""
    lines = Path(args.entries).read_text(encoding="utf-8").splitlines()
    entries = entry_list(u for u in lines if u)
    try:
        seed = bytes.fromhex(args.seed)
    except ValueError:
        print("verify-draw: --seed must be hex", file=sys.stderr)
        return 2
    try:
        winners = verify(entries, seed, args.commitment, args.winners)
    except SeedMismatch as exc:
        print(json.dumps({"ok": False, "error": exc.code, "message": str(exc)}))
        return 1
    print(json.dumps({"ok": True, "entries": len(entries), "entries_hash": entries_hash(entries),
                      "winners": winners}, indent=2))  # fmt: skip
    return 0
