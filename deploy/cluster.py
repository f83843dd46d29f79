"""A whole dashboard cluster on loopback, for anyone to try and for the tests:

    python -m deploy.cluster                      # 3 replicas, each polling, behind HAProxy
    python -m deploy.cluster --replicas 2 --worker   # one worker, 2 web replicas with polling off
    python -m deploy.cluster --s3                 # archive to a bucket on a local S3 server (moto)
    DASHBOARD_DATABASE_URL=postgresql://user:pass@127.0.0.1:5432/db python -m deploy.cluster

It starts, each as a process of its own: the Runway simulator (`python -m lib.simulator`, the
one Runway every replica talks to, in live mode: RUNWAYML_BASE_URL and its key), optionally an
S3 server (`python -m moto.server`) with a fresh bucket, N replicas (`streamlit run app.py
--server.port P`), optionally one worker (`python -m lib.worker`), and HAProxy
(deploy/haproxy.cfg with this cluster's ports). The database is SQLite under the work folder
unless a PostgreSQL URL is given (flag, or DASHBOARD_DATABASE_URL). It prints the balancer's
URL and stops everything on Ctrl-C (or SIGTERM).

Every replica gets the same Streamlit cookie secret (STREAMLIT_SERVER_COOKIE_SECRET), made
fresh for the run. Nothing secret is printed: the database URL is shown masked.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "deploy" / "haproxy.cfg"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
S3_KEY_ID, S3_SECRET = "cluster-key", "cluster-secret"  # moto's local server takes any pair
# What a child must not inherit from whoever started the cluster: the cluster sets each itself.
NOT_INHERITED = ("RUNWAYML_API_SECRET", "RUNWAYML_BASE_URL", "DASHBOARD_DB", "DASHBOARD_DATABASE_URL",
                 "DASHBOARD_STORAGE_URL", "DASHBOARD_POLLING", "SIMULATOR_STATE_DIR", "STREAMLIT_SERVER_COOKIE_SECRET")


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    """`sig` to a part and everything it started (each part leads its own process group: ffmpeg
    under a replica, moto's threads), so nothing is left running."""
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)


