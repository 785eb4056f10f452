"""``hublink demo``: every party of a deployment on one machine, on synthetic data.

``run_demo`` plays the whole flow (``hublink.demo.run``); ``write_deployment``
writes the CA, project and configs it runs on, which the end-to-end tests and
benchmarks reuse (``hublink.demo.deployment``). The demo sits on top of the
node and the coordinator, as the CLI does.
"""

from hublink.demo.deployment import (
    ADMIN,
    ANALYST,
    AUDITOR,
    COORDINATOR,
    PROJECT_ID,
    exchange_secrets,
    free_port,
    write_deployment,
)
from hublink.demo.run import DemoError, DemoResult, run_demo

__all__ = [
    "ADMIN",
    "ANALYST",
    "AUDITOR",
    "COORDINATOR",
    "PROJECT_ID",
    "DemoError",
    "DemoResult",
    "exchange_secrets",
    "free_port",
    "run_demo",
    "write_deployment",
]
