"""The command line: `python -m lib.simulator --port 8800 [--host 127.0.0.1] [--state-dir data/simulator]`."""
from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

from lib.simulator.engine import SimulatorConfig
from lib.simulator.server import SimulatorServer, file_lock, publish


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m lib.simulator",
                                     description="A Runway API simulator that returns real media.")
    parser.add_argument("--port", type=int, default=8800)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--state-dir", type=Path, default=Path("data/simulator"))
    args = parser.parse_args(argv)
    args.state_dir.mkdir(parents=True, exist_ok=True)
    server = SimulatorServer(SimulatorConfig(state_dir=args.state_dir), host=args.host, port=args.port)
    with file_lock(args.state_dir / "simulator.lock"):
        server.start()
        publish(args.state_dir, server)
    print(f"Runway simulator on {server.url} (state in {args.state_dir})\n"
          f"  RUNWAYML_BASE_URL={server.url}\n  RUNWAYML_API_SECRET={server.api_key}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # `kill` stops it as cleanly as Ctrl-C
    try:
        while server.running:
            time.sleep(0.5)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
