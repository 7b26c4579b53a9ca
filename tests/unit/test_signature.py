"""Webhook signatures: ours verify with the snippet docs/webhooks.md gives shops, and back."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from flashsale import signature

DOC = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"
SECRET = b"shop-secret-0123456789"


def doc_verify() -> Any:
    """The ``verify`` function of the documentation's Python snippet."""
    code = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert code is not None
    scope: dict[str, Any] = {}
    exec(code.group(1), scope)  # the documented snippet itself, as a shop would paste it
    return scope["verify"]


def test_the_documented_snippet_accepts_ours_and_refuses_forgeries() -> None:
    verify = doc_verify()
    body = b'{"id":"7-12.paid","type":"order.paid"}'
    header = signature.sign(SECRET, body, int(time.time()))
    verify(SECRET, body, header)
    for bad_body, bad_header in (
        (body + b" ", header),
        (body, signature.sign(b"other-secret-0123456", body, int(time.time()))),
        (body, signature.sign(SECRET, body, int(time.time()) - 3600)),
    ):
        with pytest.raises(ValueError):
            verify(SECRET, bad_body, bad_header)


def test_verify_refuses_malformed_headers_without_crashing() -> None:
    body = b"{}"
    now = time.time()
    good = signature.sign(SECRET, body, int(now))
    assert signature.verify(SECRET, body, good, now) == int(now)
    # A rotated secret: the old signature beside the new one still passes.
    rotated = good + ",v1=" + "0" * 64
    assert signature.verify(SECRET, body, rotated, now) == int(now)
    for header in (
        None,
        "",
        "t=1",
        "v1=ab",
        "t=x,v1=ab",
        "t=1,v1=\udcfc\xfc",
        good + "0",
        "x" * 2000,
    ):
        with pytest.raises(signature.BadSignature):
            signature.verify(SECRET, body, header, now)
    with pytest.raises(signature.StaleSignature):
        signature.verify(SECRET, body, signature.sign(SECRET, body, int(now) + 600), now)
