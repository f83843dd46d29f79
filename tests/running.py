"""Helpers for the reliability and security tests: a simulator driven through its
admin endpoints (faults, request log), and real `streamlit run` and
`python -m lib.simulator` processes started, watched and killed like a user's."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx

from lib import catalog

ROOT = Path(__file__).resolve().parent.parent
API_VERSION = "2024-11-06"
FAST = {  # short simulator timings and a 1 s poll interval keep the suite quick
    "SIMULATOR_PENDING_SECONDS": "0.3",
    "SIMULATOR_RUN_SECONDS": "1",
    "SIMULATOR_MAX_SIDE": "96",
    "DASHBOARD_POLL_INTERVAL": "1",
    "DASHBOARD_REFRESH_SECONDS": "1",
}


class SimulatorAdmin:
    """Faults and the request log of a running simulator, over HTTP."""

    def __init__(self, url: str, api_key: str):
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=30, headers={
            "Authorization": f"Bearer {api_key}", "X-Runway-Version": API_VERSION})

    def faults(self, *rules: dict) -> None:
        answer = self.http.post("/_simulator/faults", json={"rules": list(rules)})
        assert answer.status_code == 200, answer.text

    def clear_faults(self) -> None:
        self.http.delete("/_simulator/faults")

    def active_faults(self) -> list[dict]:
        return [r for r in self.http.get("/_simulator/faults").json()["rules"] if r["count"] > 0]

    def requests(self) -> list[dict]:
        return self.http.get("/_simulator/requests").json()["requests"]

    def creates(self, entries: list[dict] | None = None) -> list[dict]:
        """POSTs to a generation endpoint: every attempt to create a task."""
        return [r for r in (self.requests() if entries is None else entries)
                if r["method"] == "POST" and r["path"] in catalog.ENDPOINTS]

    def reads(self, entries: list[dict] | None = None) -> Counter:
        """GET /v1/tasks/<id> per task id."""
        return Counter(r["path"].rsplit("/", 1)[1] for r in (self.requests() if entries is None else entries)
                       if r["method"] == "GET" and r["path"].startswith("/v1/tasks/"))

    def created(self) -> int:
        """How many tasks the simulator holds (every task it ever created in the last day)."""
        usage = self.http.get("/v1/organization").json()["usage"]["models"]
        return sum(m["dailyGenerations"] for m in usage.values())

    def task(self, task_id: str) -> dict:
        """The simulator's own answer for a task: the truth the dashboard must end up agreeing with."""
        return self.http.get(f"/v1/tasks/{task_id}").json()

    def delete(self, task_id: str) -> None:
        assert self.http.delete(f"/v1/tasks/{task_id}").status_code == 204


def wait_until(condition, timeout: float, what: str, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def base_env(**extra: str) -> dict:
    """The environment of a child process: no key or database inherited from the caller."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("RUNWAYML_API_SECRET", "RUNWAYML_BASE_URL", "DASHBOARD_PASSWORD", "DASHBOARD_DB",
                        "SIMULATOR_STATE_DIR")}
    env.update(FAST)
    env.update(extra)
    return env


def start_simulator(state_dir: Path, log_path: Path, env: dict) -> tuple[subprocess.Popen, str, str]:
    """`python -m lib.simulator` as its own process; returns it with its URL and key."""
    log = open(log_path, "w")
    proc = subprocess.Popen([sys.executable, "-m", "lib.simulator", "--port", "0", "--state-dir", str(state_dir)],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    text = wait_until(lambda: "RUNWAYML_API_SECRET=" in log_path.read_text() and log_path.read_text(), 30,
                      "the simulator to start")
    url = re.search(r"RUNWAYML_BASE_URL=(\S+)", text)[1]
    key = re.search(r"RUNWAYML_API_SECRET=(\S+)", text)[1]
    return proc, url, key


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(env: dict, log_path: Path, port: int | None = None) -> tuple[subprocess.Popen, str]:
    """`streamlit run app.py` exactly as the README says, on a free port; returns it when healthy.

    Only the port is given on the command line: the address and usage-statistics
    settings come from the committed .streamlit/config.toml.
    """
    port = port or free_port()
    log = open(log_path, "a")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port)],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def healthy():
        if proc.poll() is not None:
            raise AssertionError(f"streamlit exited: {log_path.read_text()[-2000:]}")
        try:
            return httpx.get(f"{url}/_stcore/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(healthy, 60, "streamlit to answer")
    return proc, url


def stop(proc: subprocess.Popen, kill: bool = False) -> None:
    """End a process this test started; SIGKILL when `kill`, as a crash would."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def listening_addresses(pid: int) -> set[str]:
    """host:port of every TCP socket a process listens on, read from /proc (IPv4 and IPv6)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A" or fields[9] not in inodes:  # 0A: LISTEN
                continue
            host_hex, port_hex = fields[1].split(":")
            found.add(f"{_address(host_hex, width)}:{int(port_hex, 16)}")
    return found


def _address(hex_text: str, width: int) -> str:
    import ipaddress

    raw = bytes.fromhex(hex_text)
    # /proc stores each 32-bit word in host (little-endian) order.
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(words)) if width == 8 else str(ipaddress.IPv6Address(words))