class ClusterError(RuntimeError):
    """A part of the cluster did not start; the message says which, and where its log is."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def masked(url: str) -> str:
    from lib.store.connect import masked as mask

    return mask(url)


def haproxy_config(port: int, replica_ports: list[int], template: Path = TEMPLATE) -> str:
    """deploy/haproxy.cfg with the balancer on `port` and one `server` line per replica."""
    text = template.read_text()
    bind = f"    bind 127.0.0.1:{port}\n"
    servers = "".join(f"    server replica{i} 127.0.0.1:{p} cookie replica{i}\n"
                      for i, p in enumerate(replica_ports, start=1))
    for marker, lines in (("bind", bind), ("servers", servers)):
        text, count = re.subn(rf"(    # cluster:{marker}\n).*?(    # /cluster:{marker}\n)",
                              lambda m, lines=lines: m[1] + lines + m[2], text, flags=re.S)
        if count != 1:
            raise ClusterError(f"deploy/haproxy.cfg lacks its cluster:{marker} markers")
    return text


@dataclass
class Part:
    name: str
    proc: subprocess.Popen
    log: Path
    url: str = ""

    def alive(self) -> bool:
        return self.proc.poll() is None


@dataclass
class Cluster:
    """The cluster's processes; `start()` (or `with`) starts them, `stop()` ends them all."""

    workdir: Path
    replicas: int = 3
    worker: bool = False
    database_url: str = ""
    s3: bool = False
    port: int = 0
    env: dict = field(default_factory=dict)  # extra settings for every process (timings, knobs)
    simulator: Part | None = None
    s3_server: Part | None = None
    web: list[Part] = field(default_factory=list)
    workers: list[Part] = field(default_factory=list)
    balancer: Part | None = None
    simulator_url: str = ""
    simulator_key: str = field(default="", repr=False)
    storage_url: str = ""
    cookie_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def db_path(self) -> Path:
        return self.workdir / "dashboard.db"

    # ------------------------------------------------------------ the environment

    def child_env(self, **extra: str) -> dict:
        env = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}
        env.update(PYTHONUNBUFFERED="1", SIMULATOR_STATE_DIR=str(self.workdir / "simulator"))
        env.update(self.env)
        env.update(extra)
        return env

    def app_env(self, polling: bool) -> dict:
        env = self.child_env(RUNWAYML_BASE_URL=self.simulator_url, RUNWAYML_API_SECRET=self.simulator_key,
                             DASHBOARD_POLLING="on" if polling else "off",
                             STREAMLIT_SERVER_COOKIE_SECRET=self.cookie_secret)
        if self.database_url:
            env["DASHBOARD_DATABASE_URL"] = self.database_url
        else:
            env["DASHBOARD_DB"] = str(self.db_path)
        if self.s3_server is not None:  # the cluster's own S3 server (else the storage settings come in `env`)
            env.update(DASHBOARD_STORAGE_URL=self.storage_url, AWS_ENDPOINT_URL=self.s3_server.url,
                       AWS_REGION="us-east-1", AWS_ACCESS_KEY_ID=S3_KEY_ID, AWS_SECRET_ACCESS_KEY=S3_SECRET)
        return env

    def _spawn(self, name: str, argv: list[str], env: dict) -> Part:
        log = self.workdir / f"{name}.log"
        handle = open(log, "ab")
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)  # Ctrl-C reaches us alone
        handle.close()
        return Part(name, proc, log)

    @staticmethod
    def _wait(part: Part, ready, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not part.alive():
                tail = [line for line in part.log.read_text(errors="replace").splitlines()[-20:]
                        if "secret" not in line.lower()]  # the simulator prints its key
                raise ClusterError(f"{what} exited (log: {part.log}): " + "\n".join(tail))
            with contextlib.suppress(httpx.HTTPError, OSError):
                result = ready()
                if result:
                    return result
            time.sleep(0.2)
        raise ClusterError(f"{what} did not start within {timeout:g} s (log: {part.log})")

    # ------------------------------------------------------------ the parts

    def _start_simulator(self) -> None:
        state = self.workdir / "simulator"
        state.mkdir(parents=True, exist_ok=True)
        self.simulator = part = self._spawn("simulator", [sys.executable, "-m", "lib.simulator", "--port", "0",
                                                          "--state-dir", str(state)], self.child_env())
        text = self._wait(part, lambda: "RUNWAYML_API_SECRET=" in part.log.read_text() and part.log.read_text(),
                          30, "the simulator")
        self.simulator_url = part.url = re.search(r"RUNWAYML_BASE_URL=(\S+)", text)[1]
        self.simulator_key = re.search(r"RUNWAYML_API_SECRET=(\S+)", text)[1]

    def _start_s3(self) -> None:
        port = free_port()
        self.s3_server = part = self._spawn("s3", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                                                   str(port)], self.child_env())
        part.url = f"http://127.0.0.1:{port}"
        self._wait(part, lambda: httpx.get(part.url, timeout=1).status_code < 500, 30, "the S3 server (moto)")
        import boto3

        bucket = f"dashboard-{secrets.token_hex(4)}"
        boto3.client("s3", endpoint_url=part.url, region_name="us-east-1", aws_access_key_id=S3_KEY_ID,
                     aws_secret_access_key=S3_SECRET).create_bucket(Bucket=bucket)
        self.storage_url = f"s3://{bucket}/dashboard"

    def start_replica(self, port: int | None = None) -> Part:
        """One more web replica (`streamlit run app.py`), started and healthy; the balancer finds it
        only if its port is on a `server` line (replicas started by `start` are)."""
        port = port or free_port()
        part = self._spawn(f"replica{len(self.web) + 1}",
                           [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port)],
                           self.app_env(polling=not self.worker))
        part.url = f"http://127.0.0.1:{port}"
        self.web.append(part)
        self._wait(part, lambda: httpx.get(f"{part.url}/_stcore/health", timeout=1).status_code == 200, 90,
                   f"replica {len(self.web)}")
        return part

    def start_worker(self) -> Part:
        part = self._spawn(f"worker{len(self.workers) + 1}", [sys.executable, "-m", "lib.worker"],
                           self.app_env(polling=True))
        self.workers.append(part)
        self._wait(part, lambda: "worker polling" in part.log.read_text(), 60, "the worker")
        return part

    def _start_balancer(self, replica_ports: list[int]) -> None:
        self.port = self.port or free_port()
        config = self.workdir / "haproxy.cfg"
        config.write_text(haproxy_config(self.port, replica_ports))
        if not Path(HAPROXY).exists():
            raise ClusterError("HAProxy is not installed (Debian: apt-get install haproxy)")
        self.balancer = part = self._spawn("haproxy", [HAPROXY, "-f", str(config), "-db"], self.child_env())
        part.url = self.url
        # Up once it answers and every replica's health check has passed (a request then reaches any of them).
        self._wait(part, lambda: httpx.get(f"{self.url}/_stcore/health", timeout=2).status_code == 200, 30,
                   "HAProxy")
        time.sleep(2.5)  # one check interval (`inter 2s`): the replicas are marked up

    def start(self) -> Cluster:
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self._start_simulator()
            if self.s3:
                self._start_s3()
            ports = [free_port() for _ in range(self.replicas)]
            for port in ports:
                self.start_replica(port)
            if self.worker:
                self.start_worker()
            self._start_balancer(ports)
        except BaseException:
            self.stop()
            raise
        return self

    # ------------------------------------------------------------ stopping

    def kill(self, i: int) -> None:
        """SIGKILL replica `i` (0-based), as a crash would; the balancer's checks mark it down."""
        part = self.web[i]
        if part.alive():
            _signal_group(part.proc, signal.SIGKILL)
        part.proc.wait(timeout=15)

    def stop(self) -> None:
        """End every process, the balancer first, the simulator last; safe to call twice."""
        parts = [self.balancer, *self.web, *self.workers, self.s3_server, self.simulator]
        for part in parts:
            if part is not None and part.alive():
                _signal_group(part.proc, signal.SIGTERM)
        for part in parts:
            if part is None:
                continue
            try:
                part.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                _signal_group(part.proc, signal.SIGKILL)
                part.proc.wait()

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def describe(self) -> str:
        lines = [f"Dashboard at {self.url} (HAProxy, sticky sessions)"]
        lines += [f"  replica {i}: {p.url} (pid {p.proc.pid}, polling {'off' if self.worker else 'on'})"
                  for i, p in enumerate(self.web, start=1)]
        lines += [f"  worker: pid {p.proc.pid}" for p in self.workers]
        lines.append(f"  Runway simulator: {self.simulator_url}")
        lines.append(f"  database: {masked(self.database_url) if self.database_url else self.db_path}")
        lines.append(f"  storage: {self.storage_url or ROOT / 'static'}")
        lines.append(f"  logs: {self.workdir}")
        return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.cluster", description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", type=int, default=3, help="web replicas behind the balancer (default 3)")
    parser.add_argument("--worker", action="store_true",
                        help="one worker process polls and archives; the replicas run with polling off")
    parser.add_argument("--database-url", default=os.environ.get("DASHBOARD_DATABASE_URL", ""),
                        help="a postgresql:// URL (default: DASHBOARD_DATABASE_URL, else SQLite in the work folder)")
    parser.add_argument("--s3", action="store_true", help="archive to a fresh bucket on a local S3 server (moto)")
    parser.add_argument("--port", type=int, default=8500, help="the balancer's port (default 8500)")
    parser.add_argument("--workdir", type=Path,
                        help="where the SQLite file, state and logs go (default: a temp folder)")
    args = parser.parse_args(argv)
    if args.replicas < 1:
        parser.error("--replicas takes 1 or more")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="dashboard-cluster-"))
    cluster = Cluster(workdir, replicas=args.replicas, worker=args.worker, database_url=args.database_url,
                      s3=args.s3, port=args.port)
    # Whatever ends this process ends the cluster: Ctrl-C, SIGTERM, or the terminal closing (SIGHUP).
    for each in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(each, lambda *_: sys.exit(0))
    try:
        cluster.start()
        print(cluster.describe(), "\nCtrl-C stops everything.", flush=True)
        while all(p.alive() for p in [cluster.balancer, cluster.simulator]):
            time.sleep(0.5)
        print("the balancer or the simulator exited; stopping", file=sys.stderr)
        return 1
    except ClusterError as exc:
        print(f"the cluster did not start: {exc}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, SystemExit):
        return 0
    finally:
        cluster.stop()


if __name__ == "__main__":
    sys.exit(main())
