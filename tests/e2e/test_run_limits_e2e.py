"""kill -9 a coordinator mid-run: its workers die with it and its shared memory goes.

Issue 21 found that a coordinator killed during a run left its worker
processes running and a copy of every encoding in ``/dev/shm``, through
restart, closure and retention. Here `hublink coordinator serve` runs in its
own process with two matching workers, a run of 24,000 records is started
over gRPC, and the coordinator is killed with SIGKILL while its workers
compare. Within seconds no worker is left, and once a coordinator has started
again on the same files no segment of the dead one remains.
"""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

import pytest

from coordinator.projects import load_project
from hublink import synthetic
from hublink.clients import AdminClient
from hublink.config import NodeConfig, load
from hublink.demo import PROJECT_ID, free_port, write_deployment
from hublink.spec import LinkageSpec, UploadDigest
from hublink.tls import TlsFiles, secure_channel
from hublink.v1 import records_pb2, upload_pb2, upload_pb2_grpc
from tests.e2e.test_crash_e2e import client_channel, serve

SHM_DIR = Path("/dev/shm")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not SHM_DIR.is_dir(), reason="needs Linux /dev/shm"),
]

RECORDS = 12_000  # per organisation: 144 million comparisons, six tasks for the workers
CHUNK = 2000
CLK_BYTES = LinkageSpec.default().encodings[0].nbytes  # the record CLK, balanced


def process_state(pid: int) -> str:
    """'' for a process that is gone (or a zombie, which holds no memory), else its state."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return ""
    state = next(line for line in status.splitlines() if line.startswith("State:"))
    return "" if "Z" in state.split()[1] else state


def workers_of(pid: int) -> set[int]:
    """The coordinator's matching workers (its children, bar multiprocessing's tracker)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if f"\nPPid:\t{pid}\n" in status and b"resource_tracker" not in command:
            found.add(int(entry.name))
    return found


def segments(pid: int | None = None) -> set[str]:
    prefix = f"hublink.{pid}." if pid is not None else "hublink."
    return {p.name for p in SHM_DIR.iterdir() if p.name.startswith(prefix)}


def dataset_sized() -> set[str]:
    """Any segment, whatever its name, the size of one of this test's datasets."""
    size = RECORDS * CLK_BYTES
    out = set()
    for path in SHM_DIR.iterdir():
        try:
            if path.stat().st_size == size:
                out.add(path.name)
        except OSError:
            continue
    return out


def upload_random(config_path: Path, sha256: str, seed: int) -> None:
    config = load(config_path, NodeConfig)
    tls = TlsFiles(ca=config.tls.ca, cert=config.tls.cert, key=config.tls.key)
    rng = random.Random(seed)
    organisation = config_path.parent.name
    records = [
        records_pb2.EncodedRecord(
            token=f"{organisation}-{n:08d}",
            encodings=[records_pb2.Encoding(name="clk", bits=rng.randbytes(CLK_BYTES))],
        )
        for n in range(RECORDS)
    ]
    with secure_channel(config.coordinator, tls) as channel:
        stub = upload_pb2_grpc.UploadServiceStub(channel)
        upload_id = f"random-{organisation}"
        stub.BeginUpload(
            upload_pb2.BeginUploadRequest(
                project_id=PROJECT_ID,
                upload_id=upload_id,
                encoding_sha256=sha256,
                expected_records=RECORDS,
            ),
            timeout=30,
        )
        digest = UploadDigest()
        chunks = [records[i : i + CHUNK] for i in range(0, RECORDS, CHUNK)]
        for index, chunk in enumerate(chunks):
            stub.PutChunk(
                upload_pb2.PutChunkRequest(upload_id=upload_id, chunk_index=index, records=chunk),
                timeout=60,
            )
            for record in chunk:
                digest.add(record.token, [e.bits for e in record.encodings])
        stub.CommitUpload(
            upload_pb2.CommitUploadRequest(
                upload_id=upload_id,
                chunk_count=len(chunks),
                record_count=RECORDS,
                digest_sha256=digest.hexdigest(),
            ),
            timeout=120,
        )


@pytest.mark.slow
def test_kill_9_mid_run_leaves_no_worker_and_no_shared_memory(tmp_path: Path) -> None:
    data = synthetic.generate(tmp_path / "data", 5, seed=1, layouts=synthetic.DEFAULT_LAYOUTS[:2])
    configs = write_deployment(tmp_path, data, free_port(), field_scoring=False)
    project_path = configs["coordinator"].parent / "project.toml"
    project_path.write_text(
        project_path.read_text()
        .replace("within_threshold = 0.74", "within_threshold = 0")
        .replace("auto_threshold = true", 'auto_threshold = false\nblocking = "none"')
    )
    coordinator_toml = configs["coordinator"]
    coordinator_toml.write_text("matching_workers = 2\n" + coordinator_toml.read_text())
    sha256 = load_project(project_path).encoding_sha256
    before = dataset_sized()
    log = tmp_path / "serve.log"
    process = serve(coordinator_toml, log)
    try:
        for seed, organisation in enumerate(data.layouts):
            upload_random(configs[organisation.organisation], sha256, seed)
        admin = AdminClient(client_channel(configs["admin"]))
        admin.start_run(PROJECT_ID)
        deadline = time.monotonic() + 120
        while not (workers_of(process.pid) and dataset_sized() - before):
            assert process.poll() is None, log.read_text()[-2000:]
            assert time.monotonic() < deadline, "the run never started its workers"
            time.sleep(0.05)
        workers = workers_of(process.pid)
        assert segments(process.pid), "the run's segments are not named for their coordinator"
        dead_pid = process.pid
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        killed = time.monotonic()
        while any(process_state(pid) for pid in workers):
            assert time.monotonic() - killed < 10, "workers outlived their coordinator"
            time.sleep(0.05)
        print(f"workers gone {time.monotonic() - killed:.2f} s after the kill")

        process = serve(coordinator_toml, log)
        assert segments(dead_pid) == set()
        assert dataset_sized() - before == set()
        admin = AdminClient(client_channel(configs["admin"]))
        state = admin.run_status(PROJECT_ID)
        assert state.state == "failed"
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
    assert not segments(process.pid)
