"""One typed settings object, read once from ``LIVESELL_*`` environment variables."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from web.errors import ConfigError


def setting(
    default: Any, help: str, shown: str | None = None, choices: tuple[str, ...] = ()
) -> Any:
    """Declare one setting: its default, its help line and how the README shows the default."""
    return field(default=default, metadata={"help": help, "shown": shown, "choices": choices})


_FLAGS = {"1": True, "true": True, "yes": True, "on": True,
          "0": False, "false": False, "no": False, "off": False}  # fmt: skip


def _flag(raw: str) -> bool:
    """A boolean setting: 1/0, true/false, yes/no, on/off (any case)."""
    try:
        return _FLAGS[raw.strip().lower()]
    except KeyError:
        raise ValueError(raw) from None


def _parse(name: str, kind: str, raw: str, choices: tuple[str, ...]) -> Any:
    """``raw`` as the field's type, or a ``ConfigError`` naming the variable."""
    if choices and raw not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    parse: dict[str, Any] = {
        "int": int, "float": float, "Path": Path, "str": str, "bool": _flag,
    }  # fmt: skip
    try:
        return parse[kind](raw)
    except ValueError as exc:
        what = {"int": "an integer", "bool": "1 or 0"}.get(kind, "a number")
        raise ConfigError(f"{name} must be {what}, got {raw!r}") from exc


