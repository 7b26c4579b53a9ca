"""Shared fixtures: a private real redis-server, per-test settings, the app, tokens, PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from web.app import create_app
from web.auth import Role, TokenSigner
from web.redisproc import RedisProcess
from web.settings import Settings

TEST_SECRET = "livesell-test-secret-0123456789-abcdef"
PG_ADMIN_URL = os.environ.get("LIVESELL_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    """A redis-server of our own for the whole session (never the machine's shared one)."""
    proc = RedisProcess(tmp_path_factory.mktemp("redis"))
    proc.start_sync()
    yield proc
    proc.stop_sync()


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisProcess) -> str:
    """URL of the session's private Redis."""
    return redis_server.url


def _pg_reachable() -> str | None:
    async def probe() -> str | None:
        import asyncpg

        try:
            conn = await asyncio.wait_for(asyncpg.connect(PG_ADMIN_URL), 3)
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"
        await conn.close()
        return None

    return asyncio.run(probe())


@contextlib.contextmanager
def _new_pg_database() -> Iterator[str]:
    """Create a PostgreSQL database of our own (skip with a reason when none is reachable)."""
    why = _pg_reachable()
    if why is not None:
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL} ({why}); PostgreSQL tests skipped")
    import asyncpg

    name = f"livesell_test_{uuid.uuid4().hex[:10]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(PG_ADMIN_URL)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for the session; skipped with a reason when none is reachable."""
    with _new_pg_database() as url:
        yield url


@pytest.fixture
def empty_pg_database() -> Iterator[str]:
    """A PostgreSQL database of this test alone, for tests that count rows across the database."""
    with _new_pg_database() as url:
        yield url


@pytest.fixture(params=["sqlite"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The database under test (SQLite by default; tests may parametrize with postgresql)."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("pg_database"))
    if request.param == "postgresql_empty":
        return str(request.getfixturevalue("empty_pg_database"))
    return f"sqlite+aiosqlite:///{tmp_path / 'livesell.db'}"


@pytest.fixture
def settings(tmp_path: Path, redis_url: str, database_url: str) -> Settings:
    """Settings for one test: its own key prefix, data dir and database."""
    return Settings(
        redis_url=redis_url,
        database_url=database_url,
        secret=TEST_SECRET,
        data_dir=tmp_path,
        redis_prefix=f"t{uuid.uuid4().hex[:8]}",
        reaper_interval_s=0.1,
        persister="inprocess",  # one process per test app; the child mode has its own test
        persister_interval_s=0.02,
        persister_claim_idle_ms=1000,
    )


@pytest.fixture
def signer() -> TokenSigner:
    """Mints tokens the test app accepts."""
    return TokenSigner(TEST_SECRET)


@pytest.fixture
def auth(signer: TokenSigner) -> Callable[..., dict[str, str]]:
    """``auth("viewer", "alice")`` -> an Authorization header dict."""

    def make(role: str = "viewer", user: str = "alice", name: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {signer.mint(user, Role(role), name)}"}

    return make


@pytest.fixture
async def client(aiohttp_client, settings: Settings) -> AsyncIterator[TestClient]:  # type: ignore[no-untyped-def]
    """A test client over the full app."""
    yield await aiohttp_client(create_app(settings))


@pytest.fixture(autouse=True)
def _default_event_loop_policy() -> Iterator[None]:
    """Undo a test's ``uvloop.install()`` (the CLIs call it) before the next test.

    The policy is process-wide: left in place, every later test's loop came from uvloop, and
    their subprocess waits (``livesell token``) hung on children that had already exited.
    """
    yield
    asyncio.set_event_loop_policy(None)
