"""What the tests and the benchmarks share, written once: `ROOT`, the checkout they run in.

apptest        dashboard pages run in this process under Streamlit's AppTest
chromium       the headless Debian Chromium the browser tests and benchmarks drive
fake_runway    a Runway fake at the network boundary (httpx.MockTransport) for unit tests
history        task, output and review rows written straight into SQLite, small or 100,000 at a time
launch         real `streamlit run` and `python -m lib.simulator` processes, started and stopped
media_samples  small real media files made on the spot
net            loopback ports and the addresses a process listens on
simulator      a running simulator's admin endpoints: faults and the request log
simulator_env  the environments the dashboard and its simulator run in under test: fast, no inherited key
waiting        waiting for a condition with a deadline
"""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
