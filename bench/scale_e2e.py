"""The scale benchmark's end-to-end run: a real coordinator process and one process per party.

The coordinator is ``hublink coordinator serve`` in its own process, with its
own certificates (a throwaway CA from ``hublink.pki``) and the project's
default settings (blocking "auto", worker processes on every core). Each party
is ``bench/scale_node.py`` in its own process, uploading over mutual TLS. The
parties upload at the same time, an admin client starts the run and waits,
then every party fetches its keys. ``end_to_end_s`` runs from the first
upload's start to the last party's keys back; the encodings were prepared
beforehand (their encode rate is reported apart).

Memory: the coordinator's peak resident set (``VmHWM`` of the server process)
and, apart, the largest of its matching workers' (its descendant processes,
polled while they live). Workers map the run's encodings from shared memory,
and those pages count in each worker's resident set as well as the server's,
so the two figures must not be added. What the coordinator as a whole holds
is ``coordinator_tree_peak_mb``: the largest sum, over the server and all its
descendants polled together, of proportional set sizes (each shared page
split among the processes that map it, so counted once in the sum).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scale_node import peak_rss_mb, proc_mb

from hublink.clients import AdminClient
from hublink.identity import Identity, Role
from hublink.pki import CertificateFiles, create_authority, issue_certificate
from hublink.spec import LinkageSpec
from hublink.tls import TlsFiles, secure_channel

PROJECT = "scale-bench"
HERE = Path(__file__).resolve().parent


def _children(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (from /proc/*/stat parent ids)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rfind(")") + 2 :].split()
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, queue = [], [pid]
    while queue:
        for child in parents.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found


def cpu_seconds(pid: int) -> float:
    """CPU time (user and system) a live process has used so far."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rfind(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _is_worker(pid: int) -> bool:
    """A matching worker (multiprocessing's spawned child), not its resource tracker."""
    try:
        return b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _pss_mb(pid: int) -> float:
    """A process's proportional set size in MB (shared pages split among their users)."""
    return proc_mb(pid, "smaps_rollup", "Pss")


class MemoryWatch:
    """Polls a process's descendants' peak memory while they live (they may vanish any time)."""

    def __init__(self, pid: int, every: float = 0.2) -> None:
        self.pid = pid
        self.every = every
        self.worker_peak_mb = 0.0
        self.tree_peak_mb = 0.0
        """Largest sum of proportional set sizes of the server and its descendants: memory
        the coordinator as a whole held, shared-memory pages counted once."""
        self.workers_seen: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.wait(self.every):
            children = _children(self.pid)
            for child in children:
                if child in self.workers_seen or _is_worker(child):
                    self.workers_seen.add(child)
                    self.worker_peak_mb = max(self.worker_peak_mb, peak_rss_mb(child))
            tree = sum(_pss_mb(pid) for pid in [self.pid, *children])
            self.tree_peak_mb = max(self.tree_peak_mb, tree)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _toml(value: object) -> str:
    return json.dumps(str(value))


def _tls(files: CertificateFiles) -> str:
    return f"[tls]\nca = {_toml(files.ca)}\ncert = {_toml(files.cert)}\nkey = {_toml(files.key)}\n"


def write_deployment(
    folder: Path, organisations: Sequence[str], workers: int
) -> tuple[Path, dict[str, CertificateFiles]]:
    """Certificates, project and coordinator config; returns the config and each client's files."""
    pki = folder / "pki"
    authority = create_authority(pki, name="hublink scale bench CA")
    schema = folder / "early-years.json"
    schema.write_text(LinkageSpec.default().json_text + "\n", encoding="utf-8")
    project = folder / "project.toml"
    project.write_text(
        f"id = {_toml(PROJECT)}\n"
        'purpose = "Measure linkage at scale on synthetic people"\n'
        f"organisations = {json.dumps(list(organisations))}\n"
        f"schema = {_toml(schema)}\n"
        # The parties send the record CLK alone (bench/scale_data.py): record-level matching
        # at scale is what this measures.
        "field_scoring = false\n"
        'admins = ["linkage-unit"]\n',
        encoding="utf-8",
    )
    config = folder / "coordinator.toml"
    config.write_text(
        'listen = "127.0.0.1:0"\nops_listen = ""\n'
        f"database = {_toml(folder / 'coordinator.db')}\n"
        f"projects = [{_toml(project)}]\n"
        f"matching_workers = {workers}\n\n"
        + _tls(issue_certificate(authority, Identity("linkage-unit", Role.COORDINATOR), pki)),
        encoding="utf-8",
    )
    clients = {
        org: issue_certificate(authority, Identity(org, Role.NODE), pki) for org in organisations
    }
    clients["admin"] = issue_certificate(authority, Identity("linkage-unit", Role.ADMIN), pki)
    return config, clients


