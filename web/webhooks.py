"""The HTTP edge of outgoing webhooks: an aiohttp sender and the deliverer built from settings.

The deliverer runs wherever the persister runs (the ``livesell persist`` child by default,
or in the server with ``LIVESELL_PERSISTER=inprocess``): the process that writes the outbox
also empties it, and exactly one such process runs per data directory.
"""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp

from flashsale.persister import default_consumer_name
from flashsale.webhooks import Deliverer
from inventory.database import Database
from inventory.outbox import WebhookOutbox
from web.settings import Settings

#: A shop's endpoint that takes longer than this is treated as down, and retried later.
TIMEOUT_S = 10.0


class AiohttpSender:
    """Posts webhooks with one shared client session; never follows redirects."""

    def __init__(self, timeout_s: float = TIMEOUT_S) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        """POST and return the status; network failures are raised as ``OSError``."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.post(
                url, data=body, headers=dict(headers), allow_redirects=False
            ) as resp:
                await resp.content.read(4096)  # a little of the answer; the status is what counts
                return resp.status
        except aiohttp.ClientError as exc:
            raise OSError(str(exc) or type(exc).__name__) from exc

    async def close(self) -> None:
        """Close the client session."""
        if self._session is not None:
            await self._session.close()
            self._session = None


class WebhookDelivery:
    """The deliverer and its sender, started and closed together."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.sender = AiohttpSender()
        self.deliverer = Deliverer(
            WebhookOutbox(db),
            self.sender,
            settings.resolved_webhook_urls(),
            settings.webhook_secret.encode(),
            consumer=default_consumer_name(),
        )

    def start(self) -> None:
        """Start delivering in the background."""
        self.deliverer.start()

    async def close(self) -> None:
        """Stop delivering, then close the client."""
        await self.deliverer.close()
        await self.sender.close()
