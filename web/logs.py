"""Log set-up: text or JSON lines, each record tagged with the HTTP request it belongs to."""

from __future__ import annotations

import json
import logging
import time
from contextvars import ContextVar

from aiohttp.http_exceptions import HttpProcessingError

#: The id of the HTTP request being handled (set by web/observe.py); None outside requests.
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s%(request_tag)s"


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` (and ``request_tag`` for the text format) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Tag ``record``; never drops it."""
        rid = REQUEST_ID.get()
        record.request_id = rid
        record.request_tag = f" [request {rid}]" if rid else ""
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, exception."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        doc: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        rid = getattr(record, "request_id", None)
        if rid:
            doc["request_id"] = rid
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False)


class MalformedRequestFilter(logging.Filter):
    """Logs a request aiohttp's parser refused (400) as one warning line, not an error trace.

    A control byte in a header or a broken request line is the client's fault: aiohttp answers
    400 before any handler runs, but logs it at ERROR with a traceback, which buried the
    server's own failures and let any client fill the log with stack traces.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Demote records whose exception is an HTTP parsing error; keep every other as is."""
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError) and 400 <= (exc.code or 400) < 500:
            record.msg = f"{record.getMessage()}: malformed request: {exc.message!r}"[:500]
            record.args = None
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def configure_logging(level: str, fmt: str) -> None:
    """Log to stderr at ``level`` as ``text`` or ``json`` lines (LIVESELL_LOG_FORMAT)."""
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level, handlers=[handler])
    logging.getLogger("aiohttp.server").addFilter(MalformedRequestFilter())
