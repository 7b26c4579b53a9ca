"""One typed settings object, read once from ``LIVESELL_*`` environment variables."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from web.errors import ConfigError


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from exc


def _choice(env: Mapping[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    raw = env.get(name) or default
    if raw not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {raw!r}")
    return raw


@dataclass(frozen=True, slots=True)
class Settings:
    """Server configuration. Every field maps to one ``LIVESELL_<FIELD>`` variable."""

    #: Redis URL. Empty means: start a private redis-server under ``data_dir``.
    redis_url: str = ""
    #: SQLAlchemy async URL. Default: SQLite file ``<data_dir>/livesell.db``.
    database_url: str = ""
    #: HMAC secret for bearer tokens. Default: a random one persisted in ``<data_dir>/secret``.
    secret: str = ""
    host: str = "127.0.0.1"
    port: int = 8080
    #: Server processes sharing the port (``livesell serve --workers N``); see web/workers.py.
    workers: int = 1
    #: Where embedded state lives (SQLite file, private Redis data, secret).
    data_dir: Path = field(default_factory=lambda: Path("var"))
    #: Prefix of every Redis key this server writes (tests use their own).
    redis_prefix: str = "ls"
    #: Max concurrent Redis connections per process.
    redis_pool_size: int = 64
    #: How often unpaid reservations are swept for expiry, in seconds.
    reaper_interval_s: float = 0.5
    #: Where the Redis-to-SQL persister runs: ``process`` (a supervised ``livesell persist``
    #: child, off the request path), ``inprocess`` (in the server's event loop), or ``off``
    #: (run ``livesell persist`` yourself, e.g. on another machine).
    persister: str = "process"
    #: How often the persister polls the sale streams, in seconds.
    persister_interval_s: float = 0.1
    #: Pending events idle longer than this are claimed from a dead consumer, in ms.
    persister_claim_idle_ms: int = 30_000
    #: Token lifetime for ``livesell token``, in seconds.
    token_ttl_s: int = 7 * 24 * 3600
    #: Log level name.
    log_level: str = "INFO"
    #: Log lines as ``text`` or ``json`` (one object per line, with the request id).
    log_format: str = "text"
    #: Serve on a non-loopback host without LIVESELL_SECRET (refused unless set to 1).
    allow_insecure: bool = False
    #: Live room: chat messages per user per room, burst and sustained per second.
    room_chat_burst: float = 10
    room_chat_per_s: float = 2
    #: Live room: a socket's send buffer above which it is set aside and later resynced.
    room_send_buffer_bytes: int = 1 << 20
    #: Live room: events arriving within this window share one websocket frame.
    room_batch_window_s: float = 0.05
    #: STUN URLs for the stream relay's peers, comma-separated (empty: host candidates only).
    ice_servers: str = ""
    #: The URL other workers redirect WHEP viewers to (empty: http://<host>:<port>).
    advertise_url: str = ""
    #: A broadcast ends after this long without media from the publisher, in seconds.
    stream_media_timeout_s: float = 10.0
    #: WHEP viewer sessions allowed per stream, and per relay process in all.
    stream_max_viewers: int = 1000
    relay_max_viewers: int = 5000

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read settings from ``env`` (default ``os.environ``), applying documented defaults."""
        e = os.environ if env is None else env
        data_dir = Path(e.get("LIVESELL_DATA_DIR") or "var")
        return cls(
            redis_url=e.get("LIVESELL_REDIS_URL", ""),
            database_url=e.get("LIVESELL_DATABASE_URL", ""),
            secret=e.get("LIVESELL_SECRET", ""),
            host=e.get("LIVESELL_HOST", "127.0.0.1"),
            port=_int(e, "LIVESELL_PORT", 8080),
            workers=_int(e, "LIVESELL_WORKERS", 1),
            data_dir=data_dir,
            redis_prefix=e.get("LIVESELL_REDIS_PREFIX", "ls"),
            redis_pool_size=_int(e, "LIVESELL_REDIS_POOL_SIZE", 64),
            reaper_interval_s=_float(e, "LIVESELL_REAPER_INTERVAL_S", 0.5),
            persister=_choice(e, "LIVESELL_PERSISTER", ("process", "inprocess", "off"), "process"),
            persister_interval_s=_float(e, "LIVESELL_PERSISTER_INTERVAL_S", 0.1),
            persister_claim_idle_ms=_int(e, "LIVESELL_PERSISTER_CLAIM_IDLE_MS", 30_000),
            token_ttl_s=_int(e, "LIVESELL_TOKEN_TTL_S", 7 * 24 * 3600),
            log_level=e.get("LIVESELL_LOG_LEVEL", "INFO"),
            log_format=_choice(e, "LIVESELL_LOG_FORMAT", ("text", "json"), "text"),
            allow_insecure=_int(e, "LIVESELL_ALLOW_INSECURE", 0) != 0,
            room_chat_burst=_float(e, "LIVESELL_ROOM_CHAT_BURST", 10),
            room_chat_per_s=_float(e, "LIVESELL_ROOM_CHAT_PER_S", 2),
            room_send_buffer_bytes=_int(e, "LIVESELL_ROOM_SEND_BUFFER_BYTES", 1 << 20),
            room_batch_window_s=_float(e, "LIVESELL_ROOM_BATCH_WINDOW_S", 0.05),
            ice_servers=e.get("LIVESELL_ICE_SERVERS", ""),
            advertise_url=e.get("LIVESELL_ADVERTISE_URL", ""),
            stream_media_timeout_s=_float(e, "LIVESELL_STREAM_MEDIA_TIMEOUT_S", 10.0),
            stream_max_viewers=_int(e, "LIVESELL_STREAM_MAX_VIEWERS", 1000),
            relay_max_viewers=_int(e, "LIVESELL_RELAY_MAX_VIEWERS", 5000),
        )

    def resolved_database_url(self) -> str:
        """The database URL, defaulting to an SQLite file under ``data_dir``."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'livesell.db').resolve()}"

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
