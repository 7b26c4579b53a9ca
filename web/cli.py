"""The ``livesell`` command: serve, token, audit."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from typing import Any

from web.auth import Role, TokenSigner
from web.logs import configure_logging
from web.settings import Settings


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from aiohttp import web

    from web.app import create_app
    from web.exposure import insecure_reason
    from web.workers import Supervisor, private_port

    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        pass
    host = args.host or settings.host
    port = args.port or settings.port
    workers = args.workers or settings.workers
    if (why := insecure_reason(settings, host)) is not None:
        print(f"livesell: {why}", file=sys.stderr)
        return 2
    if args.worker_index is None and workers > 1:
        return Supervisor(settings, host, port, workers).run()
    if args.worker_index is None:
        logging.getLogger("livesell").info("serving on http://%s:%d", host, port)
        web.run_app(
            create_app(settings), host=host, port=port, access_log=None, shutdown_timeout=10,
            print=lambda *_: None,
        )  # fmt: skip
        return 0
    asyncio.run(
        _run_worker(create_app(settings), host, port, private_port(port, args.worker_index))
    )
    return 0


async def _run_worker(app: Any, host: str, port: int, own_port: int) -> None:
    """One of several workers: the shared port (SO_REUSEPORT) plus a port of its own."""
    import signal

    from aiohttp import web

    runner = web.AppRunner(app, access_log=None, shutdown_timeout=10)
    await runner.setup()
    await web.TCPSite(runner, host, port, reuse_port=True).start()
    await web.TCPSite(runner, host, own_port).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def _token(settings: Settings, args: argparse.Namespace) -> int:
    signer = TokenSigner(settings.resolved_secret(), settings.token_ttl_s)
    if args.count is None:
        print(signer.mint(args.user, Role(args.role), args.name, args.ttl))
        return 0
    # Bulk minting for load tests: one token per line for users <user>-0 .. <user>-(N-1).
    lines = [
        signer.mint(f"{args.user}-{i}", Role(args.role), None, args.ttl) for i in range(args.count)
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


async def _audit(settings: Settings, sale_id: int, sync: bool) -> dict[str, object]:
    from flashsale.audit import audit_sale
    from inventory.database import Database
    from inventory.ledger import Ledger
    from web.resources import make_redis, redis_url_file

    url = settings.redis_url
    if not url:
        path = redis_url_file(settings.data_dir)
        if not path.exists():
            raise SystemExit("no LIVESELL_REDIS_URL and no running private Redis under data dir")
        url = path.read_text().strip()
    redis = make_redis(url, 4)
    db = Database(settings.resolved_database_url())
    try:
        await db.open()
        report = await audit_sale(redis, Ledger(db), settings.redis_prefix, sale_id, sync=sync)
        return report.to_json()
    finally:
        await redis.aclose()
        await db.close()


async def _persist(settings: Settings) -> None:
    import signal

    from flashsale.persister import Persister
    from inventory.database import Database
    from inventory.ledger import Ledger
    from web.resources import make_redis

    if not settings.redis_url:
        raise SystemExit("livesell persist needs LIVESELL_REDIS_URL")
    redis = make_redis(settings.redis_url, 4)
    db = Database(settings.resolved_database_url())
    await db.open()
    persister = Persister(
        redis,
        Ledger(db),
        settings.redis_prefix,
        interval_s=settings.persister_interval_s,
        claim_idle_ms=settings.persister_claim_idle_ms,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    persister.start()
    try:
        await stop.wait()
    finally:
        await persister.close()
        await redis.aclose()
        await db.close()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``livesell`` console script."""
    parser = argparse.ArgumentParser(prog="livesell", description="livesell server")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("serve", help="run the server (settings from LIVESELL_* variables)")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--workers", type=int, help="server processes on one port (LIVESELL_WORKERS)")
    p.add_argument("--worker-index", type=int, help=argparse.SUPPRESS)
    p = sub.add_parser("token", help="print a signed bearer token")
    p.add_argument("--role", choices=[r.value for r in Role], default="viewer")
    p.add_argument("--user", required=True)
    p.add_argument("--name", help="display name (default: the user id)")
    p.add_argument("--ttl", type=int, help="lifetime in seconds")
    p.add_argument("--count", type=int, help="print N tokens for users <user>-0..<user>-(N-1)")
    p = sub.add_parser("audit", help="check a sale's invariants; exit 1 when any fails")
    p.add_argument("--sale", type=int, required=True)
    p.add_argument("--no-sync", action="store_true", help="do not drain pending events first")
    sub.add_parser("persist", help="run only the Redis-to-SQL order persister (until SIGTERM)")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.log_format)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    if args.cmd == "serve":
        return _serve(settings, args)
    if args.cmd == "token":
        return _token(settings, args)
    if args.cmd == "persist":
        asyncio.run(_persist(settings))
        return 0
    report = asyncio.run(_audit(settings, args.sale, not args.no_sync))
    print(json.dumps(report, indent=2))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
