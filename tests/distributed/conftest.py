"""A real two-node Ray cluster on loopback addresses, started once per session and torn down after.

The head is ``ray start --head --node-ip-address 127.0.0.2`` and the second node ``ray start
--address 127.0.0.2:PORT --node-ip-address 127.0.0.3``, each with one CPU; the test process
joins as the driver. Ray on Linux replaces 127.0.0.1 and ``localhost`` by the host's network
address (``resolve_ip_for_localhost``), so the nodes take other addresses of the loopback range
(127.0.0.0/8): every packet stays on this machine. Both processes run with ``--block`` in their own
process group, so the teardown stops exactly what the fixture started. Token authentication is
off for this throwaway loopback cluster (``RAY_AUTH_MODE=disabled``).

The tests that use it run in ``make test`` (CI): the cluster, the local reference run and
the three files' tests took 7 min 0 s on the idle 2-core machine (2026-12-03). On a machine
loaded by other jobs Ray's raylet may miss its hard-coded 30 s registration window; the
fixture retries each node start a bounded number of times.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

HEAD_IP, NODE_IP = "127.0.0.2", "127.0.0.3"
START_TIMEOUT_S = 900  # this 2-core box is shared and slow to start Ray under load
ATTEMPTS = 4


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _text(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group the fixture started (ray start --block stops its daemons), then SIGKILL."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


_FAILED: list[str] = []  # a cluster that did not start is not tried again for every test


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[str]:
    """The address of a running two-node cluster; this process is connected to it as the driver."""
    if _FAILED:
        pytest.fail(f"the Ray cluster did not start earlier in this session: {_FAILED[0]}")
    try:
        import ray
    except ImportError:
        pytest.fail("ray is needed for tests/distributed: pip install -c constraints.txt -e '.[test]'")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray_bin = str(Path(sys.executable).with_name("ray"))
    tmp = tempfile.mkdtemp(prefix="lgray-")  # short: Ray's socket paths must fit in 107 bytes
    port = _free_port(HEAD_IP)
    common = ["--block", "--num-cpus=1", "--num-gpus=0", "--object-store-memory=200000000", "--disable-usage-stats"]
    logs = [open(Path(tmp) / name, "wb") for name in ("head.log", "node.log")]  # noqa: SIM115 (closed below)
    procs: list[subprocess.Popen[bytes]] = []
    address = f"{HEAD_IP}:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        # Ray gives a raylet 30 s to register (hard-coded); on a loaded 2-core box that is sometimes too
        # little and `ray start` gives up: each node is tried again, a bounded number of times
        for attempt in range(ATTEMPTS):
            head = subprocess.Popen(
                [ray_bin, "start", "--head", f"--node-ip-address={HEAD_IP}", f"--port={port}"]
                + ["--include-dashboard=false", *common, f"--temp-dir={tmp}"],
                stdout=logs[0],
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            procs.append(head)
            # the port answers before the head's raylet has registered: wait for `ray start` to say it is up
            while head.poll() is None and time.monotonic() < deadline:
                if _listening(HEAD_IP, port) and "Ray runtime started" in _text(Path(tmp) / "head.log"):
                    break
                time.sleep(0.5)
            if head.poll() is None and time.monotonic() < deadline:
                break
            _stop(head)
            if attempt == ATTEMPTS - 1 or time.monotonic() > deadline:
                _FAILED.append("head")
                pytest.fail(f"the Ray head did not start: {_text(Path(tmp) / 'head.log')[-3000:]}")
        ray.init(address=address, logging_level="WARNING", log_to_driver=False)
        for attempt in range(ATTEMPTS):
            node = subprocess.Popen(
                [ray_bin, "start", f"--address={address}", f"--node-ip-address={NODE_IP}"] + common,
                stdout=logs[1],
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            procs.append(node)
            while sum(n["Alive"] for n in ray.nodes()) < 2 and node.poll() is None and time.monotonic() < deadline:
                time.sleep(0.5)
            if sum(n["Alive"] for n in ray.nodes()) >= 2:
                break
            _stop(node)
            if attempt == ATTEMPTS - 1 or time.monotonic() > deadline:
                _FAILED.append("second node")
                pytest.fail(f"the second Ray node did not join: {_text(Path(tmp) / 'node.log')[-3000:]}")
        yield address
    finally:
        ray.shutdown()
        for proc in reversed(procs):
            _stop(proc)
        for fh in logs:
            fh.close()
        shutil.rmtree(tmp, ignore_errors=True)
