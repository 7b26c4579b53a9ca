"""Key layout (Cluster slots), order ids, settings parsing and tokens."""

from __future__ import annotations

import time

import jwt
import pytest
from redis.crc import key_slot

from flashsale.keys import SaleKeys, sale_id_of_order
from web.auth import Role, TokenSigner
from web.errors import AuthError, ConfigError
from web.settings import Settings

SECRET = "unit-test-secret-0123456789-abcdefgh"


def test_all_keys_of_a_sale_share_one_cluster_slot() -> None:
    for sale_id in (1, 42, 99999):
        keys = SaleKeys.of("ls", sale_id)
        slots = {key_slot(k.encode()) for k in keys.for_buy()}
        assert len(slots) == 1
    assert key_slot(SaleKeys.of("ls", 1).meta.encode()) != key_slot(
        SaleKeys.of("ls", 2).meta.encode()
    )


def test_order_ids_name_their_sale() -> None:
    assert sale_id_of_order("42-7") == 42
    for bad in ("", "42", "x-1", "1-x", "-1", "1-"):
        with pytest.raises(ValueError):
            sale_id_of_order(bad)


def test_settings_from_env_with_defaults_and_errors() -> None:
    s = Settings.from_env({"LIVESELL_PORT": "9000", "LIVESELL_REDIS_URL": "redis://x:1/0"})
    assert (s.port, s.redis_url, s.host, s.redis_prefix) == (
        9000,
        "redis://x:1/0",
        "127.0.0.1",
        "ls",
    )
    assert s.resolved_database_url().startswith("sqlite+aiosqlite:///")
    assert (
        Settings.from_env(
            {"LIVESELL_DATABASE_URL": "postgresql+asyncpg://h/db"}
        ).resolved_database_url()
        == "postgresql+asyncpg://h/db"
    )
    with pytest.raises(ConfigError, match="LIVESELL_PORT"):
        Settings.from_env({"LIVESELL_PORT": "eighty"})


def test_settings_secret_is_created_once(tmp_path) -> None:  # type: ignore[no-untyped-def]
    s = Settings.from_env({"LIVESELL_DATA_DIR": str(tmp_path)})
    first = s.resolved_secret()
    assert len(first) >= 32 and s.resolved_secret() == first
    assert (tmp_path / "secret").stat().st_mode & 0o077 == 0


def test_tokens_round_trip_and_reject_tampering() -> None:
    signer = TokenSigner(SECRET)
    who = signer.verify(signer.mint("alice", Role.HOST, "Alice"))
    assert (who.user_id, who.role, who.name) == ("alice", Role.HOST, "Alice")
    other = TokenSigner("another-secret-0123456789-abcdefghij")
    with pytest.raises(AuthError):
        other.verify(signer.mint("alice", Role.ADMIN))
    with pytest.raises(AuthError, match="expired"):
        signer.verify(signer.mint("alice", Role.VIEWER, ttl_s=-1))
    forged = jwt.encode({"sub": "a|b", "role": "admin", "exp": time.time() + 60}, SECRET, "HS256")
    with pytest.raises(AuthError):
        signer.verify(forged)
    unknown_role = jwt.encode({"sub": "a", "role": "god", "exp": time.time() + 60}, SECRET, "HS256")
    with pytest.raises(AuthError):
        signer.verify(unknown_role)
    assert signer.from_header(None) is None
    with pytest.raises(AuthError):
        signer.from_header("Token abc")
    with pytest.raises(ValueError):
        TokenSigner("short")
