"""The vocabulary of web/openapi.py: who may call an operation, its row type, shared schemas."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

JSON = "application/json"
Schema = dict[str, Any]


class Access(Enum):
    """Who may call an operation (what the ``security`` and 401/403 answers say)."""

    PUBLIC = "public"  # no token read
    OPTIONAL = "optional"  # anonymous works; a token, when sent, must be valid
    SIGNED_IN = "signed-in"  # any valid token
    STAFF = "host or admin"  # a host or an admin token (and, per resource, its owner)
    ADMIN = "admin"


def ref(name: str) -> Schema:
    """A reference to one of SCHEMAS."""
    return {"$ref": f"#/components/schemas/{name}"}


def obj(required: tuple[str, ...] = (), **props: Schema) -> Schema:
    """An object schema with ``props`` (other properties allowed), ``required`` among them."""
    schema: Schema = {"type": "object", "properties": props}
    if required:
        schema["required"] = list(required)
    return schema


INT: Schema = {"type": "integer"}
STR: Schema = {"type": "string"}
BOOL: Schema = {"type": "boolean"}
ANY_OBJECT: Schema = {"type": "object"}
USER_ID: Schema = {"type": "string", "pattern": r"^[A-Za-z0-9_.@:-]{1,64}$"}
TEXT: Schema = {"type": "string"}
SDP: Schema = {"type": "string", "description": "an SDP document (RFC 8866)"}

SCHEMAS: dict[str, Schema] = {
    "Error": {
        **obj(
            ("error", "message"),
            error=STR,
            message=STR,
            field={
                "type": "string",
                "description": "the request field at fault, when one is (e.g. member_price_cents)",
            },
        ),
        "additionalProperties": False,
        "description": "Every error: a stable code and a human-readable message, never a trace; "
        "a refused input also names its field.",
    },
    "Product": obj(
        ("id", "name", "price_cents"),
        id=INT,
        name=STR,
        description=STR,
        price_cents=INT,
        currency=STR,
        image_url=STR,
        member_price_cents={"type": ["integer", "null"]},
        owner_id={"type": ["string", "null"], "description": "its host; null: an admin's"},
    ),
    "Stream": obj(("id", "host_id", "status"), id=STR, host_id=STR, title=STR, status=STR),
    "Sale": obj(("id", "product_id", "state"), id=INT, product_id=INT, state=STR),
    "Order": obj(
        ("id", "sale_id", "user_id", "qty", "state"),
        id=STR,
        sale_id=INT,
        user_id=STR,
        qty=INT,
        state=STR,
    ),
    "BuyResult": obj(("order", "remaining"), order=ref("Order"), remaining=INT),
    "Token": obj(("token", "user_id", "role", "name"), token=STR, user_id=STR, role=STR, name=STR),
    "Lot": obj(("id", "state"), id=INT, stream_id={"type": ["string", "null"]}, state=STR),
    "Draw": obj(("sale_id", "state"), sale_id=INT, state=STR, commitment=STR),
    "Group": obj(("id", "sale_id", "state"), id=STR, sale_id=INT, state=STR),
    "GroupResult": obj(
        ("group", "order", "remaining"), group=ref("Group"), order=ref("Order"), remaining=INT
    ),
    "Coupon": obj(("id", "sale_id", "kind"), id=STR, sale_id=INT, kind=STR, left=INT),
    "Review": obj(("rating",), rating=INT, text=STR),
}


@dataclass(frozen=True)
class Op:
    """One operation: the route, who may call it, its body and its answer."""

    method: str
    path: str
    summary: str
    access: Access = Access.PUBLIC
    body: Schema | None = None  # a JSON request body
    body_required: bool = True
    body_type: str = JSON
    status: int = 200
    replays: bool = False  # a retry (same key, same caller) answers 200 with the first result
    result: Schema | None = None  # the JSON answer; None with ``result_type`` for other media
    result_type: str = JSON
    query: dict[str, Schema] = field(default_factory=dict)
    headers: dict[str, Schema] = field(default_factory=dict)
    tag: str = "api"
