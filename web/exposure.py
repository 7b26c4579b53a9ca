"""The start-up check that refuses to expose a development set-up to a network."""

from __future__ import annotations

import ipaddress

from web.settings import Settings


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) is reachable from this machine only."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name that may resolve anywhere, or "" (every interface)


def insecure_reason(settings: Settings, host: str) -> str | None:
    """Why serving on ``host`` with ``settings`` is unsafe, or None when it is not (or allowed).

    A generated secret lives in a file under the data directory, which a development checkout
    may share or commit; on a public address it would sign everyone's tokens. Guest sign-in
    hands anyone a viewer token that can buy, which a shop must choose knowingly. Simulated
    pay lets every buyer mark their own order paid: real payments arrive by webhook.
    """
    if settings.allow_insecure or is_loopback(host):
        return None
    where = host or "every interface"
    if not settings.secret:
        return (
            f"refusing to serve on {where} with a generated development secret: set "
            "LIVESELL_SECRET (or LIVESELL_ALLOW_INSECURE=1 to override)"
        )
    if settings.guest_login:
        return (
            f"refusing to serve on {where} with guest sign-in on: set LIVESELL_GUEST_LOGIN=0 "
            "(or LIVESELL_ALLOW_INSECURE=1 to keep it on)"
        )
    if settings.simulated_pay:
        return (
            f"refusing to serve on {where} with simulated pay on (buyers mark their own orders "
            "paid): set LIVESELL_SIMULATED_PAY=0 and confirm payments through "
            "POST /api/payments/webhook (or LIVESELL_ALLOW_INSECURE=1 to keep it on)"
        )
    return None
