"""The ``livesell`` command: serve, token, revoke, audit, reconcile, migrate, persist, settings."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import sys
from typing import Any

from web import drawcli
from web.auth import Role, TokenSigner
from web.errors import ConfigError
from web.logs import configure_logging
from web.settings import Settings

#: Pending connections the kernel queues for us. A show's audience arrives within seconds;
#: with aiohttp's default of 128 a burst of joins overflows it and the dropped SYNs come back
#: 1 s later (measured: join p99 1.0 s at 500 joins/s, p50 5 ms).
JOIN_BACKLOG = 2048


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from aiohttp import web

    from web.app import create_app
    from web.datalock import DataDirBusy, DataDirLock
    from web.drain import bound_shutdown, request_timeout
    from web.exposure import insecure_reason
    from web.pages import print_links_on_startup, public_url
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
    if args.worker_index is not None:
        own_port = private_port(port, args.worker_index)
        app = create_app(settings)
        bound_shutdown(app, settings.drain_s)
        if args.worker_index == 0:
            # Once for the whole server, at the shared port (advertise_url is this worker's own).
            shared = public_url(dataclasses.replace(settings, advertise_url=""), host, port)
            print_links_on_startup(app, shared)
        grace = request_timeout(settings.drain_s)
        asyncio.run(_run_worker(app, host, port, own_port, args.parent_pid, grace))
        return 0
    # The parent owns the data directory (private Redis, pid files, SQLite) until it exits.
    lock = DataDirLock(settings.data_dir)
    try:
        lock.acquire()
    except DataDirBusy as exc:
        raise SystemExit(f"livesell serve: {exc}") from None
    try:
        if workers > 1:
            return Supervisor(settings, host, port, workers).run()
        logging.getLogger("livesell").info("serving on http://%s:%d", host, port)
        app = create_app(settings)
        bound_shutdown(app, settings.drain_s)
        print_links_on_startup(app, public_url(settings, host, port))
        web.run_app(
            app, host=host, port=port, access_log=None,
            shutdown_timeout=request_timeout(settings.drain_s),
            print=lambda *_: None, backlog=JOIN_BACKLOG,
        )  # fmt: skip
    finally:
        lock.release()
    return 0


async def _until_stopped(parent_pid: int | None) -> None:
    """Wait for SIGTERM or SIGINT, or, in a child, for the parent to be gone."""
    import signal

    from inventory.tasks import cancel_all, supervise
    from web.process import watch_parent

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    tasks = [] if parent_pid is None else [supervise(watch_parent(parent_pid, stop.set), "parent")]
    try:
        await stop.wait()
    finally:
        await cancel_all(tasks)


async def _run_worker(
    app: Any, host: str, port: int, own_port: int, parent: int | None, shutdown_s: float
) -> None:
    """One of several workers: the shared port (SO_REUSEPORT) plus a port of its own."""
    from aiohttp import web

    runner = web.AppRunner(app, access_log=None, shutdown_timeout=shutdown_s)
    await runner.setup()
    await web.TCPSite(runner, host, port, reuse_port=True, backlog=JOIN_BACKLOG).start()
    await web.TCPSite(runner, host, own_port, backlog=JOIN_BACKLOG).start()
    try:
        await _until_stopped(parent)
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


def _running_redis(settings: Settings) -> Any:
    """A client of the Redis the running server uses (its private one, found under data_dir)."""
    from web.resources import make_redis, redis_url_file

    url = settings.redis_url
    if not url:
        path = redis_url_file(settings.data_dir)
        if not path.exists():
            raise SystemExit("no LIVESELL_REDIS_URL and no running private Redis under data dir")
        url = path.read_text().strip()
    return make_redis(url, 4)


async def _login_link(settings: Settings, args: argparse.Namespace) -> None:
    from inventory.redisclient import close as close_redis
    from web.pages import public_url, sign_in_links
    from web.signin import LoginCodes

    redis = _running_redis(settings)
    signer = TokenSigner(settings.resolved_secret(), settings.token_ttl_s)
    base = public_url(settings, settings.host, settings.port)
    try:
        codes = LoginCodes(redis, settings.redis_prefix, signer)
        links = await sign_in_links(codes, base, Role(args.role), args.user or args.role)
    finally:
        await close_redis(redis)
    for page, url in links.items():
        print(f"{page}: {url}")


async def _revoke(settings: Settings, args: argparse.Namespace) -> dict[str, object]:
    from web.errors import AuthError
    from web.revocation import RevocationList, RevocationStore

    redis = _running_redis(settings)
    try:
        store = RevocationStore(redis, settings.redis_prefix, RevocationList())
        if args.user:
            rev = await store.revoke_user(args.user)
        elif args.jti:
            rev = await store.revoke_jti(args.jti)
        else:
            try:
                who, exp = TokenSigner(settings.resolved_secret()).verify_signature(args.token)
            except AuthError as exc:
                raise SystemExit(f"livesell revoke: {exc}") from None
            if not who.jti:
                raise SystemExit("livesell revoke: this token has no id; revoke its --user")
            rev = await store.revoke_jti(who.jti, int(exp))
    finally:
        await redis.aclose()
    return dataclasses.asdict(rev)


async def _audit(settings: Settings, sale_id: int, sync: bool) -> dict[str, object]:
    from flashsale.audit import audit_sale
    from inventory.database import Database
    from inventory.ledger import Ledger
    from inventory.redisclient import close as close_redis

    redis = _running_redis(settings)
    db = Database(settings.resolved_database_url(), timeout_s=settings.database_timeout_s)
    try:
        await db.open()
        ledger = Ledger(db, outbox=settings.webhooks_on)
        report = await audit_sale(redis, ledger, settings.redis_prefix, sale_id, sync=sync)
        return report.to_json()
    finally:
        await close_redis(redis)
        await db.close()


async def _reconcile(settings: Settings, sale_id: int, force: bool) -> dict[str, object]:
    from flashsale.reconciler import Reconciler
    from inventory.catalog import Catalog
    from inventory.database import Database
    from inventory.errors import DomainError
    from inventory.ledger import Ledger

    redis = _running_redis(settings)
    db = Database(settings.resolved_database_url())
    try:
        await db.open()
        ledger = Ledger(db)
        reconciler = Reconciler(redis, ledger, Catalog(db), settings.redis_prefix)
        try:
            return (await reconciler.reconcile(sale_id, force)).to_json()
        except DomainError as exc:
            return {"rebuilt": False, "sale_id": sale_id, "error": exc.code, "message": str(exc)}
    finally:
        await redis.aclose()
        await db.close()


async def _open_when_reachable(db: Any) -> None:
    """Open (migrate) the database, waiting with the persister's back-off while it is down."""
    from flashsale.persister import retry_delay
    from web.http import DATABASE_DOWN

    failures = 0
    while True:
        try:
            await db.open()
            return
        except DATABASE_DOWN as exc:
            # A persister (re)started during a database outage used to exit here, and its
            # supervisor's back-off (up to 30 s) then delayed the catch-up after the outage.
            failures += 1
            wait = retry_delay(failures)
            logging.getLogger("livesell.persister").warning(
                "database unreachable at start-up (%s); retrying in %.2f s (attempt %d)",
                type(exc).__name__, wait, failures,
            )  # fmt: skip
            await asyncio.sleep(wait)


