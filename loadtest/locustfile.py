"""The same show through Locust, for load from several machines (``--master``/``--worker``).

    pip install -e '.[locust]'
    LIVESELL_SECRET=... locust -f loadtest/locustfile.py --headless -u 500 -r 100 -t 60s \\
        --host http://127.0.0.1:8080 [--show-stock 200 --show-sale-at 20]

The master (or the only process) creates the stream, a product and its sale, pins it, mints
the viewers' tokens with ``livesell token --count`` and hands them to the workers. Each Locust
user is a viewer with one room socket: it chats and reacts, and when the sale opens it taps
buy within the opening second over that socket. Chat delivery (sender to each receiver, one
machine's clock: run senders and receivers on one machine or read it as indicative), join to
snapshot and tap to answer are reported as Locust request stats. At the end the master audits
the sale and exits 1 when the audit fails. For honest (open-model, HDR) figures use
``livesell-loadtest show``; Locust rounds percentiles and drives users in a closed loop.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import time
import urllib.request
from typing import Any

import gevent
import msgpack
import websocket  # websocket-client, gevent-friendly once Locust has patched sockets
from locust import User, between, events, task
from locust.runners import MasterRunner, WorkerRunner

from loadtest.flashsale_load import livesell_command

SHOW: dict[str, Any] = {}
MARKER = f"lc{random.randrange(1 << 30):x}:"


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    parser.add_argument("--show-stock", type=int, default=100, help="units on sale")
    parser.add_argument("--show-sale-at", type=float, default=10, help="open the sale at (s)")
    parser.add_argument("--show-viewers", type=int, default=1000, help="tokens to mint")


def _http(base: str, method: str, path: str, token: str, body: Any = None) -> Any:
    req = urllib.request.Request(
        base + path, method=method, data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"null")


def _mint(role: str, user: str, count: int | None = None) -> list[str]:
    argv = [*livesell_command(), "token", "--role", role, "--user", user]
    if count:
        argv += ["--count", str(count)]
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout.split()


@events.test_start.add_listener
def _setup(environment: Any, **_: Any) -> None:
    """The host's set-up, once (on the master, or the only process)."""
    if isinstance(environment.runner, WorkerRunner):
        return
    opts, base = environment.parsed_options, environment.host.rstrip("/")
    run = f"{random.randrange(1 << 30):x}"
    admin = os.environ.get("LIVESELL_ADMIN_TOKEN") or _mint("admin", f"lc{run}-host")[0]
    sid = f"locust-{run}"
    _http(base, "POST", "/api/streams", admin, {"id": sid, "title": "Locust show"})
    product = _http(base, "POST", "/api/products", admin, {"name": "Lamp", "price_cents": 999})
    sale = _http(base, "POST", "/api/sales", admin, {
        "product_id": product["id"], "quantity": opts.show_stock, "stream_id": sid,
    })  # fmt: skip
    _http(base, "POST", f"/api/streams/{sid}/room/pin", admin, {"product_id": product["id"]})
    tokens = _mint("viewer", f"lc{run}v", opts.show_viewers)
    SHOW.update(stream=sid, sale=sale["id"], tokens=tokens, admin=admin)
    if isinstance(environment.runner, MasterRunner):
        environment.runner.send_message("show", {k: SHOW[k] for k in ("stream", "sale", "tokens")})

    def open_later() -> None:
        gevent.sleep(opts.show_sale_at)
        _http(base, "POST", f"/api/sales/{sale['id']}/open", admin, {"countdown_s": 2})

    gevent.spawn(open_later)


