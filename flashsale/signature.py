"""Webhook signatures: HMAC-SHA256 over ``<timestamp>.<body>``, in a Stripe-style header.

``Livesell-Signature: t=<unix seconds>,v1=<hex digest>``. The timestamp is signed with the
body, so a captured request cannot be replayed once it is older than the receiver's tolerance;
several ``v1`` entries may be present (a secret being rotated), any one matching is enough.
"""

from __future__ import annotations

import hashlib
import hmac

from inventory.errors import DomainError

HEADER = "Livesell-Signature"
#: How far a signed timestamp may be from the receiver's clock (either way), as Stripe's default.
TOLERANCE_S = 300


class BadSignature(DomainError):
    """The signature header is missing, malformed or does not match the body."""

    code = "bad_signature"
    status = 401


class StaleSignature(DomainError):
    """The signed timestamp is outside the tolerance: a replay, or a badly wrong clock."""

    code = "stale_signature"
    status = 401


def digest(secret: bytes, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``<timestamp>.<body>`` under ``secret``."""
    return hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def sign(secret: bytes, body: bytes, timestamp: int) -> str:
    """The header value for ``body`` sent at ``timestamp`` (unix seconds)."""
    return f"t={timestamp},v1={digest(secret, timestamp, body)}"


def verify(
    secret: bytes, body: bytes, header: str | None, now_s: float, tolerance_s: int = TOLERANCE_S
) -> int:
    """Check ``header`` against ``body``; returns its timestamp or raises a signature error."""
    if not header or len(header) > 1024:
        raise BadSignature(f"the {HEADER} header is missing or too long")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isascii() and value.isdigit() and len(value) <= 12:
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        raise BadSignature(f"the {HEADER} header needs t=<unix seconds> and v1=<hex digest>")
    expected = digest(secret, timestamp, body)
    # A header byte that is not UTF-8 must fail the comparison, not the request.
    offered = [c.encode("utf-8", "replace") for c in candidates]
    if not any(hmac.compare_digest(expected.encode(), c) for c in offered):
        raise BadSignature("the signature does not match the body")
    # Judged after the digest, so an unsigned timestamp can tell nobody about our clock.
    if abs(now_s - timestamp) > tolerance_s:
        raise StaleSignature(f"the signed timestamp is more than {tolerance_s} s from now")
    return timestamp
