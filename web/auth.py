"""Signed bearer tokens (JWT, HS256) carrying a user id, a role and a display name."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

import jwt

from inventory.catalog import Actor
from web.errors import AuthError, ForbiddenError, TokenRevoked


class Role(StrEnum):
    """Global roles. Room-level roles (stream host, moderator) are derived per room."""

    ADMIN = "admin"
    HOST = "host"
    VIEWER = "viewer"


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller."""

    user_id: str
    role: Role
    name: str
    #: The token's id (empty for tokens minted before ids) and issue time: what revocation keys.
    jti: str = ""
    issued_at: int = 0

    def require(self, *roles: Role) -> None:
        """Raise ForbiddenError unless the caller has one of ``roles``."""
        if self.role not in roles:
            raise ForbiddenError(f"role {self.role} may not do this")

    @property
    def actor(self) -> Actor:
        """The caller as the domain's ownership checks see it (admins may change anything)."""
        return Actor(self.user_id, self.role == Role.ADMIN)


MAX_USER_ID = 64
_FAST_CLAIMS = frozenset({"sub", "role", "name", "iat", "exp", "jti"})
MAX_JTI = 64
#: User ids are restricted so they can never collide with separators in Redis records.
USER_ID_RE = re.compile(r"^[A-Za-z0-9_.@:-]{1,64}\Z")
#: A compact JWS: three unpadded base64url segments, ASCII only (RFC 7515, section 7.1).
_COMPACT_RE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", re.ASCII)
MAX_TOKEN = 4096


def _b64decode_canonical(segment: str) -> bytes:
    """Decode one base64url segment, or raise AuthError unless it is the only encoding of its bytes.

    A decoder forgives padding, stray characters and non-zero trailing bits, so several strings
    decode to the same token; accepting any but the canonical one lets a "different" token
    (another cache entry, another revocation key) stand for the same signature.
    """
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError) as exc:
        raise AuthError("invalid token") from exc
    if base64.urlsafe_b64encode(raw).rstrip(b"=") != segment.encode():
        raise AuthError("invalid token")
    return raw


def _check_compact(token: str) -> None:
    """Raise AuthError unless ``token`` is a compact JWS in canonical base64url (no padding)."""
    if len(token) > MAX_TOKEN or not _COMPACT_RE.fullmatch(token):
        raise AuthError("invalid token")


class Revoked(Protocol):
    """What the signer asks after every verification (web/revocation.py keeps the answer)."""

    def is_revoked(self, who: Principal) -> bool:
        """Whether ``who``'s token was revoked."""
        ...