@events.init.add_listener
def _on_init(environment: Any, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        environment.runner.register_message("show", lambda msg, **_: SHOW.update(msg.data))


@events.test_stop.add_listener
def _audit(environment: Any, **_: Any) -> None:
    """Audit the sale on the master; a failed audit makes the run exit 1."""
    if isinstance(environment.runner, WorkerRunner) or "admin" not in SHOW:
        return
    try:
        report = _http(environment.host.rstrip("/"), "GET", f"/api/sales/{SHOW['sale']}/audit",
                       SHOW["admin"])  # fmt: skip
    except Exception as exc:  # the audit answers 409 when it fails, or the server is gone
        print(f"show audit: not ok ({exc})")
        environment.process_exit_code = 1
        return
    print(f"show audit: ok={report['ok']} figures={report['figures']}")
    if not report["ok"]:
        environment.process_exit_code = 1


class Viewer(User):
    """A viewer with one room socket: chats, reacts, and taps buy when the sale opens."""

    wait_time = between(1, 5)
    _next = 0

    def on_start(self) -> None:
        """Join the room (waits for the set-up's ids on a worker)."""
        while "tokens" not in SHOW:
            gevent.sleep(0.1)
        Viewer._next += 1
        self.token = SHOW["tokens"][Viewer._next % len(SHOW["tokens"])]
        url = str(self.host).replace("http", "ws", 1).rstrip("/")
        started = time.monotonic()
        self.ws = websocket.create_connection(
            f"{url}/ws/rooms/{SHOW['stream']}?token={self.token}", timeout=30
        )
        self.joined, self.tapped, self.tap_at = started, False, 0.0
        self.reader = gevent.spawn(self._read)

    def on_stop(self) -> None:
        """Hang up."""
        self.reader.kill()
        self.ws.close()

    def _report(self, name: str, started: float, exc: Exception | None = None) -> None:
        self.environment.events.request.fire(
            request_type="WS", name=name, response_time=(time.monotonic() - started) * 1000,
            response_length=0, exception=exc, context={},
        )  # fmt: skip

    def _read(self) -> None:
        while True:
            try:
                data = self.ws.recv()
            except Exception:
                return
            if not isinstance(data, bytes):
                continue
            msg = msgpack.unpackb(data, raw=False, strict_map_key=False)
            for ev in msg.get("events", []) if msg.get("type") == "batch" else [msg]:
                self._handle(ev)

    def _handle(self, ev: dict[str, Any]) -> None:
        kind = ev.get("type")
        if kind == "snapshot":
            self._report("snapshot", self.joined)
            if (ev.get("sale") or {}).get("state") in ("countdown", "open"):
                self._tap_later(ev["sale"])  # joined after the host opened it
        elif kind == "chat" and str(ev.get("text", "")).startswith(MARKER):
            self._report("chat delivery", float(ev["text"].rsplit(":", 1)[1]))
        elif kind == "sale" and ev.get("phase") == "opened":
            self._tap_later(ev["sale"])
        elif kind == "buy_result":
            self._report("buy", self.tap_at)
        elif kind == "error" and str(ev.get("ref", "")).startswith("b"):
            expected = ev.get("code") in ("sold_out", "limit_reached")
            self._report("buy", self.tap_at, None if expected else RuntimeError(ev.get("code")))

    def _tap_later(self, sale: dict[str, Any]) -> None:
        # Tap within the opening second, counted down from the server's own clock.
        if not self.tapped and sale.get("id") == SHOW["sale"]:
            self.tapped = True
            wait = max(0, sale["starts_at_ms"] - sale["server_time_ms"]) / 1000
            gevent.spawn_later(wait + random.random(), self._tap)

    def _send(self, event: dict[str, Any]) -> None:
        self.ws.send(msgpack.packb(event), opcode=websocket.ABNF.OPCODE_BINARY)

    def _tap(self) -> None:
        self.tap_at = time.monotonic()
        self._send({"type": "buy", "sale_id": SHOW["sale"], "key": f"{MARKER}{id(self)}",
                    "ref": "b1"})  # fmt: skip

    @task(1)
    def chat(self) -> None:
        """Say something (stamped, so receivers time the delivery)."""
        self._send({"type": "chat", "text": f"{MARKER}{time.monotonic()}"})

    @task(5)
    def react(self) -> None:
        """Tap a reaction."""
        self._send({"type": "react", "kind": random.choice(("like", "heart", "fire"))})