@dataclass(frozen=True, slots=True)
class Settings:
    """Server configuration. Every field maps to one ``LIVESELL_<FIELD>`` variable.

    This class is the one declaration of every setting: ``from_env`` reads them, ``to_env``
    hands them to child processes, ``markdown_table`` is the README's table.
    """

    redis_url: str = setting(
        "",
        "Redis to use, e.g. `redis://127.0.0.1:6379/0`; a Redis Cluster (7+) as "
        "`redis+cluster://host:port,host:port,...` (seed nodes; `rediss+cluster://` for TLS)",
        shown="empty: private redis-server",
    )
    database_url: str = setting(
        "",
        "SQLAlchemy async URL, e.g. `postgresql+asyncpg://user@host/db`",
        shown="`sqlite+aiosqlite:///<data dir>/livesell.db`",
    )
    secret: str = setting(
        "", "HS256 key for bearer tokens (>= 32 chars)", shown="random, kept in `<data dir>/secret`"
    )
    host: str = setting("127.0.0.1", "address to listen on")
    port: int = setting(8080, "port to listen on")
    workers: int = setting(
        1,
        "server processes sharing the port (`livesell serve --workers N`); worker i also listens "
        "on port + 1 + i, the address WHEP viewers are redirected to",
    )
    data_dir: Path = setting(  # noqa: RUF009 - a Path is immutable, one shared default is safe
        Path("var"),
        "embedded state (SQLite file, private Redis data, secret, pid files); one server at a "
        "time: `livesell serve` locks it (`livesell.lock`)",
    )
    redis_prefix: str = setting("ls", "prefix of every Redis key this server writes")
    redis_pool_size: int = setting(
        64, "Redis connections per process (the pool waits when all are busy)"
    )
    reaper_interval_s: float = setting(0.5, "how often expired payment holds are swept")
    database_timeout_s: float = setting(
        30.0,
        "PostgreSQL connect and statement timeout: a database that stops answering fails the "
        "call after this long instead of hanging it (the persister then retries)",
    )
    persister: str = setting(
        "process",
        "where the Redis-to-SQL persister runs: `process` (a supervised `livesell persist` child, "
        "restarted if it dies), `inprocess` (in the server's event loop), `off` (run "
        "`livesell persist` yourself)",
        choices=("process", "inprocess", "off"),
    )
    persister_interval_s: float = setting(
        0.1, "pause between persister passes (events of a rush are written in batches)"
    )
    persister_claim_idle_ms: int = setting(
        30_000, "after this, a dead consumer's pending events are claimed"
    )
    reconcile_on_start: bool = setting(
        True,
        "at start-up, rebuild from SQL every running sale (or one holding reservations) whose "
        "state Redis lost, as `livesell reconcile --sale ID` does (docs/architecture.md)",
        shown="`1`",
    )
    drain_s: float = setting(
        20.0,
        "on SIGTERM: the longest the server waits for in-flight requests after telling rooms "
        "it is restarting and closing sockets (1001); it exits within about this bound",
    )
    gc_thresholds: str = setting(
        "50000,2,100",
        "the garbage collector's thresholds (`gc.set_threshold`), as `gen0,gen1,gen2`: "
        "Python's 700,10,10 collected so often under thousands of sockets that it took half "
        "of a 5,000-viewer buy burst's CPU; a middle generation collected only every 20th "
        "time grew to a 0.4 s pause (README: Load tests and benchmarks)",
    )
    token_ttl_s: int = setting(7 * 24 * 3600, "lifetime of tokens minted by `livesell token`")
    log_level: str = setting(
        "INFO", "log level name", choices=("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
    )
    log_format: str = setting(
        "text",
        "log lines as `text`, or `json`: one object per line (`ts`, `level`, `logger`, "
        "`message`, `pid`, `request_id`, `exc`)",
        choices=("text", "json"),
    )
    allow_insecure: bool = setting(
        False,
        "`1` lets `livesell serve` listen on a non-loopback host with a generated secret or "
        "guest sign-in on (refused otherwise, exit 2)",
        shown="`0`",
    )
    room_chat_burst: float = setting(10.0, "chat token bucket per user per room: burst")
    room_chat_per_s: float = setting(
        2.0, "chat token bucket per user per room: messages per second"
    )
    room_send_buffer_bytes: int = setting(
        1 << 20,
        "a socket's send buffer above which it is set aside, then resynced (or closed 4009)",
    )
    room_batch_window_s: float = setting(
        0.05, "events arriving within this window share one websocket frame"
    )
    ice_servers: str = setting(
        "", "STUN URLs for the relay's peers, comma-separated (empty: host candidates only)"
    )
    advertise_url: str = setting(
        "", "the URL other workers redirect WHEP viewers to", shown="`http://<host>:<port>`"
    )
    stream_media_timeout_s: float = setting(
        10.0, "a broadcast ends after this long without media from the publisher"
    )
    stream_max_viewers: int = setting(1000, "WHEP sessions per stream (beyond: 503 `stream_full`)")
    relay_max_viewers: int = setting(
        5000, "WHEP sessions per relay process in all (beyond: 503 `stream_full`)"
    )
    recording: bool = setting(
        True, "`0` turns recording of broadcasts (and so replays and HLS) off", shown="`1`"
    )
    recordings_dir: str = setting(
        "",
        "where broadcasts are recorded (MP4 for H.264, WebM for VP8) and live HLS is written",
        shown="`<data dir>/recordings`",
    )
    recording_retention_days: float = setting(
        0.0, "recordings older than this many days are deleted (`0`: kept for ever)"
    )
    guest_login: bool = setting(
        True,
        "`0` turns guest sign-in (`POST /api/guest`) off: viewers then need a shop's token",
        shown="`1`",
    )
    guest_logins_per_min: int = setting(
        30, "guest tokens one client address may mint per minute (`0`: no limit)"
    )
    buys_per_min: int = setting(
        600,
        "buys one client address may make per minute, HTTP and socket together, any burst "
        "within it (`0`: no limit); 429 / `rate_limited` beyond",
    )
    socket_connects_per_min: int = setting(
        600, "room sockets one client address may open per minute (`0`: no limit; close 4029)"
    )
    rate_limit_exempt: str = setting(
        "127.0.0.0/8,::1",
        "client addresses or CIDR blocks no rate limit applies to, comma-separated (loopback: "
        "load tests and a same-host proxy that sends no X-Forwarded-For)",
    )
    cors_origins: str = setting(
        "",
        "origins (`https://shop.example`, comma-separated; `*`: any) whose pages may call "
        "`/api/` from a browser; empty: none but this server's own pages",
    )
    trusted_proxies: str = setting(
        "127.0.0.1,::1",
        "proxies (addresses or CIDR blocks) whose X-Forwarded-For names the client; from any "
        "other peer the header is ignored",
    )
    simulated_pay: bool = setting(
        True,
        "`1`: buyers confirm payment themselves (`POST /api/orders/{id}/pay`, the room's Pay "
        "button), for development; set `0` in production, where payments arrive signed at "
        '`POST /api/payments/webhook` and the room shows "waiting for payment"',
        shown="`1`",
    )
    payment_webhook_secret: str = setting(
        "",
        "the payment provider's HMAC key for `POST /api/payments/webhook` (empty: that "
        "endpoint answers 404)",
    )
    webhook_urls: str = setting(
        "",
        "the shop's URLs that get order events (`order.reserved`, `order.paid`, ...), "
        "comma-separated (empty: none are sent); see docs/webhooks.md",
    )
    webhook_secret: str = setting(
        "",
        "HMAC-SHA256 key that signs the order events (>= 16 chars; needed with "
        "`LIVESELL_WEBHOOK_URLS`)",
    )

    @staticmethod
    def variable(name: str) -> str:
        """The environment variable of field ``name``."""
        return f"LIVESELL_{name.upper()}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read settings from ``env`` (default ``os.environ``); empty or unset means the default."""
        e = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = e.get(cls.variable(f.name), "")
            if raw != "":
                values[f.name] = _parse(
                    cls.variable(f.name), str(f.type), raw, f.metadata["choices"]
                )
        return cls(**values)

    def to_env(self, **overrides: Any) -> dict[str, str]:
        """This process's environment with every setting (and ``overrides``) as LIVESELL_*.

        How a child process gets exactly the parent's settings; the data directory is made
        absolute so that the child's pid files and lock checks name the same place.
        """
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["data_dir"] = self.data_dir.resolve()
        values.update(overrides)
        return {**os.environ, **{self.variable(k): str(v) for k, v in values.items()}}

    @classmethod
    def markdown_table(cls) -> str:
        """The README's configuration table, generated from the declarations above."""
        rows = ["| variable | default | meaning |", "|---|---|---|"]
        for f in fields(cls):
            default = f.metadata["shown"] or (f"`{f.default}`" if f.default != "" else "empty")
            rows.append(f"| `{cls.variable(f.name)}` | {default} | {f.metadata['help']} |")
        return "\n".join(rows) + "\n"

    def resolved_database_url(self) -> str:
        """The database URL, defaulting to an SQLite file under ``data_dir``."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'livesell.db').resolve()}"

    def resolved_recordings_dir(self) -> Path:
        """The recordings directory, defaulting to ``<data dir>/recordings``."""
        if self.recordings_dir:
            return Path(self.recordings_dir)
        return self.data_dir / "recordings"

    @property
    def webhooks_on(self) -> bool:
        """Whether order events are written for webhooks (some URL is configured)."""
        return bool(self.webhook_urls.strip(" ,"))

    def resolved_webhook_urls(self) -> list[str]:
        """The webhook URLs, checked: absolute http(s), with a secret long enough to sign."""
        urls = [u.strip() for u in self.webhook_urls.split(",") if u.strip()]
        for url in urls:
            parsed = urlsplit(url)
            if parsed.scheme not in ("http", "https") or not parsed.hostname:
                raise ConfigError(f"LIVESELL_WEBHOOK_URLS: {url!r} is not an http(s) URL")
        if urls and len(self.webhook_secret) < 16:
            raise ConfigError("LIVESELL_WEBHOOK_SECRET (>= 16 characters) is needed to sign them")
        return urls

    def resolved_gc_thresholds(self) -> tuple[int, int, int]:
        """The garbage collector's three thresholds, checked."""
        try:
            gen0, gen1, gen2 = (int(part) for part in self.gc_thresholds.split(","))
        except ValueError:
            raise ConfigError(
                f"LIVESELL_GC_THRESHOLDS must be three integers like 50000,2,100, "
                f"got {self.gc_thresholds!r}"
            ) from None
        if min(gen0, gen1, gen2) < 1:
            raise ConfigError("LIVESELL_GC_THRESHOLDS must be positive")
        return gen0, gen1, gen2

    def resolved_secret(self) -> str:
        """The token secret; without one, a random secret is created once under ``data_dir``."""
        if self.secret:
            return self.secret
        path = self.data_dir / "secret"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        value = secrets.token_urlsafe(32)
        path.write_text(value)
        path.chmod(0o600)
        return value
