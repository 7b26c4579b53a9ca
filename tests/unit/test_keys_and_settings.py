"""Key layout (Cluster slots), order ids, settings parsing and tokens."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from redis.crc import key_slot

from flashsale.keys import SaleKeys, sale_id_of_order
from web.auth import Role, TokenSigner
from web.errors import AuthError, ConfigError
from web.settings import Settings
from web.workers import worker_url

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


def test_gc_thresholds_are_three_positive_integers() -> None:
    assert Settings.from_env({}).resolved_gc_thresholds() == (50_000, 2, 100)
    env = {"LIVESELL_GC_THRESHOLDS": "700,10,10"}
    assert Settings.from_env(env).resolved_gc_thresholds() == (700, 10, 10)
    for bad in ("700,10", "a,b,c", "0,10,10"):
        with pytest.raises(ConfigError, match="LIVESELL_GC_THRESHOLDS"):
            Settings.from_env({"LIVESELL_GC_THRESHOLDS": bad}).resolved_gc_thresholds()


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


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_fast_token_path_agrees_with_pyjwt() -> None:
    signer = TokenSigner(SECRET)
    good = signer.mint("bob", Role.VIEWER, "Bob")
    assert signer._fast_claims(good) is not None  # our own tokens take the fast path
    assert signer.verify(good).user_id == "bob"
    header, payload, sig = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    forged_payload = _b64(json.dumps({**claims, "role": "admin"}).encode())
    bad_sig = ("A" if sig[0] != "A" else "B") + sig[1:]
    none_header = _b64(b'{"alg":"none","typ":"JWT"}')
    for token in (
        f"{header}.{forged_payload}.{sig}",
        f"{header}.{payload}.{bad_sig}",
        f"{none_header}.{payload}.",
        f"{header}.{payload}",
        f"{header}.!!!.{sig}",
    ):
        with pytest.raises(AuthError):
            TokenSigner(SECRET).verify(token)
    # Tokens in another shape (other header order, extra claims) are judged by PyJWT itself.
    other = jwt.encode(
        {"sub": "cy", "role": "host", "exp": time.time() + 60, "nbf": time.time() + 30},
        SECRET,
        "HS256",
        headers={"kid": "k1"},
    )
    assert signer._fast_claims(other) is None
    with pytest.raises(AuthError):
        signer.verify(other)  # not yet valid (nbf), as PyJWT rules
    ok = jwt.encode({"sub": "cy", "role": "host", "exp": time.time() + 60}, SECRET, "HS256",
                    headers={"kid": "k1"})  # fmt: skip
    assert signer.verify(ok).role == Role.HOST
    future_iat = jwt.encode({"sub": "cy", "exp": time.time() + 60, "iat": time.time() + 600},
                            SECRET, "HS256")  # fmt: skip
    with pytest.raises(AuthError):
        signer.verify(future_iat)


def test_tokens_with_odd_numbers_or_ids_are_refused() -> None:
    signer = TokenSigner(SECRET)
    for claims in (
        {"sub": "amy", "exp": float("nan")},
        {"sub": "amy", "exp": "never"},
        {"sub": "amy", "exp": int(time.time()) + 60, "iat": int(time.time()) + 30},
        {"sub": "amy\n", "exp": int(time.time()) + 60},
    ):
        forged = jwt.encode(claims, SECRET, "HS256")
        with pytest.raises(AuthError):
            signer.verify(forged)
    with pytest.raises(ValueError):
        signer.mint("x" * 64 + "\n", Role.VIEWER)


def test_workers_advertise_the_public_host_at_their_own_port() -> None:
    assert worker_url("", "127.0.0.1", 8081) == "http://127.0.0.1:8081"
    # Bound to every interface behind a proxy: the advertised host, the worker's port.
    assert worker_url("https://live.example.com", "0.0.0.0", 8082) == (
        "https://live.example.com:8082"
    )
    assert worker_url("https://live.example.com:8443/x/", "0.0.0.0", 8083) == (
        "https://live.example.com:8083"
    )


def test_webhook_settings_are_checked() -> None:
    key = "0123456789abcdef"
    urls = " https://shop.example/hooks , http://10.0.0.2:8080/h "
    s = Settings.from_env({"LIVESELL_WEBHOOK_URLS": urls, "LIVESELL_WEBHOOK_SECRET": key})
    assert s.resolved_webhook_urls() == ["https://shop.example/hooks", "http://10.0.0.2:8080/h"]
    assert s.webhooks_on and not Settings().webhooks_on
    assert Settings().resolved_webhook_urls() == []
    bad = (("ftp://shop.example/h", key), ("https:///h", key), ("https://shop.example/h", ""),
           ("https://shop.example/h", "short"))  # fmt: skip
    for url, secret in bad:
        with pytest.raises(ConfigError):
            Settings(webhook_urls=url, webhook_secret=secret).resolved_webhook_urls()
    assert Settings().simulated_pay
    assert not Settings.from_env({"LIVESELL_SIMULATED_PAY": "0"}).simulated_pay