async def _persist(settings: Settings, parent_pid: int | None) -> None:
    from flashsale.persister import Persister
    from inventory.attribution import Attribution
    from inventory.database import Database
    from inventory.ledger import Ledger
    from inventory.members import Members
    from web.resources import make_redis
    from web.webhooks import WebhookDelivery

    if not settings.redis_url:
        raise SystemExit("livesell persist needs LIVESELL_REDIS_URL")
    from inventory.redisclient import close as close_redis

    redis = make_redis(settings.redis_url, 4)
    db = Database(settings.resolved_database_url(), timeout_s=settings.database_timeout_s)
    await _open_when_reachable(db)
    persister = Persister(
        redis,
        Ledger(db, outbox=settings.webhooks_on, hooks=(Attribution(db), Members(db))),
        settings.redis_prefix,
        interval_s=settings.persister_interval_s,
        claim_idle_ms=settings.persister_claim_idle_ms,
    )
    # It empties the outbox the persister writes (written only when some URL is configured).
    webhooks = WebhookDelivery(settings, db) if settings.webhooks_on else None
    persister.start()
    if webhooks is not None:
        webhooks.start()
    try:
        await _until_stopped(parent_pid)
    finally:
        if webhooks is not None:
            await webhooks.close()
        await persister.close()
        await close_redis(redis)
        await db.close()


