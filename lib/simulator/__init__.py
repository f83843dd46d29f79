"""A Runway API simulator: a real HTTP server that speaks the contract of
docs/runway-api.md and returns real, playable media made from the inputs.

The package: `engine` (tasks, lifecycle, credits, limits, uploads, outputs),
`api` (the HTTP routes and the front door of headers and faults), `faults`
(the switchable faults tests post), `render` (the media it makes), `server`
(serving it, and one shared simulator per state dir) and the command line:

    python -m lib.simulator --port 8800 [--state-dir data/simulator]
"""
from lib.simulator.engine import Simulator, SimulatorConfig, iso_time, new_api_key
from lib.simulator.faults import FaultRule
from lib.simulator.server import SimulatorServer, ensure_simulator

__all__ = ["FaultRule", "Simulator", "SimulatorConfig", "SimulatorServer", "ensure_simulator",
           "iso_time", "new_api_key"]
