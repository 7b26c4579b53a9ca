"""Hostile token forms, sent as raw header bytes: every edge answers 401, never a 500."""

from __future__ import annotations

import base64

import jwt
import pytest
from aiohttp.test_utils import TestClient

from chat.protocol import CLOSE_UNAUTHORIZED, encode
from tests.conftest import TEST_SECRET
from tests.web.rawclient import json_error, raw_request, raw_websocket
from web.auth import Role, TokenSigner
from web.errors import AuthError
from web.keys import CATALOG

LATIN1 = b"Bearer \xfc.\xfc.\xfc"


def variants(token: str) -> list[str]:
    """Forms of ``token`` that decode to the same bytes but are not its canonical encoding."""
    head, payload, sig = token.split(".")
    last = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".index(sig[-1])
    # A 32-byte HMAC is 43 characters: the last carries 4 bits of data and 2 unused ones.
    flipped = (
        sig[:-1] + "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[last ^ 1]
    )
    assert flipped != sig
    return [
        token + "=",
        f"{head}.{payload}.{sig}=",
        f"{head}.{payload}=.{sig}",
        f"{head}=.{payload}.{sig}",
        f"{head}.{payload}.{flipped}",
        f"{head}.{payload}.{sig[:10]} {sig[10:]}",
        f"{head}.{payload}.{sig[:10]}\n{sig[10:]}",
        token.replace("-", "+").replace("_", "/")
        if ("-" in token or "_" in token)
        else token + "+",
        token + ".",
        "\u00fc" + token,
    ]


def test_only_the_canonical_form_verifies() -> None:
    signer = TokenSigner(TEST_SECRET)
    token = signer.mint("alice", Role.VIEWER)
    assert signer.verify(token).user_id == "alice"
    for form in variants(token):
        with pytest.raises(AuthError):
            signer.verify(form)


def test_pyjwt_path_is_canonical_too() -> None:
    # A token PyJWT minted with an extra header field skips the fast path; its forms must fail too.
    signer = TokenSigner(TEST_SECRET)
    token = jwt.encode(
        {"sub": "bob", "exp": 2**40, "role": "viewer"},
        TEST_SECRET,
        algorithm="HS256",
        headers={"kid": "k1"},
    )
    assert signer.verify(token).user_id == "bob"
    for form in variants(token):
        with pytest.raises(AuthError):
            signer.verify(form)
    padded = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT","kid":"k1"}').decode()
    if padded.endswith("="):  # the same header, padded: PyJWT alone would take it
        with pytest.raises(AuthError):
            signer.verify(padded + "." + token.split(".", 1)[1])


def test_non_ascii_tokens_are_refused() -> None:
    signer = TokenSigner(TEST_SECRET)
    for bad in ("\xfc.\xfc.\xfc", "\udcfc.\udcfc.\udcfc", "a.b.\u00e9"):
        with pytest.raises(AuthError):
            signer.verify(bad)
    with pytest.raises(AuthError):
        signer.from_header("Bearer \udcfc.\udcfc.\udcfc")


async def test_http_routes_answer_401_to_hostile_headers(
    client: TestClient, signer: TokenSigner
) -> None:
    port = client.port
    assert port is not None
    token = signer.mint("alice", Role.VIEWER).encode()
    admin = signer.mint("ops", Role.ADMIN).encode()
    targets = [
        b"GET /api/orders/1-1 HTTP/1.1",
        b"POST /api/sales/1/buy HTTP/1.1\r\nIdempotency-Key: k",
        b"POST /api/products HTTP/1.1\r\nContent-Type: application/json",
        b"POST /api/streams/show/room/pin HTTP/1.1",
    ]
    auths = [LATIN1, b"Bearer " + token + b"=", b"Bearer " + admin + b"==", b"Bearer \xff\xfe"]
    for target in targets:
        for value in auths:
            head = target + b"\r\nHost: x\r\nAuthorization: " + value
            status, headers, body = await raw_request(port, head, b"{}")
            assert status == 401, (target, value, body)
            assert json_error(body) == "unauthorized"
            assert headers["www-authenticate"] == "Bearer"
    # The canonical token still works over the same raw path.
    head = b"GET /api/orders/1-1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token
    status, _, body = await raw_request(port, head)
    assert status == 404, body


async def test_whip_answers_401_to_hostile_headers(client: TestClient, signer: TokenSigner) -> None:
    await client.app[CATALOG].create_stream("show", "hana", "")
    assert client.port is not None
    host = signer.mint("hana", Role.HOST).encode()
    for value in (LATIN1, b"Bearer " + host + b"=", b"Bearer " + host[:-1] + b"\xfc"):
        head = b"POST /whip/show HTTP/1.1\r\nHost: x\r\nContent-Type: application/sdp"
        head += b"\r\nAuthorization: " + value
        status, _, body = await raw_request(client.port, head, b"v=0\r\n")
        assert status == 401, (value, body)
        assert json_error(body) == "unauthorized"


async def test_room_socket_refuses_hostile_tokens(client: TestClient, signer: TokenSigner) -> None:
    await client.app[CATALOG].create_stream("show", "hana", "")
    port = client.port
    assert port is not None
    token = signer.mint("alice", Role.VIEWER)
    # ?token= with a padded or re-encoded form; Authorization with Latin-1 bytes.
    for target, extra in [
        (f"/ws/rooms/show?token={token}%3D".encode(), b""),
        (f"/ws/rooms/show?token={token}%20".encode(), b""),
        (b"/ws/rooms/show?token=%FC.%FC.%FC", b""),
        (b"/ws/rooms/show", b"Authorization: " + LATIN1 + b"\r\n"),
        (b"/ws/rooms/show", b"Authorization: Bearer " + token.encode() + b"=\r\n"),
    ]:
        sock = await raw_websocket(port, target, extra)
        try:
            assert sock.status == 101
            events, code = await sock.until_close()
            assert code == CLOSE_UNAUTHORIZED, (target, extra, events)
            assert events[-1]["type"] == "error" and events[-1]["code"] == "unauthorized"
        finally:
            sock.close()
    # The auth event: an anonymous viewer signs in with a non-canonical form and is refused.
    for bad in (token + "=", "\u00fc.\u00fc.\u00fc", token + "\n"):
        sock = await raw_websocket(port, b"/ws/rooms/show")
        try:
            await sock.frame()  # the snapshot
            await sock.send_binary(encode({"type": "auth", "token": bad}))
            events, code = await sock.until_close()
            assert code == CLOSE_UNAUTHORIZED, (bad, events)
            assert events[-1]["code"] == "unauthorized"
        finally:
            sock.close()
    good = await raw_websocket(port, f"/ws/rooms/show?token={token}".encode())
    try:
        _, first = await good.frame()
        assert b"snapshot" in first
    finally:
        good.close()