def _hublink() -> list[str]:
    found = shutil.which("hublink")
    return [found] if found else [sys.executable, "-c", "from hublink.cli import main; main()"]


def _wait_for_port(log: Path, server: subprocess.Popen[bytes], timeout: float = 60.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = re.search(r"listening on port (\d+)", log.read_text(errors="replace"))
        if match:
            return int(match.group(1))
        if server.poll() is not None:
            raise RuntimeError(f"the coordinator exited: {log.read_text()[-2000:]}")
        time.sleep(0.1)
    raise RuntimeError("the coordinator did not start listening in time")


def _line(process: subprocess.Popen[str], what: str) -> dict[str, Any]:
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        raise RuntimeError(f"a party exited before {what} (see its standard error above)")
    answer: dict[str, Any] = json.loads(line)
    return answer


def run(
    folder: Path, parties: Sequence[np.ndarray], organisations: Sequence[str], workers: int
) -> dict[str, Any]:
    """Upload, match and fetch keys through a real coordinator; the figures of that run."""
    folder.mkdir(parents=True, exist_ok=True)
    config, clients = write_deployment(folder, organisations, workers)
    files = []
    for org, rows in zip(organisations, parties, strict=True):
        path = folder / f"{org}.npy"
        np.save(path, rows)
        files.append(path)
    log = folder / "coordinator.log"
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [*_hublink(), "coordinator", "serve", "--config", str(config)],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    watch = MemoryWatch(server.pid)
    nodes: list[subprocess.Popen[str]] = []
    try:
        port = _wait_for_port(log, server)
        server_idle_cpu = cpu_seconds(server.pid)
        address = f"localhost:{port}"
        for org, path in zip(organisations, files, strict=True):
            tls = clients[org]
            nodes.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        str(HERE / "scale_node.py"),
                        "--coordinator",
                        address,
                        "--project",
                        PROJECT,
                        "--ca",
                        str(tls.ca),
                        "--cert",
                        str(tls.cert),
                        "--key",
                        str(tls.key),
                        "--encodings",
                        str(path),
                    ],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
            )
        uploads = [_line(node, "uploading") for node in nodes]
        server_upload_cpu = cpu_seconds(server.pid) - server_idle_cpu
        admin_tls = clients["admin"]
        channel = secure_channel(
            address, TlsFiles(ca=admin_tls.ca, cert=admin_tls.cert, key=admin_tls.key)
        )
        admin = AdminClient(channel)
        run_started = time.time()
        report = admin.wait(PROJECT, admin.start_run(PROJECT).run_id, poll=0.25, timeout=7200)
        run_finished = time.time()
        channel.close()
        if report.state != "completed":
            raise RuntimeError(f"the run ended {report.state}: {report.message}")
        for node in nodes:
            assert node.stdin is not None
            node.stdin.write("fetch\n")
            node.stdin.flush()
        keys = [_line(node, "fetching keys") for node in nodes]
        for node in nodes:
            node.wait(60)
        server_peak = peak_rss_mb(server.pid)
    finally:
        watch.stop()
        for node in nodes:
            if node.poll() is None:
                node.kill()
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
    first = min(u["started"] for u in uploads)
    uploaded = max(u["finished"] for u in uploads)
    sent = sum(u["encoding_bytes"] for u in uploads)
    return {
        "end_to_end_s": max(k["finished"] for k in keys) - first,
        "upload_s": uploaded - first,
        "upload_mb_per_s": sent / 1e6 / (uploaded - first),
        "run_s": run_finished - run_started,
        "run_seconds_reported": report.seconds,
        "keys_s": max(k["finished"] for k in keys) - min(k["started"] for k in keys),
        "run_records": report.records,
        "entities": report.entities,
        "linked_entities": report.linked_entities,
        "threshold_used": report.threshold,
        "keys_returned": sum(k["keys"] for k in keys),
        "upload_node_cpu_s": max(u["cpu_s"] for u in uploads),
        "upload_coordinator_cpu_s": server_upload_cpu,
        "coordinator_peak_rss_mb": server_peak,
        "coordinator_worker_peak_rss_mb": watch.worker_peak_mb,
        "coordinator_tree_peak_mb": watch.tree_peak_mb,
        "coordinator_workers_seen": len(watch.workers_seen),
        "node_upload_peak_rss_mb": max(k["peak_rss_mb"] for k in keys),
        "matching": _matching_details(folder / "coordinator.db"),
    }


def _matching_details(database: Path) -> dict[str, Any]:
    """How the run compared (blocked or not, comparisons, bands), from its audit entry.

    Read from the bench's own throwaway database after the coordinator stopped.
    """
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
        row = db.execute(
            "SELECT details_json FROM audit WHERE action = 'run.completed' ORDER BY idx DESC"
        ).fetchone()
    details: dict[str, Any] = json.loads(row[0]).get("matching", {}) if row else {}
    return details
