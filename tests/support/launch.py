"""Real `streamlit run` and `python -m lib.simulator` processes, started, watched and stopped
like a user's: one process at a time (`start_app`, `start_simulator`, `stop`), or a whole
dashboard on a database of its own (`Dashboard`)."""
from __future__ import annotations

import json
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support import ROOT
from tests.support.net import free_port
from tests.support.simulator import SimulatorAdmin
from tests.support.simulator_env import clean_env
from tests.support.waiting import wait_until


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


def start_app(env: dict | None, log_path: Path, port: int | None = None, *, script: str = "app.py",
              cwd: Path = ROOT) -> tuple[subprocess.Popen, str]:
    """`streamlit run app.py` exactly as the README says, on a free port; returns it when healthy.

    Only the port is given on the command line: the address and usage-statistics
    settings come from the committed .streamlit/config.toml (or `cwd`'s own).
    """
    port = port or free_port()
    log = open(log_path, "a")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", script, "--server.port", str(port)],
                            cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def healthy():
        if proc.poll() is not None:
            raise AssertionError(f"streamlit exited: {log_path.read_text()[-2000:]}")
        try:
            return httpx.get(f"{url}/_stcore/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(healthy, 60, "streamlit to answer")
    except AssertionError:
        stop(proc)
        raise
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


class Dashboard:
    """`streamlit run app.py` on a free loopback port, as a child process, on its own database and
    simulator state under `tmp`; on the way out it stops and removes exactly the files its own
    database archived (other runs may share static/).

    With `own_simulator`, the simulator runs in a process of its own (`python -m lib.simulator`,
    which the app finds through its state dir and reuses), as Runway is a host of its own: its
    request log then shows when requests arrived, not when a busy Streamlit process got round
    to them."""

    def __init__(self, tmp: Path, *, own_simulator: bool = False, **env: str):
        self.tmp = tmp
        self.env = clean_env(DASHBOARD_DB=str(tmp / "dashboard.db"), SIMULATOR_STATE_DIR=str(tmp / "simulator"),
                             PYTHONUNBUFFERED="1", **env)
        self.own_simulator = own_simulator
        self.proc: subprocess.Popen | None = None
        self.simulator_proc: subprocess.Popen | None = None
        self.url = ""

    @property
    def db_path(self) -> Path:
        return Path(self.env["DASHBOARD_DB"])

    @property
    def log_path(self) -> Path:
        return self.tmp / "streamlit.log"

    def __enter__(self) -> Dashboard:
        if self.own_simulator:
            self.simulator_proc, _, _ = start_simulator(Path(self.env["SIMULATOR_STATE_DIR"]),
                                                        self.tmp / "simulator.log", self.env)
        try:
            self.proc, self.url = start_app(self.env, self.log_path)
        except AssertionError:
            self.__exit__(None, None, None)
            raise
        self._wait_for_simulator()
        return self

    def _wait_for_simulator(self) -> None:
        # The app starts its simulator in the server's lifespan; wait until it is published.
        info = Path(self.env["SIMULATOR_STATE_DIR"]) / "simulator.json"
        deadline = time.time() + 30
        while not info.exists() and time.time() < deadline:
            time.sleep(0.1)

    def __exit__(self, *exc) -> None:
        for proc in (self.proc, self.simulator_proc):
            if proc is not None:
                stop(proc)
        remove_archived_outputs(self.db_path)

    def rss_mb(self) -> tuple[float, float]:
        """(VmRSS, VmHWM) of the server process in MB."""
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        values = {line.split(":")[0]: int(line.split()[1]) for line in status.splitlines()
                  if line.startswith(("VmRSS", "VmHWM"))}
        return values["VmRSS"] / 1024, values["VmHWM"] / 1024

    def simulator(self) -> SimulatorAdmin:
        info = json.loads((Path(self.env["SIMULATOR_STATE_DIR"]) / "simulator.json").read_text())
        return SimulatorAdmin(f"http://127.0.0.1:{info['port']}", info["api_key"])


def remove_archived_outputs(db_path: Path) -> int:
    """Delete the files under static/ that this database archived, and nothing else
    (other people's files may sit in the same folder)."""
    if not db_path.exists():
        return 0
    conn = sqlite3.connect(db_path)
    try:
        paths = [r[0] for r in conn.execute("SELECT path FROM outputs WHERE path LIKE 'static/%'")]
    except sqlite3.Error:
        paths = []
    finally:
        conn.close()
    from lib import archive

    return sum(archive.delete_archived(rel, ROOT / "static") for rel in paths)
