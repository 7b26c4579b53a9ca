"""Rehearsal mode's talks with the server: the stream must be a rehearsal, the report goes back.

The server says what a stream is (``rehearsal`` in ``GET /api/streams/{id}``), and its report
endpoint takes reports of rehearsals only (409 otherwise), so a run can never send a synthetic
audience into a real show by a typo.
"""

from __future__ import annotations

import os
from typing import Any

from loadtest.flashsale_load import livesell_command, mint_tokens
from loadtest.show.api import ShowApi, ShowError

#: Larger than any report: the upload carries the JSON (histograms, orders) and the HTML.
UPLOAD_TIMEOUT_S = 60


async def check_rehearsal(api: ShowApi, stream_id: str, token: str) -> None:
    """Refuse (``ShowError``) unless the stream exists, is a rehearsal and ``token`` may report.

    Without a token only the public flag is checked.
    """
    status, data, kind = await api.call("GET", f"/api/streams/{stream_id}", token)
    if kind or status != 200 or not isinstance(data, dict):
        raise ShowError(f"stream {stream_id}: {kind or status}")
    if data.get("rehearsal") is not True:
        raise ShowError(
            f"stream {stream_id} is not a rehearsal: mark it one in the studio (or PATCH "
            f'/api/streams/{stream_id} {{"rehearsal": true}}) before sending an audience'
        )
    if not token:
        return
    status, _, kind = await api.call("GET", f"/api/streams/{stream_id}/rehearsal-reports", token)
    if status in (401, 403):
        raise ShowError(f"the token may not report on stream {stream_id}: use its host's token")


async def report_token(explicit: str, env: dict[str, str] | None = None) -> str:
    """The token the report is posted with: ``--token``, ``LIVESELL_ADMIN_TOKEN`` or a new one."""
    token = explicit or os.environ.get("LIVESELL_ADMIN_TOKEN", "")
    if token:
        return token
    return (await mint_tokens(livesell_command(), "admin", "rehearsal-report", None, env))[0]


async def upload_report(
    url: str, stream_id: str, token: str, report: dict[str, Any], html: str
) -> dict[str, Any]:
    """Post the run's report to the studio; its listing entry with absolute links, or an error."""
    async with ShowApi(url, timeout_s=UPLOAD_TIMEOUT_S) as api:
        status, data, kind = await api.call(
            "POST", f"/api/streams/{stream_id}/rehearsal-report", token,
            {"report": report, "html": html},
        )  # fmt: skip
        if status != 201 or not isinstance(data, dict):
            return {"error": kind or f"{status} {data}"[:300]}
        return {**data, "html_url": api.base + str(data["html_url"]),
                "json_url": api.base + str(data["json_url"])}  # fmt: skip
