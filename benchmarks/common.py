"""What every benchmark shares: the machine it ran on, a printed table, a
generated task history, a real `streamlit run` of the dashboard, a headless
Chromium, and the simulator's request log.

Everything runs on loopback, in temporary directories that are removed at the
end; the only files written inside the checkout are archived outputs under
`static/`, and each benchmark deletes exactly the ones its own database lists.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import random
import secrets
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from lib.store import Store  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                 "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
                 "--disable-backgrounding-occluded-windows", "--mute-audio"]


# ---------------------------------------------------------------- reporting

def rerun_times(at, runs: int) -> list[float]:
    """Seconds each of `runs` reruns of an AppTest page takes, as it stands (nothing changed)."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - start)
    return times


def quiet_streamlit_logs() -> None:
    """Streamlit's loggers at ERROR, so AppTest runs outside a server print no warnings per run."""
    import logging

    import streamlit.logger
    from streamlit.testing.v1 import AppTest  # noqa: F401 - loads the modules whose loggers are quietened
    streamlit.logger.set_log_level(logging.ERROR)
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("streamlit"):
            logging.getLogger(name).setLevel(logging.ERROR)


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def remove_archived_outputs(db_path: Path) -> int:
    """Delete the files under static/ that this benchmark's database archived, and nothing else
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


# ---------------------------------------------------------------- a generated history

TASK_MIX = [  # (task_type, model, output kind, ratio, has duration)
    ("text_to_video", "gen4.5", "video/mp4", "1280:720", True),
    ("image_to_video", "gen4_turbo", "video/mp4", "1280:720", True),
    ("image_to_video", "veo3.1", "video/mp4", "1920:1080", True),
    ("video_to_video", "aleph2", "video/mp4", "1280:720", False),
    ("text_to_image", "gen4_image", "image/png", "1920:1080", False),
    ("text_to_image", "gen4_image_turbo", "image/png", "1024:1024", False),
    ("sound_effect", "eleven_text_to_sound_v2", "audio/mpeg", None, True),
    ("video_upscale", "upscale_v1", "video/mp4", None, False),
]
TEAMMATES = ["Ana", "Bilal", "Chen", "Dara", "Eli", "Farah"]
WORDS = ("lighthouse dawn kite dunes paper boat rain street neon city forest fog drone orbit portrait "
         "studio light slow push macro water glass desert night market crowd cat piano ocean").split()


def make_history(db_path: Path, n_tasks: int, *, unfinished: int = 0, seed: int = 6) -> Path:
    """A dashboard database holding `n_tasks` tasks spread over two years, written straight into
    SQLite in one transaction (100,000 tasks take a few seconds). Most succeeded with one archived
    output, some failed or were cancelled; the newest `unfinished` are still running but are not due
    for a poll, so no poller reads them."""
    Store(db_path).close()  # the schema, through the real migrations
    rng = random.Random(seed)
    start = datetime(2024, 6, 1, tzinfo=timezone.utc)
    step = timedelta(days=730) / max(n_tasks, 1)
    tasks, outputs, events = [], [], []
    for i in range(1, n_tasks + 1):
        task_type, model, mime, ratio, timed = TASK_MIX[i % len(TASK_MIX)]
        created = start + step * i
        iso = lambda t: t.isoformat(timespec="milliseconds").replace("+00:00", "Z")  # noqa: E731
        if i > n_tasks - unfinished:
            status, api_status = "PROCESSING", "RUNNING"
        else:
            roll = rng.random()
            status = "SUCCEEDED" if roll < 0.85 else "FAILED" if roll < 0.95 else "CANCELLED"
            api_status = status
        request = {"model": model, "promptText": " ".join(rng.choices(WORDS, k=rng.randint(4, 12)))}
        if ratio:
            request["ratio"] = ratio
        if timed:
            request["duration"] = rng.choice([5, 8, 10])
        request["seed"] = rng.randint(0, 2 ** 31)
        finished = iso(created + timedelta(seconds=40)) if status != "PROCESSING" else None
        failure = ("The output failed internal quality checks.", "INTERNAL.BAD_OUTPUT.CODE01") \
            if status == "FAILED" else (None, None)
        tasks.append((i, secrets.token_hex(16), "simulator", task_type, model, f"/v1/{task_type}",
                      json.dumps(request), "submitted", status, api_status,
                      1.0 if status == "SUCCEEDED" else 0.4, failure[0], failure[1], 60.0,
                      60.0 if status == "SUCCEEDED" else 0.0, rng.choice(TEAMMATES),
                      f"g{i // 4}" if i % 10 < 4 else None, iso(created), iso(created + timedelta(seconds=1)),
                      iso(created + timedelta(seconds=3)), finished, finished or iso(created)))
        events.append((i, iso(created), "PENDING", None, "recorded, sending to the API"))
        if status == "SUCCEEDED":
            name = secrets.token_urlsafe(18) + {"video/mp4": ".mp4", "image/png": ".png"}.get(mime, ".mp3")
            outputs.append((i, 0, f"http://127.0.0.1:9/outputs/{name}", "archived", f"static/{name}", mime,
                            5_000_000, secrets.token_hex(32), 1, finished))
    conn = sqlite3.connect(db_path)
    with conn:
        conn.executemany(
            "INSERT INTO tasks (id, task_uuid, backend, task_type, model, endpoint, request_json, submit_state, "
            "status, api_status, progress, failure, failure_code, estimated_credits, cost_credits, teammate, "
            "group_id, created_at, submitted_at, started_at, finished_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", tasks)
        conn.executemany("INSERT INTO outputs (task_id, position, url, state, path, mime, size, sha256, attempts, "
                         "archived_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", outputs)
        conn.executemany("INSERT INTO events (task_id, at, status, api_status, note) VALUES (?, ?, ?, ?, ?)", events)
    conn.execute("ANALYZE")
    conn.close()
    return db_path


# ---------------------------------------------------------------- a real dashboard

def dashboard_env(tmp: Path, **extra: str) -> dict[str, str]:
    """The environment of a dashboard on its own database and its own simulator."""
    env = {k: v for k, v in os.environ.items() if k not in ("RUNWAYML_API_SECRET", "RUNWAYML_BASE_URL")}
    env.update(DASHBOARD_DB=str(tmp / "dashboard.db"), SIMULATOR_STATE_DIR=str(tmp / "simulator"),
               SIMULATOR_CREDITS="100000000", SIMULATOR_DAILY_LIMIT="100000", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


class Dashboard:
    """`streamlit run app.py` on a free loopback port, as a child process.

    With `own_simulator`, the simulator runs in a process of its own (`python -m lib.simulator`,
    which the app finds through its state dir and reuses), as Runway is a host of its own: its
    request log then shows when requests arrived, not when a busy Streamlit process got round
    to them."""

    def __init__(self, tmp: Path, *, own_simulator: bool = False, **env: str):
        self.tmp = tmp
        self.env = dashboard_env(tmp, **env)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.own_simulator = own_simulator
        self.proc: subprocess.Popen | None = None
        self.simulator_proc: subprocess.Popen | None = None
        self._log = None

    @property
    def db_path(self) -> Path:
        return Path(self.env["DASHBOARD_DB"])

    def __enter__(self) -> Dashboard:
        self._log = open(self.tmp / "streamlit.log", "w")
        if self.own_simulator:
            self.simulator_proc = subprocess.Popen(
                [sys.executable, "-m", "lib.simulator", "--port", str(free_port()), "--state-dir",
                 self.env["SIMULATOR_STATE_DIR"]], cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT)
            self._wait_for_simulator()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(self.port),
             "--server.headless", "true", "--server.address", "127.0.0.1",
             "--browser.gatherUsageStats", "false"],
            cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/_stcore/health", timeout=1).status_code == 200:
                    break
            time.sleep(0.3)
        else:
            self.__exit__(None, None, None)
            raise RuntimeError("streamlit did not start: " + (self.tmp / "streamlit.log").read_text()[-2000:])
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
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        if self._log:
            self._log.close()
        remove_archived_outputs(self.db_path)

    def rss_mb(self) -> tuple[float, float]:
        """(VmRSS, VmHWM) of the server process in MB."""
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        values = {line.split(":")[0]: int(line.split()[1]) for line in status.splitlines()
                  if line.startswith(("VmRSS", "VmHWM"))}
        return values["VmRSS"] / 1024, values["VmHWM"] / 1024

    def simulator(self) -> "SimulatorLink":
        info = json.loads((Path(self.env["SIMULATOR_STATE_DIR"]) / "simulator.json").read_text())
        return SimulatorLink(f"http://127.0.0.1:{info['port']}", info["api_key"])


class SimulatorLink:
    """The simulator's admin endpoints and a backend to submit tasks through."""

    def __init__(self, url: str, api_key: str):
        self.url, self.api_key = url, api_key
        self._http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {api_key}"}, timeout=30)

    def backend(self):
        from lib.backend import Backend
        return Backend(name="simulator", base_url=self.url, api_key=self.api_key)

    def requests(self) -> list[dict]:
        return self._http.get("/_simulator/requests").json()["requests"]

    def clear_requests(self) -> None:
        self._http.delete("/_simulator/requests")

    def close(self) -> None:
        self._http.close()


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
    if not Path(CHROMIUM).exists():
        raise SystemExit("Debian's chromium is needed: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


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


def archive_videos(db_path: Path, source: Path, count: int, label: str, posters: bool = False) -> list[Path]:
    """`count` succeeded text-to-video tasks, each with its own archived copy of the video in static/
    (and its poster, made as the archive makes it, when `posters`); returns the files written."""
    from lib import archive

    Store(db_path).close()
    data = source.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    files = []
    conn = sqlite3.connect(db_path)
    with conn:
        for i in range(1, count + 1):
            name = f"{secrets.token_urlsafe(18)}.mp4"
            target = archive.STATIC_DIR / name
            shutil.copyfile(source, target)
            files.append(target)
            if posters:
                poster = archive.make_poster(target)
                if poster is None:
                    raise SystemExit("ffmpeg made no poster for the sample video")
                files.append(poster)
            created = f"2026-11-{1 + i % 28:02d}T10:{i % 60:02d}:00.000Z"
            conn.execute(
                "INSERT INTO tasks (id, task_uuid, backend, task_type, model, endpoint, request_json, submit_state, "
                "status, api_status, progress, estimated_credits, cost_credits, teammate, created_at, submitted_at, "
                "started_at, finished_at, updated_at) VALUES (?, ?, 'simulator', 'text_to_video', 'gen4.5', "
                "'/v1/text_to_video', ?, 'submitted', 'SUCCEEDED', 'SUCCEEDED', 1, 60, 60, 'bench', ?, ?, ?, ?, ?)",
                (i, secrets.token_hex(16), json.dumps({"model": "gen4.5", "promptText": f"{label} {i}",
                                                       "ratio": "1280:720", "duration": 10}),
                 created, created, created, created, created))
            conn.execute("INSERT INTO outputs (task_id, position, url, state, path, mime, size, sha256, attempts, "
                         "archived_at) VALUES (?, 0, ?, 'archived', ?, 'video/mp4', ?, ?, 1, ?)",
                         (i, f"http://127.0.0.1:9/outputs/{name}", f"static/{name}", len(data), digest, created))
    conn.close()
    return files