class TokenSigner:
    """Mints and verifies bearer tokens with one shared secret."""

    def __init__(
        self, secret: str, ttl_s: int = 7 * 24 * 3600, revoked: Revoked | None = None
    ) -> None:
        if len(secret) < 32:
            # HS256 wants a key of at least 256 bits.
            raise ValueError("token secret must be at least 32 characters")
        self._secret = secret
        self._ttl_s = ttl_s
        self._revoked = revoked
        # Verified tokens, so a buyer's burst of requests pays for HMAC and JSON parsing once.
        self._cache: dict[str, tuple[Principal, float]] = {}
        self._key = secret.encode()
        # The exact header PyJWT writes for our tokens; see _fast_claims.
        self._header = jwt.encode({}, secret, algorithm="HS256").split(".", 1)[0]

    def mint(
        self, user_id: str, role: Role, name: str | None = None, ttl_s: int | None = None
    ) -> str:
        """Return a signed token for ``user_id`` with ``role``."""
        if not USER_ID_RE.match(user_id):
            raise ValueError("user id must be 1..64 of [A-Za-z0-9_.@:-]")
        now = int(time.time())
        claims = {
            "sub": user_id,
            "role": str(role),
            "name": name or user_id,
            "iat": now,
            "exp": now + (ttl_s if ttl_s is not None else self._ttl_s),
            "jti": secrets.token_urlsafe(12),
        }
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def verify(self, token: str) -> Principal:
        """Return the principal of a valid token, or raise AuthError (TokenRevoked if revoked)."""
        hit = self._cache.get(token)
        if hit is not None and hit[1] > time.time():
            who = hit[0]
        else:
            who, exp = self._verify(token)
            if len(self._cache) >= 50_000:
                self._cache.clear()
            self._cache[token] = (who, exp)
        # After the cache: a revocation applies at once to tokens already seen.
        if self._revoked is not None and self._revoked.is_revoked(who):
            raise TokenRevoked("this token was revoked; sign in again")
        return who

    def verify_signature(self, token: str) -> tuple[Principal, float]:
        """The principal and expiry of a token signed by us, revoked or not (to revoke it)."""
        return self._verify(token)

    def _fast_claims(self, token: str) -> dict[str, Any] | None:
        """Verify a token in our own exact shape, or return None to let PyJWT judge it.

        In a buy rush nearly every request carries a token not seen before, and PyJWT's general
        decode (key preparation, PEM checks, option merging) cost a quarter of the server's CPU.
        This path accepts only PyJWT's own HS256 header byte for byte (so no algorithm can be
        substituted) and only our five claims; anything else goes through PyJWT.
        """
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != self._header:
            return None
        signed = f"{parts[0]}.{parts[1]}".encode()
        sig = _b64decode_canonical(parts[2])
        payload = _b64decode_canonical(parts[1])
        if not hmac.compare_digest(hmac.new(self._key, signed, hashlib.sha256).digest(), sig):
            raise AuthError("invalid token")
        try:
            claims = json.loads(payload)
        except ValueError as exc:
            raise AuthError("invalid token") from exc
        if not isinstance(claims, dict) or not set(claims) <= _FAST_CLAIMS:
            return None
        exp, iat = claims.get("exp"), claims.get("iat", 0)
        if type(exp) is not int or type(iat) is not int:
            return None  # floats, NaN, strings: PyJWT's own rules decide
        now = time.time()
        if exp <= now:
            raise AuthError("token expired")
        if iat > now:
            raise AuthError("invalid token")
        return claims

    def _verify(self, token: str) -> tuple[Principal, float]:
        # Before either path: PyJWT raises UnicodeEncodeError on non-ASCII (a 500) and, like
        # any base64 decoder, forgives padding and trailing bits.
        _check_compact(token)
        claims = self._fast_claims(token)
        if claims is None:
            for segment in token.split("."):
                _b64decode_canonical(segment)
            try:
                claims = jwt.decode(
                    token, self._secret, algorithms=["HS256"], options={"require": ["sub", "exp"]}
                )
            except jwt.ExpiredSignatureError as exc:
                raise AuthError("token expired") from exc
            except jwt.PyJWTError as exc:
                raise AuthError("invalid token") from exc
        sub = claims.get("sub")
        if not isinstance(sub, str) or not USER_ID_RE.match(sub):
            raise AuthError("invalid token subject")
        try:
            role = Role(claims.get("role", "viewer"))
        except ValueError as exc:
            raise AuthError("invalid token role") from exc
        name = claims.get("name")
        if not isinstance(name, str) or not name:
            name = sub
        jti, iat = claims.get("jti", ""), claims.get("iat", 0)
        if not isinstance(jti, str) or len(jti) > MAX_JTI:
            raise AuthError("invalid token id")
        try:
            issued = int(iat) if isinstance(iat, int | float) and not isinstance(iat, bool) else 0
        except (ValueError, OverflowError) as exc:  # NaN, infinity
            raise AuthError("invalid token") from exc
        who = Principal(sub, role, name[:64], jti, issued)
        return who, float(claims["exp"])

    def from_header(self, header: str | None) -> Principal | None:
        """Parse an ``Authorization`` header value; None when absent, AuthError when bad."""
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError("Authorization must be 'Bearer <token>'")
        return self.verify(token.strip())
