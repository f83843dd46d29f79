"""Serving the simulator: uvicorn on a daemon thread (`SimulatorServer`), and
the one simulator per state dir that every process of the app shares
(`ensure_simulator`), found through the simulator.json it publishes."""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import threading
import time
from pathlib import Path

import httpx
import uvicorn

from lib.simulator.api import make_app
from lib.simulator.engine import Simulator, SimulatorConfig


class SimulatorServer:
    """The simulator served by uvicorn on a daemon thread."""

    def __init__(self, config: SimulatorConfig | None = None, *, host: str = "127.0.0.1", port: int = 0):
        self.config = config or SimulatorConfig()
        self.host, self.port = host, port
        self.simulator: Simulator | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_key(self) -> str:
        return self.simulator.api_key

    @property
    def running(self) -> bool:
        return bool(self._thread and self._thread.is_alive())

    def start(self) -> SimulatorServer:
        # Binding here, not in uvicorn, gives the real port when asked for port 0. The protocol is
        # named because asyncio turns Nagle off (TCP_NODELAY) only on sockets that say they are TCP;
        # with it on, every answer waited ~40 ms for the client's delayed ACK.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self.simulator = Simulator(self.config)
        self._server = uvicorn.Server(uvicorn.Config(make_app(self.simulator), log_level="warning",
                                                     access_log=False, lifespan="off", http="h11",
                                                     timeout_keep_alive=5))
        self.simulator.uvicorn_server = self._server
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]},
                                        name=f"simulator-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the simulator did not start on {self.url}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving and finish the render in progress; safe to call twice."""
        if self._server is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
            self._server = None
            self.simulator.close()

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


_embedded: dict[Path, SimulatorServer] = {}
_embedded_lock = threading.Lock()


@contextlib.contextmanager
def file_lock(path: Path):
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def publish(state_dir: Path, server: SimulatorServer) -> None:
    """Write simulator.json so other processes find this simulator instead of starting a stranger."""
    target = state_dir / "simulator.json"
    partial = target.with_suffix(".json.part")
    partial.write_text(json.dumps({"port": server.port, "api_key": server.api_key,
                                   "instance": server.simulator.instance, "pid": os.getpid()}))
    os.chmod(partial, 0o600)
    os.replace(partial, target)


def _reachable(info: dict) -> bool:
    try:
        answer = httpx.get(f"http://127.0.0.1:{info['port']}/health", timeout=2).json()
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return False
    return (isinstance(answer, dict) and answer.get("simulator") is True
            and answer.get("instance") == info.get("instance"))


def ensure_simulator(state_dir: str | Path) -> tuple[str, str]:
    """(url, api_key) of the simulator for `state_dir`: the one already running
    for it (in this process or another), or a new one on a daemon thread here."""
    state_dir = Path(state_dir).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    with _embedded_lock, file_lock(state_dir / "simulator.lock"):
        server = _embedded.get(state_dir)
        if server is not None and server.running:
            return server.url, server.api_key
        try:
            info = json.loads((state_dir / "simulator.json").read_text())
        except (OSError, ValueError):
            info = None
        if isinstance(info, dict) and _reachable(info):
            return f"http://127.0.0.1:{info['port']}", info["api_key"]
        server = SimulatorServer(SimulatorConfig(state_dir=state_dir)).start()
        _embedded[state_dir] = server
        publish(state_dir, server)
        return server.url, server.api_key
