"""A local cluster for tests: `deploy/cluster.py`'s simulator, replicas, optional worker and
HAProxy, in a temp folder, with the fast timings of the other process tests.

    with local_cluster(tmp_path, replicas=3) as cluster:
        cluster.url            # the balancer
        cluster.web[i].url     # replica i directly; cluster.kill(i) SIGKILLs it
        cluster.admin()        # the simulator's request log and faults
        cluster.store()        # the shared database, as the replicas see it

On the way out every process is stopped, and the files the cluster's SQLite database
archived under static/ are removed (nothing else there is touched).
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from deploy.cluster import Cluster
from lib.backend import Backend
from lib.store import Store
from tests.support.launch import remove_archived_outputs
from tests.support.simulator import SimulatorAdmin
from tests.support.simulator_env import FAST_SIMULATOR


class TestCluster(Cluster):
    __test__ = False  # not a test class, whatever its name

    def admin(self) -> SimulatorAdmin:
        return SimulatorAdmin(self.simulator_url, self.simulator_key)

    def backend(self) -> Backend:
        """The backend every replica uses (live mode, on the shared simulator): a task submitted
        with it is the replicas' to poll."""
        return Backend(name=self.simulator_url, base_url=self.simulator_url, api_key=self.simulator_key)

    def location(self) -> str | Path:
        return self.database_url or self.db_path

    def store(self) -> Store:
        return Store(self.location())

    def pids(self) -> list[int]:
        return [part.proc.pid for part in [*self.web, *self.workers]]

    def sender(self, entry: dict) -> int | None:
        """Which replica (index into `web`) holds the connection a simulator request came on,
        while it is still open (a download in progress): its local port, found in /proc."""
        port = int(entry.get("client", ":0").rsplit(":", 1)[1] or 0)
        inodes = _socket_inodes(port)
        for i, part in enumerate(self.web):
            if inodes & _process_sockets(part.proc.pid):
                return i
        return None


def _socket_inodes(local_port: int) -> set[str]:
    """The inodes of the loopback TCP sockets bound to `local_port` (IPv4 and IPv6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == local_port:
                found.add(fields[9])
    return found


def _process_sockets(pid: int) -> set[str]:
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    return inodes


@contextlib.contextmanager
def local_cluster(tmp: Path, *, replicas: int = 3, worker: bool = False, database_url: str = "",
                  storage: dict[str, str] | None = None, **env: str) -> Iterator[TestCluster]:
    """A started cluster; `env` overrides the fast timings, `storage` is an S3 server's settings
    (tests/support/services.py `S3Server.env`), passed to every replica and worker as given."""
    settings = {**FAST_SIMULATOR, "DASHBOARD_PASSWORD": "", **(storage or {}), **env}
    cluster = TestCluster(tmp / "cluster", replicas=replicas, worker=worker, database_url=database_url,
                          env=settings)
    if storage:
        cluster.storage_url = storage["DASHBOARD_STORAGE_URL"]
    try:
        with cluster:
            yield cluster
    finally:
        _remove_archived_outputs(cluster.location())
        from lib import archive

        archive.remove_partial_files(archive.STATIC_DIR)  # a killed replica's half file (only dead processes')


def _remove_archived_outputs(location: str | Path) -> None:
    """The files under static/ this cluster's database archived, and nothing else."""
    if isinstance(location, Path):
        remove_archived_outputs(location)
        return
    from lib import archive

    with contextlib.suppress(Exception):  # a database already gone has nothing left to clean
        store = Store(location)
        try:
            paths = [r["path"] for r in store.conn.execute("SELECT path FROM outputs WHERE path LIKE 'static/%'")]
        finally:
            store.close()
        for path in paths:
            archive.delete_archived(path, archive.STATIC_DIR)
