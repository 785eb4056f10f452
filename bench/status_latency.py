"""Status latency during a run: how long a status read waits while a big run works.

Issue #25: in a 5 x 200,000 run a status read timed out (60 s) in the stages after
comparing. This bench uploads ``--parties`` x ``--size`` real encodings (the scale
bench's cache, ``scale_data.real``) into an in-process coordinator on a file database,
starts a run in the background and reads its status every ``--every`` seconds from
another thread, as the servicer's thread pool does, timing each reply. It prints the
worst reply, the stage it was seen in and, for each reply slower than ``--slow``
seconds, where the run thread was when it began (``--where``).

    python bench/status_latency.py --size 20000 --parties 5 [--every 0.5] [--where]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
import traceback
from importlib import resources
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scale_data

from coordinator.core.model import ConsentSummary, IncomingRecord
from coordinator.core.service import Coordinator
from coordinator.core.store import Store
from coordinator.parallel import ProcessEngine
from coordinator.projects import load_project
from hublink.identity import Identity, Role
from hublink.spec import UploadDigest

ADMIN = Identity("hub-admin", Role.ADMIN)
CHUNK = 2000


def _project(folder: Path, names: list[str]) -> Path:
    schema = resources.files("hublink").joinpath("schemas", "early-years.json")
    with resources.as_file(schema) as source:
        shutil.copy(source, folder / "early-years.json")
    path = folder / "project.toml"
    organisations = ", ".join(f'"{n}"' for n in names)
    path.write_text(
        'id = "status-bench"\npurpose = "Time status reads during a run"\n'
        f'organisations = [{organisations}]\nschema = "early-years.json"\n'
        'admins = ["hub-admin"]\n',
        encoding="utf-8",
    )
    return path


def upload(core: Coordinator, project_id: str, encoding: str, enc: scale_data.Encodings) -> None:
    """Each party's records, sent in chunks as a node sends them."""
    for name, party in zip(enc.names, enc.parties, strict=True):
        node = Identity(name, Role.NODE)
        records = [
            IncomingRecord(f"{name}-{n:09d}", [("clk", bytes(row))]) for n, row in enumerate(party)
        ]
        core.begin_upload(node, project_id, f"up-{name}", encoding, len(records), ConsentSummary())
        digest = UploadDigest()
        chunks = [records[i : i + CHUNK] for i in range(0, len(records), CHUNK)]
        for index, chunk in enumerate(chunks):
            core.put_chunk(node, f"up-{name}", index, chunk)
            for record in chunk:
                digest.add(record.token, [bits for _, bits in record.encodings])
        core.commit_upload(node, f"up-{name}", len(chunks), len(records), digest.hexdigest())


def poll(
    core: Coordinator, project_id: str, run_id: str, every: float, slow: float, where: bool
) -> dict[str, object]:
    """Read the run's status until it ends; the worst reply and the slow ones."""
    run_thread = next(t for t in threading.enumerate() if t.name == run_id)
    worst, worst_stage, replies, slow_replies = 0.0, "", 0, []
    stacks: list[str] = []
    while True:
        seen: dict[str, str] = {}
        timer = None
        if where:

            def sample(seen: dict[str, str] = seen) -> None:
                frame = sys._current_frames().get(run_thread.ident or 0)
                if frame is not None:
                    seen["stack"] = "".join(traceback.format_stack(frame)[-6:])

            timer = threading.Timer(slow, sample)
            timer.start()
        started = time.perf_counter()
        state = core.run_status(ADMIN, project_id, run_id)
        took = time.perf_counter() - started
        if timer is not None:
            timer.cancel()
        replies += 1
        if took > worst:
            worst, worst_stage = took, state.stage or state.state
        if took > slow:
            slow_replies.append((round(took, 2), state.stage or state.state))
            if "stack" in seen:
                stacks.append(seen["stack"])
        if state.state != "running":
            break
        time.sleep(every)
    for stack in stacks[:5]:
        print("--- run thread while a status read waited:\n" + stack, file=sys.stderr)
    return {
        "replies": replies,
        "worst_s": round(worst, 3),
        "worst_stage": worst_stage,
        "slow": slow_replies,
        "state": state.state,
        "run_s": state.seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=20000)
    parser.add_argument("--parties", type=int, default=5)
    parser.add_argument("--every", type=float, default=0.5)
    parser.add_argument("--slow", type=float, default=1.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--where", action="store_true")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "hublink-bench")
    args = parser.parse_args()
    enc = scale_data.real(args.size, args.parties, 2026, args.cache)
    with tempfile.TemporaryDirectory() as folder:
        project = load_project(_project(Path(folder), enc.names))
        core = Coordinator(
            Store(Path(folder) / "coordinator.db"),
            [project],
            engine=ProcessEngine(workers=args.workers),
        )
        started = time.perf_counter()
        upload(core, project.id, project.encoding_sha256, enc)
        uploaded = time.perf_counter() - started
        run = core.start_run(ADMIN, project.id)
        result = poll(core, project.id, run.run_id, args.every, args.slow, args.where)
        core.wait_for_run(run.run_id)
        core.store.close()
    print(json.dumps({"size": args.size, "parties": args.parties, "upload_s": uploaded, **result}))


if __name__ == "__main__":
    main()
