"""Print a node's peak memory and rates for a real upload of growing files.

Usage: python bench/node_memory.py [RECORDS ...]   (default 10000 50000)

For each size: synthetic records for two organisations, the demo's
deployment files, a real coordinator on loopback, and health visiting's
``hublink node upload`` in its own process, as an operator runs it. The
node's peak resident memory comes from the kernel (the child's ``ru_maxrss``),
its wall time from the clock; encoding is part of the upload. A node that
streams its upload holds about the same memory at every size; one that holds
its whole upload grows with the file.

The node process runs this checkout's code (``PYTHONPATH`` is the folder
above this file), so running the script from another checkout (``git
worktree``) measures that version.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from coordinator.app import start
from hublink import synthetic
from hublink.config import CoordinatorConfig, load
from hublink.demo import free_port, write_deployment

ROOT = Path(__file__).resolve().parent.parent


def measure(records: int) -> dict[str, float]:
    """Upload ``records`` records from one node; its peak memory (MB) and seconds."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        data = synthetic.generate(
            root / "data", records, seed=4, layouts=synthetic.DEFAULT_LAYOUTS[:2]
        )
        configs = write_deployment(root, data, free_port())
        running = start(load(configs["coordinator"], CoordinatorConfig))
        try:
            environment = {**os.environ, "PYTHONPATH": str(ROOT)}
            started = time.perf_counter()
            node = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "hublink",
                    "node",
                    "upload",
                    "--config",
                    str(configs["health-visiting"]),
                ],
                env=environment,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            _, status, usage = os.wait4(node.pid, 0)
            seconds = time.perf_counter() - started
            if status != 0:
                assert node.stderr is not None
                raise RuntimeError(f"the node failed: {node.stderr.read().decode()[-2000:]}")
        finally:
            running.stop(grace=None)
    return {"records": records, "peak_mb": usage.ru_maxrss / 1024, "seconds": seconds}


def main(sizes: list[int]) -> None:
    print(f"{'records':>9}  {'node peak MB':>12}  {'seconds':>8}  {'records/s':>9}")
    for size in sizes:
        got = measure(size)
        print(
            f"{got['records']:>9,}  {got['peak_mb']:>12.0f}  {got['seconds']:>8.1f}  "
            f"{got['records'] / got['seconds']:>9.0f}",
            flush=True,
        )


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [10_000, 50_000])