async def _migrate(settings: Settings) -> None:
    from inventory.database import Database

    db = Database(settings.resolved_database_url(), timeout_s=settings.database_timeout_s)
    try:
        await db.open()  # applies the migrations up to head
    finally:
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
    p.add_argument("--parent-pid", type=int, help=argparse.SUPPRESS)
    p = sub.add_parser("token", help="print a signed bearer token")
    p.add_argument("--role", choices=[r.value for r in Role], default="viewer")
    p.add_argument("--user", required=True)
    p.add_argument("--name", help="display name (default: the user id)")
    p.add_argument("--ttl", type=int, help="lifetime in seconds")
    p.add_argument("--count", type=int, help="print N tokens for users <user>-0..<user>-(N-1)")
    p = sub.add_parser("revoke", help="revoke a token, or every token of a user, on every worker")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--user", help="every token of this user issued up to now")
    which.add_argument("--jti", help="the token with this id")
    which.add_argument("--token", help="this token (its id)")
    p = sub.add_parser("audit", help="check a sale's invariants; exit 1 when any fails")
    p.add_argument("--sale", type=int, required=True)
    p.add_argument("--no-sync", action="store_true", help="do not drain pending events first")
    p = sub.add_parser(
        "reconcile", help="rebuild a sale's Redis state from SQL after Redis lost it"
    )
    p.add_argument("--sale", type=int, required=True)
    p.add_argument(
        "--force", action="store_true", help="replace the sale's state even if Redis has it"
    )
    p = sub.add_parser("persist", help="run only the Redis-to-SQL order persister (until SIGTERM)")
    p.add_argument("--parent-pid", type=int, help=argparse.SUPPRESS)
    sub.add_parser("settings", help="print the LIVESELL_* settings as the README's markdown table")
    # A deploy's one-off step (a Kubernetes Job, a compose service) before new servers start:
    # servers also migrate at start-up, but several starting at once would race on the DDL.
    sub.add_parser("migrate", help="apply the database migrations up to head, then exit")
    p = sub.add_parser("login-link", help="print fresh one-time sign-in links (10 minutes)")
    p.add_argument("--role", choices=[Role.ADMIN.value, Role.HOST.value], default="admin")
    p.add_argument("--user", help="user id (default: the role's name)")
    drawcli.add_parser(sub)
    args = parser.parse_args(argv)
    if args.cmd == "verify-draw":
        return drawcli.run(args)
    if args.cmd == "settings":
        sys.stdout.write(Settings.markdown_table())
        return 0
    try:
        settings = Settings.from_env()
        # A bad webhook setting stops start-up here, not the persister child later.
        settings.resolved_webhook_urls()
    except ConfigError as exc:
        raise SystemExit(f"livesell: {exc}") from None
    configure_logging(settings.log_level, settings.log_format)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    if args.cmd == "serve":
        return _serve(settings, args)
    if args.cmd == "token":
        return _token(settings, args)
    if args.cmd == "persist":
        asyncio.run(_persist(settings, args.parent_pid))
        return 0
    if args.cmd == "revoke":
        print(json.dumps(asyncio.run(_revoke(settings, args))))
        return 0
    if args.cmd == "login-link":
        asyncio.run(_login_link(settings, args))
        return 0
    if args.cmd == "migrate":
        asyncio.run(_migrate(settings))
        return 0
    if args.cmd == "reconcile":
        result = asyncio.run(_reconcile(settings, args.sale, args.force))
        print(json.dumps(result, indent=2))
        return 0 if result["rebuilt"] else 1
    report = asyncio.run(_audit(settings, args.sale, not args.no_sync))
    print(json.dumps(report, indent=2))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
