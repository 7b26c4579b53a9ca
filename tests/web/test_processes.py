"""Crash safety of livesell's processes: real `livesell serve`, real redis-server, real kills."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from inventory.database import Database
from inventory.ledger import Ledger
from tests.conftest import TEST_SECRET
from tests.web.helpers import Rush, open_sale
from web.auth import Role, TokenSigner
from web.process import ChildProcess, cmdline, free_port, python_command
from web.redisproc import RedisProcess, find_redis_server
from web.settings import Settings


def _redis_servers_on(directory: Path) -> list[int]:
    """Pids of live redis-servers working in ``directory`` (redis sets its title: use cwd)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or not _alive(int(entry.name)):
            continue
        argv = cmdline(int(entry.name))
        try:
            here = os.readlink(entry / "cwd") == str(directory.resolve())
        except OSError:
            continue
        if argv and "redis-server" in argv[0] and here:
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        await asyncio.sleep(0.1)
    return False


def _serve_env(data_dir: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVESELL_")}
    return {
        **env,
        "LIVESELL_DATA_DIR": str(data_dir),
        "LIVESELL_PORT": str(port),
        "LIVESELL_SECRET": TEST_SECRET,
        "LIVESELL_LOG_LEVEL": "WARNING",
        "LIVESELL_PERSISTER_CLAIM_IDLE_MS": "500",  # the dead run's pending events, soon
    }


async def _serve(env: dict[str, str], **kw: Any) -> asyncio.subprocess.Process:
    """`livesell serve` (private Redis, persister child) once it answers /healthz."""
    proc = await asyncio.create_subprocess_exec(*python_command("serve"), env=env, **kw)
    url = f"http://127.0.0.1:{env['LIVESELL_PORT']}/healthz"
    async with aiohttp.ClientSession() as s:
        for _ in range(300):
            assert proc.returncode is None, "livesell serve exited"
            try:
                async with s.get(url) as r:
                    if r.status == 200:
                        return proc
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("livesell serve did not become healthy")


async def _stop(proc: asyncio.subprocess.Process) -> int:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
    return await asyncio.wait_for(proc.wait(), 40)


def _children(pid: int, word: str) -> list[int]:
    return [c.pid for c in psutil.Process(pid).children() if word in " ".join(c.cmdline())]


async def test_serve_killed_mid_rush_restarts_on_its_data_dir_cleanly(tmp_path: Path) -> None:
    port = free_port()
    env = _serve_env(tmp_path, port)
    url = f"http://127.0.0.1:{port}"
    signer = TokenSigner(TEST_SECRET)
    admin = {"Authorization": f"Bearer {signer.mint('ops', Role.ADMIN)}"}
    first = await _serve(env)
    second = None
    try:
        async with aiohttp.ClientSession() as s:
            sale_id = await open_sale(s, url, admin, 20_000)
        old_redis = _redis_servers_on(tmp_path / "redis")
        old_persister = _children(first.pid, "persist")
        assert len(old_redis) == 1 and len(old_persister) == 1, (old_redis, old_persister)

        rush = Rush(url, sale_id, signer, enough_at=300)
        rush.start()
        await asyncio.wait_for(rush.enough.wait(), 60)
        first.send_signal(signal.SIGKILL)  # as the OOM killer would: no clean-up at all
        await first.wait()
        await rush.ended()
        confirmed = rush.confirmed
        assert len(confirmed) >= 300

        second = await _serve(env)  # at once: the old children may still be on their way out
        for pid in old_persister:
            assert await _gone_within(pid, 5), f"persister {pid} of the killed run still runs"
        servers = _redis_servers_on(tmp_path / "redis")
        assert len(servers) == 1 and servers[0] not in old_redis, (servers, old_redis)
        assert len(_children(second.pid, "persist")) == 1

        audit = await asyncio.to_thread(
            subprocess.run,
            python_command("audit", "--sale", str(sale_id)),
            env=env,
            capture_output=True,
        )
        report = json.loads(audit.stdout)
        assert audit.returncode == 0 and report["ok"], report
        db = Database(Settings.from_env(env).resolved_database_url())
        try:
            in_sql = {o.id for o in await Ledger(db).orders_for_sale(sale_id)}
        finally:
            await db.close()
        assert set(confirmed) <= in_sql, set(confirmed) - in_sql
        assert report["figures"]["sql_orders"] == len(in_sql) >= len(confirmed)
    finally:
        if first.returncode is None:
            first.kill()
        if second is not None:
            assert await _stop(second) == 0
    assert _redis_servers_on(tmp_path / "redis") == []


async def test_a_second_serve_on_the_same_data_dir_is_refused(tmp_path: Path) -> None:
    env = _serve_env(tmp_path, free_port())
    first = await _serve(env)
    try:
        redis = _redis_servers_on(tmp_path / "redis")
        again = await asyncio.create_subprocess_exec(
            *python_command("serve"),
            env={**env, "LIVESELL_PORT": str(free_port())},
            stderr=subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(again.communicate(), 30)
        assert again.returncode == 1
        lines = err.decode().strip().splitlines()
        assert len(lines) == 1 and f"in use by another livesell (pid {first.pid})" in lines[0], (
            lines
        )
        async with aiohttp.ClientSession() as s:
            async with s.get(f"http://127.0.0.1:{env['LIVESELL_PORT']}/healthz") as r:
                assert r.status == 200
        assert _redis_servers_on(tmp_path / "redis") == redis and len(redis) == 1
    finally:
        assert await _stop(first) == 0


async def test_a_persister_whose_parent_died_exits_by_itself(
    tmp_path: Path, redis_url: str
) -> None:
    # A parent that starts the persister without PR_SET_PDEATHSIG: only the child's own
    # watch on its parent can notice the parent is gone.
    env = Settings(redis_url=redis_url, data_dir=tmp_path, redis_prefix="orphan").to_env()
    code = (
        "import os, subprocess, sys, time\n"
        f"argv = {python_command('persist')!r} + ['--parent-pid', str(os.getpid())]\n"
        "print(subprocess.Popen(argv, stdout=subprocess.DEVNULL).pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    parent = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, env=env, stdout=subprocess.PIPE
    )
    assert parent.stdout is not None
    child = int(await asyncio.wait_for(parent.stdout.readline(), 30))
    try:
        await asyncio.sleep(2)  # up and persisting
        assert _alive(child)
        parent.kill()
        await parent.wait()
        assert await _gone_within(child, 5), "orphaned persister still runs"
    finally:
        if _alive(child):
            os.kill(child, signal.SIGKILL)


def test_an_orphaned_redis_is_stopped_before_a_new_one_starts(tmp_path: Path) -> None:
    directory = tmp_path / "redis"
    directory.mkdir()
    port = free_port()
    # As a crashed older run would have left it: no PDEATHSIG, its own session, a pid file.
    argv = [
        find_redis_server(), "--port", str(port), "--dir", str(directory), "--save", "",
        "--appendonly", "yes", "--pidfile", str(directory / "redis.pid"),
    ]  # fmt: skip
    orphan = subprocess.Popen(argv, stdout=subprocess.DEVNULL, start_new_session=True)
    unrelated = subprocess.Popen(["sleep", "60"])
    try:
        for _ in range(100):
            if (directory / "redis.pid").exists():
                break
            time.sleep(0.05)
        assert _redis_servers_on(directory) == [orphan.pid]
        fresh = RedisProcess(directory)
        fresh.start_sync()
        try:
            assert orphan.wait(5) == 0  # stopped by SIGTERM: it flushed its AOF
            assert _redis_servers_on(directory) == [fresh.pid]
        finally:
            fresh.stop_sync()
        # A pid file naming some other live process is stale, not an orphan: left alone.
        (directory / "redis.pid").write_text(f"{unrelated.pid}\n")
        fresh.start_sync()
        fresh.stop_sync()
        assert unrelated.poll() is None
    finally:
        for p in (orphan, unrelated):
            p.kill()
            p.wait()


async def test_an_orphaned_persister_is_stopped_before_its_replacement(
    tmp_path: Path, redis_url: str
) -> None:
    settings = Settings(redis_url=redis_url, data_dir=tmp_path, redis_prefix="orphan2")
    env = settings.to_env()
    pid_file = tmp_path / "persister.pid"
    # Its parent pid names this test process, so only the pid file can find it.
    orphan = await asyncio.create_subprocess_exec(
        *python_command("persist", "--parent-pid", str(os.getpid())), env=env
    )
    pid_file.write_text(f"{orphan.pid}\n")
    child = ChildProcess("persister", ["persist"], env, pid_file)
    try:
        await asyncio.sleep(1)
        child.start()
        # Stopped by SIGTERM (before or after it set up its handler), not left to SIGKILL.
        assert await asyncio.wait_for(orphan.wait(), 15) in (0, -signal.SIGTERM)
        for _ in range(50):
            if child.pid is not None:
                break
            await asyncio.sleep(0.1)
        assert child.pid not in (None, orphan.pid)
        assert int(pid_file.read_text()) == child.pid
    finally:
        await child.close()
        if orphan.returncode is None:
            orphan.kill()
            await orphan.wait()
    assert not pid_file.exists()


async def test_a_child_never_started_leaves_the_pid_file_alone(tmp_path: Path) -> None:
    # A worker (persister=off) builds no persister, but any ChildProcess that never spawned must
    # not delete the pid file of the one its parent supervises: that file is how the next start
    # finds an orphan.
    pid_file = tmp_path / "persister.pid"
    pid_file.write_text(f"{os.getpid()}\n")
    child = ChildProcess("persister", ["persist"], dict(os.environ), pid_file)
    await child.close()
    assert pid_file.read_text() == f"{os.getpid()}\n"
