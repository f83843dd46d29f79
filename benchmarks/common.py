"""What the benchmarks share beyond tests/support/ (the history generators, the dashboard
launcher, Chromium, the simulator's request log, which the tests use too): the machine a figure
was measured on, timing and its statistics, a printed table, temporary places, and the browser
and submission steps several benchmarks take.

Everything runs on loopback, in temporary directories that are removed at the end; the only files
written inside the checkout are archived outputs under `static/`, and each benchmark deletes
exactly the ones its own database lists.
"""
from __future__ import annotations

import contextlib
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lib.store import Store  # noqa: E402
from tests.support import chromium as chromium_support  # noqa: E402
from tests.support import launch  # noqa: E402

# A benchmark submits and generates far more than a teammate's day: no credit or daily limit may stop it.
UNLIMITED = {"SIMULATOR_CREDITS": "100000000", "SIMULATOR_DAILY_LIMIT": "100000"}


# ---------------------------------------------------------------- reporting

def compile_pages_once() -> None:
    """Make AppTest compile each page once, as a server does. A server keeps one ScriptCache for
    its lifetime, so a page's script is read, rewritten for magic and compiled on its first run
    only; AppTest makes a new ScriptCache for every run, which added 20-30 ms to each timed run
    of History that no teammate's rerun pays. From now on, in this process, AppTest's runs share one."""
    from streamlit.runtime.scriptrunner.script_cache import ScriptCache
    from streamlit.testing.v1 import local_script_runner

    shared = ScriptCache()
    local_script_runner.ScriptCache = lambda: shared


def rerun_times(at, runs: int) -> list[float]:
    """Seconds each of `runs` reruns of an AppTest page takes, as it stands (nothing changed)."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - start)
    return times


def machine() -> str:
    """One line naming the machine, so a figure is never read without its context."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
    import streamlit
    return (f"{os.cpu_count()} cores ({cpu}), {mem_gib:.0f} GiB RAM, Python {platform.python_version()}, "
            f"Streamlit {streamlit.__version__}, SQLite {sqlite3.sqlite_version}, {platform.system()}, "
            f"load average {os.getloadavg()[0]:.1f}; code {code_version()}")


def code_version() -> str:
    """The commit measured, marked when tracked files differ from it."""
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""
    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + (" with uncommitted changes" if git("status", "--porcelain", "--untracked-files=no") else "")


def print_table(title: str, headers: list[str], rows: list[list]) -> None:
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    print(f"\n## {title}\n")
    print("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |")
    print(flush=True)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def median(values: list[float]) -> float:
    return statistics.median(values)


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


# ---------------------------------------------------------------- temporary places

@contextlib.contextmanager
def temp_dir(prefix: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=f"bench-{prefix}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# ---------------------------------------------------------------- a real dashboard

class Dashboard(launch.Dashboard):
    """tests/support's dashboard, with no credit or daily limit in the way (`UNLIMITED`)."""

    def __init__(self, tmp: Path, *, own_simulator: bool = False, **env: str):
        super().__init__(tmp, own_simulator=own_simulator, **{**UNLIMITED, **env})

    def settle(self, busy: float = 0.05, timeout: float = 300) -> float:
        """Wait until the server is idle (under `busy` of a core over a second), as a server that
        has been up a while is: started for the first time over a long history, it is busy for a
        while with work done once (the poster backfill looks at every archived video the first
        time: a million tasks' take 11.5 s of a core). Returns the seconds waited."""
        start = time.perf_counter()
        ticks = os.sysconf("SC_CLK_TCK")

        def cpu() -> float:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime

        while time.perf_counter() - start < timeout:
            before = cpu()
            time.sleep(1)
            if cpu() - before < busy:
                break
        return time.perf_counter() - start


def submit_text_to_video(store: Store, backend, n: int, *, prompt: str = "benchmark", duration: int = 5,
                         models: tuple[str, ...] = ("gen4.5",)) -> list[int]:
    """Submit `n` text-to-video tasks through the dashboard's own submission path."""
    from lib.tasks import submit_task
    ids = []
    with backend.client() as client:
        for i in range(n):
            result = submit_task(store, backend, task_type="text_to_video", model_id=models[i % len(models)],
                                 inputs={"promptText": f"{prompt} {i}", "ratio": "1280:720", "duration": duration},
                                 teammate="bench", client=client)
            if not result.ok:
                raise RuntimeError(f"submission failed: {result.error or result.issues}")
            ids.append(result.task_id)
    return ids


# ---------------------------------------------------------------- a real browser

@contextlib.contextmanager
def chromium() -> Iterator:
    """A headless Debian Chromium driven by Playwright (it never downloads a browser)."""
    if not chromium_support.installed():
        raise SystemExit("Debian's chromium is needed: apt-get install -y chromium")
    with chromium_support.browser(chromium_support.STEADY_ARGS) as browser:
        yield browser


def open_history(browser, url: str, query: str = "", *, wait: bool = True):
    """A fresh browser session (its own context, so its own Streamlit session) on History;
    `wait=False` returns as soon as the page is asked for (see `wait_for_history`)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(f"{url}/History{query}", wait_until="commit", timeout=120_000)
    if wait:
        wait_for_history(page)
    return page


def wait_for_history(page, timeout: float = 180) -> None:
    page.get_by_role("heading", name="History").first.wait_for(timeout=timeout * 1000)
