"""The headless Debian Chromium that browser tests and benchmarks drive through Playwright
(Playwright never downloads a browser of its own)."""
from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
QUIET_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
              "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
# Tests press play and check that a video plays, with no user gesture to allow it.
CHROMIUM_ARGS = [*QUIET_ARGS, "--autoplay-policy=no-user-gesture-required"]
# Benchmarks measure timing and memory: a tab in the background must not be slowed down.
STEADY_ARGS = [*QUIET_ARGS, "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
               "--disable-backgrounding-occluded-windows", "--mute-audio"]


def installed() -> bool:
    return Path(CHROMIUM).exists()


@contextlib.contextmanager
def browser(args: list[str] = CHROMIUM_ARGS) -> Iterator:
    """A Playwright browser on Debian's chromium, closed on the way out."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=CHROMIUM, args=args)
        try:
            yield launched
        finally:
            launched.close()
