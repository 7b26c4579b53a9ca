"""The ``livesell-loadtest`` command: ``flashsale`` and ``chat`` load generators."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import aiohttp

Runner = Callable[[argparse.Namespace], Coroutine[Any, Any, dict[str, Any]]]


def install_uvloop() -> None:
    """Use uvloop when it is there, and collect garbage less often."""
    # The generator shares the cores with the server: uvloop's cheaper loop leaves it more CPU.
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        pass
    # Thousands of open sockets make every full collection walk millions of objects: with
    # Python's 700,10,10 a 5,000-viewer show stalled the generator's loop for 1-2 s at the
    # sale's opening (and marked the run invalid). The server does the same (web/app.py).
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 2, 100)


def _build_parser() -> tuple[argparse.ArgumentParser, dict[str, Runner]]:
    from loadtest import auction_load, chat_load, flashsale_load, memberprice_load, social_load
    from loadtest.show import command as show

    parser = argparse.ArgumentParser(prog="livesell-loadtest", description="livesell load tests")
    sub = parser.add_subparsers(dest="cmd", required=True)
    flashsale_load.add_parser(sub)
    chat_load.add_parser(sub)
    social_load.add_parsers(sub)
    memberprice_load.add_parser(sub)
    show.add_parser(sub)
    auction_load.add_parser(sub)
    runners: dict[str, Runner] = {
        "flashsale": flashsale_load.run_from_args,
        "chat": chat_load.run_chat,
    }
    runners["auction"] = auction_load.run_from_args
    runners["memberprice"] = memberprice_load.run_from_args
    return parser, runners | dict.fromkeys(social_load.COMMANDS, social_load.run_from_args)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``livesell-loadtest`` console script."""
    try:
        parser, runners = _build_parser()
    except ModuleNotFoundError as exc:
        # The load tool's packages are an extra, not the server's runtime dependencies.
        raise SystemExit(
            f"livesell-loadtest needs {exc.name}: pip install 'livesell[bench]'"
        ) from None
    args = parser.parse_args(argv)
    install_uvloop()
    if args.cmd == "show":
        from loadtest.show.command import execute

        return execute(args)
    try:
        result: dict[str, Any] = asyncio.run(runners[args.cmd](args))
    except (RuntimeError, OSError, TimeoutError, aiohttp.ClientError) as exc:
        # A load tool runs exactly when things break: one line, never a traceback.
        print(f"{args.cmd}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    out = getattr(args, "json", None)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(result, indent=2) + "\n")
    if args.cmd == "flashsale":
        from loadtest.flashsale_verdict import summary, verdict, write_orders

        orders = args.orders or (str(Path(out).with_suffix(".orders.jsonl")) if out else None)
        if orders:
            write_orders(orders, result)
        code, reason = verdict(result)
        print(summary(result) + ("" if code == 0 else f"; {reason}"))
        return code
    if args.cmd in ("groupbuy", "coupons"):
        from loadtest.social_load import summary as social_summary

        print(social_summary(result))
        return 0 if result["oversold"] == 0 and result["audit_ok"] else 1
    if args.cmd == "memberprice":
        from loadtest.memberprice_load import ok
        from loadtest.memberprice_load import summary as memberprice_summary

        print(memberprice_summary(result))
        return 0 if ok(result) else 1
    if args.cmd == "auction":
        from loadtest.auction_load import summary as auction_summary

        print(auction_summary(result))
        return 0 if result["audit_ok"] else 1
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
