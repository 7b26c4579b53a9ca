"""Edge-only errors of the web layer (configuration and authentication)."""

from __future__ import annotations


class ConfigError(Exception):
    """A ``LIVESELL_*`` setting is malformed."""


class AuthError(Exception):
    """The bearer token is missing or invalid (HTTP 401)."""

    code = "unauthorized"


class TokenRevoked(AuthError):
    """The token was revoked (by its ``jti`` or all of its user's), though still signed (401)."""

    code = "token_revoked"


class ForbiddenError(Exception):
    """The caller is authenticated but not allowed to do this (HTTP 403)."""

    code = "forbidden"
