"""The OpenAPI document: every route of the app documented, nothing documented that is not."""

from __future__ import annotations

from aiohttp.test_utils import TestClient
from openapi_spec_validator import validate

from web.app import create_app
from web.openapi import build_document
from web.settings import Settings


def _routes() -> set[tuple[str, str]]:
    """(method, path template) of every route on the app's router; HEAD rides along with GET."""
    app = create_app(Settings(secret="s" * 40))
    return {
        (r.method, r.resource.canonical)
        for r in app.router.routes()
        if r.method != "HEAD" and r.resource is not None
    }


def _documented() -> set[tuple[str, str]]:
    doc = build_document()
    return {(m.upper(), path) for path, ops in doc["paths"].items() for m in ops}


def test_every_route_is_documented_and_every_documented_route_exists() -> None:
    routes, documented = _routes(), _documented()
    assert len(routes) > 80
    assert routes - documented == set(), "routes missing from web/openapi.py"
    assert documented - routes == set(), "web/openapi.py documents routes the app lacks"


def test_the_document_is_valid_openapi_31() -> None:
    doc = build_document()
    assert doc["openapi"].startswith("3.1")
    validate(doc)  # raises on any violation of the OpenAPI 3.1 schema
    error = doc["components"]["schemas"]["Error"]
    assert error["required"] == ["error", "message"]
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert "default" in op["responses"], (method, path)
            names = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert names == set(path.replace("}", "{").split("{")[1::2]), (method, path)
            if op.get("security") == [{"bearer": []}]:
                assert "401" in op["responses"], (method, path)


async def test_the_document_is_served(client: TestClient) -> None:
    r = await client.get("/openapi.json")
    assert r.status == 200 and r.content_type == "application/json"
    assert await r.json() == build_document()
