"""A full linkage across three hosts, with every byte between them captured and inspected.

The coordinator and two nodes each run in their own network namespace, the
nodes joined to the coordinator by a veth pair each (two small subnets; the
coordinator's namespace is the hub). Every party is the real `hublink`
command run with `ip netns exec`: the coordinator serves, the nodes upload,
the admin (in the first node's namespace) runs the match, the nodes fetch
their keys.

A raw AF_PACKET socket opened inside the coordinator's namespace sees every
frame on both of its veths. Afterwards, per TCP connection and direction, the
stream is put back together by sequence number and must be, byte for byte,
a sequence of well-formed TLS records (content type 20-23, version 0x0303 —
0x0301 is allowed on the first record a client sends, the ClientHello, as
RFC 8446 §5.1 permits — and lengths that add up exactly to the stream's
end). No identifier from the input CSVs, no token a node chose, and no
linkage key appears anywhere in the capture.

Needs root and `ip netns`; skipped otherwise (CI runs it as root).
"""

from __future__ import annotations

import contextlib
import csv
import ctypes
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hublink import synthetic
from hublink.demo import COORDINATOR, PROJECT_ID, write_deployment
from hublink.pki import issue_certificate, load_authority
from tests.conftest import SHORTEST_SEARCHED, identifier_values

pytestmark = [pytest.mark.e2e, pytest.mark.root]

IP = shutil.which("ip") or "/usr/sbin/ip"
PORT = 7443
RECORDS = 200
CLONE_NEWNET = 0x40000000
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
PROXY_VARIABLES = {"grpc_proxy", "https_proxy", "http_proxy", "no_proxy", "no_grpc_proxy"}
MAX_RECORD = 2**14 + 256


def ip(*args: str) -> None:
    subprocess.run([IP, *args], check=True, capture_output=True, timeout=30)


@dataclass
class Hosts:
    """Three namespaces: the coordinator's and one per node, each node on its own subnet."""

    coordinator: str
    nodes: tuple[str, str]
    coordinator_ips: tuple[str, str]
    node_ips: tuple[str, str]


@pytest.fixture
def hosts(request: pytest.FixtureRequest) -> Hosts:
    if not Path(IP).exists():
        pytest.skip(f"{IP} not found: iproute2 is needed for `ip netns`")
    tag = secrets.token_hex(3)
    names = [f"hublink-{tag}-{role}" for role in ("coord", "node-a", "node-b")]
    made: list[str] = []

    def clean_up() -> None:
        for name in made:
            subprocess.run([IP, "netns", "del", name], capture_output=True, timeout=30)

    request.addfinalizer(clean_up)
    for name in names:
        try:
            ip("netns", "add", name)
        except subprocess.CalledProcessError as exc:
            pytest.skip(f"`ip netns add` is not available here: {exc.stderr.decode().strip()}")
        made.append(name)
        ip("-n", name, "link", "set", "lo", "up")
    subnet = 16 + secrets.randbelow(200)
    coordinator_ips, node_ips = [], []
    for number, node in enumerate(names[1:], start=1):
        hub_end, node_end = f"hl{tag}c{number}", f"hl{tag}n{number}"
        ip("link", "add", hub_end, "netns", names[0], "type", "veth", "peer", "name", node_end,
           "netns", node)  # fmt: skip
        hub_ip, node_ip = f"10.{subnet}.{number}.1", f"10.{subnet}.{number}.2"
        ip("-n", names[0], "addr", "add", f"{hub_ip}/24", "dev", hub_end)
        ip("-n", node, "addr", "add", f"{node_ip}/24", "dev", node_end)
        ip("-n", names[0], "link", "set", hub_end, "up")
        ip("-n", node, "link", "set", node_end, "up")
        coordinator_ips.append(hub_ip)
        node_ips.append(node_ip)
    return Hosts(
        names[0],
        (names[1], names[2]),
        (coordinator_ips[0], coordinator_ips[1]),
        (node_ips[0], node_ips[1]),
    )


class Capture:
    """Every frame on the coordinator namespace's interfaces, from a raw AF_PACKET socket.

    The socket is opened by a thread that first moves itself into the
    namespace with setns(2); only that thread changes namespace, and it ends
    with the capture.
    """

    def __init__(self, namespace: str) -> None:
        self.frames: list[tuple[str, int, bytes]] = []
        self._namespace = namespace
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="capture", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(f"/run/netns/{self._namespace}", os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns into the coordinator's namespace")
            finally:
                os.close(fd)
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            sock.setsockopt(socket.SOL_SOCKET, 33, 64 * 1024 * 1024)  # SO_RCVBUFFORCE
            sock.settimeout(0.1)
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        with sock:
            while not self._stop.is_set():
                try:
                    data, address = sock.recvfrom(262144)
                except TimeoutError:
                    continue
                self.frames.append((str(address[0]), int(address[2]), data))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)


@dataclass
class Stream:
    """One direction of one TCP connection, put back together by sequence number."""

    start: int | None = None
    segments: dict[int, bytes] = field(default_factory=dict)
    finished: bool = False

    def data(self) -> bytes:
        assert self.start is not None, "the capture missed the connection's SYN"
        out = bytearray()
        for offset in sorted(self.segments):
            payload = self.segments[offset]
            assert offset <= len(out), f"{offset - len(out)} bytes missing from the capture"
            overlap = len(out) - offset
            assert out[offset:] == payload[:overlap], "a retransmission differs from the original"
            out += payload[overlap:]
        return bytes(out)


def tcp_streams(
    frames: list[tuple[str, int, bytes]],
) -> tuple[dict[tuple[str, int, str, int], Stream], set[str]]:
    """(src, sport, dst, dport) -> Stream for every TCP segment on the veths; other protocols."""
    streams: dict[tuple[str, int, str, int], Stream] = defaultdict(Stream)
    others: set[str] = set()
    for interface, _, frame in frames:
        if interface == "lo":
            continue  # the coordinator's own operations port; not between hosts
        ethertype = struct.unpack("!H", frame[12:14])[0]
        if ethertype != 0x0800:
            others.add(f"ethertype {ethertype:#06x}")
            continue
        packet = frame[14:]
        header = (packet[0] & 0x0F) * 4
        total = struct.unpack("!H", packet[2:4])[0]
        protocol = packet[9]
        if protocol != 6:
            others.add(f"IP protocol {protocol}")
            continue
        src, dst = socket.inet_ntoa(packet[12:16]), socket.inet_ntoa(packet[16:20])
        segment = packet[header:total]
        sport, dport, seq = struct.unpack("!HHI", segment[:8])
        offset = (segment[12] >> 4) * 4
        flags = segment[13]
        stream = streams[(src, sport, dst, dport)]
        if flags & 0x02:  # SYN
            stream.start = (seq + 1) % 2**32
        if flags & 0x01:  # FIN
            stream.finished = True
        payload = segment[offset:]
        if payload:
            assert stream.start is not None, "data before the SYN"
            stream.segments.setdefault((seq - stream.start) % 2**32, payload)
    return streams, others


def tls_records(data: bytes, *, client: bool) -> dict[int, int]:
    """Walk ``data`` as TLS records; returns records per content type. Fails on any stray byte."""
    position = 0
    kinds: dict[int, int] = defaultdict(int)
    while position < len(data):
        assert len(data) - position >= 5, f"{len(data) - position} bytes left that are no record"
        kind, version, length = struct.unpack("!BHH", data[position : position + 5])
        assert kind in (20, 21, 22, 23), f"content type {kind} at byte {position}"
        first_client_hello = client and position == 0 and kind == 22
        assert version == 0x0303 or (first_client_hello and version == 0x0301), (
            f"record version {version:#06x} at byte {position}"
        )
        assert 0 < length <= MAX_RECORD, f"record length {length} at byte {position}"
        assert position + 5 + length <= len(data), f"record at byte {position} runs past the end"
        kinds[kind] += 1
        position += 5 + length
    return dict(kinds)


def identifier_forms(data: synthetic.GeneratedData) -> set[bytes]:
    """Every identifier in the input (tests.conftest.identifier_values) as written, lower
    and upper case.

    Searched case-sensitively in each form: the capture is ciphertext, and folding its
    case would make a chance match of a five-letter name far likelier.
    """
    forms = {form for v in identifier_values(data) for form in (v, v.lower(), v.upper())}
    return {form.encode() for form in forms if len(form) >= SHORTEST_SEARCHED}


def in_namespace(namespace: str, *args: str) -> list[str]:
    return [IP, "netns", "exec", namespace, sys.executable, "-m", "hublink", *args]


def run_in(namespace: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        in_namespace(namespace, *args), capture_output=True, text=True, timeout=120, env=env
    )
    assert result.returncode == 0, f"{' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result


@contextlib.contextmanager
def serving(namespace: str, config: Path, log: Path, env: dict[str, str]) -> Iterator[None]:
    with log.open("wb") as sink:
        process = subprocess.Popen(
            in_namespace(namespace, "coordinator", "serve", "--config", str(config)),
            stdout=subprocess.DEVNULL,
            stderr=sink,
            env=env,
        )
    try:
        deadline = time.monotonic() + 60
        while "listening on port" not in log.read_text():
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()  # a guard, not a measurement
            time.sleep(0.1)
        yield
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.slow
def test_a_linkage_across_three_hosts_sends_only_tls_and_no_identifier(
    hosts: Hosts, tmp_path: Path
) -> None:
    data = synthetic.generate(
        tmp_path / "data", RECORDS, seed=17, layouts=synthetic.DEFAULT_LAYOUTS[:2]
    )
    configs = write_deployment(tmp_path, data, PORT)
    organisations = [layout.organisation for layout in data.layouts]
    # The coordinator's certificate names the addresses nodes reach it at.
    issue_certificate(
        load_authority(tmp_path / "pki"),
        COORDINATOR,
        tmp_path / "pki",
        ip_addresses=("127.0.0.1", *hosts.coordinator_ips),
        overwrite=True,
    )
    coordinator_config = configs["coordinator"]
    coordinator_config.write_text(
        coordinator_config.read_text().replace(f'"127.0.0.1:{PORT}"', f'"0.0.0.0:{PORT}"', 1)
    )
    for name, address in (
        (organisations[0], hosts.coordinator_ips[0]),
        (organisations[1], hosts.coordinator_ips[1]),
        ("admin", hosts.coordinator_ips[0]),
    ):
        path = configs[name]
        path.write_text(path.read_text().replace(f'"localhost:{PORT}"', f'"{address}:{PORT}"', 1))
    env = {k: v for k, v in os.environ.items() if k.lower() not in PROXY_VARIABLES}
    env["PYTHONWARNINGS"] = "ignore"

    capture = Capture(hosts.coordinator)
    try:
        with serving(hosts.coordinator, coordinator_config, tmp_path / "serve.log", env):
            uploads = [
                subprocess.Popen(
                    in_namespace(namespace, "node", "upload", "--config", str(configs[org])),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    env=env,
                )
                for namespace, org in zip(hosts.nodes, organisations, strict=True)
            ]
            for process in uploads:
                out, err = process.communicate(timeout=120)
                assert process.returncode == 0, out + err
            run_in(
                hosts.nodes[0],
                "admin", "run", "--config", str(configs["admin"]), "--project", PROJECT_ID,
                env=env,
            )  # fmt: skip
            for namespace, org in zip(hosts.nodes, organisations, strict=True):
                run_in(namespace, "node", "keys", "--config", str(configs[org]), env=env)
    finally:
        capture.stop()

    # --- the linkage happened, across the hosts -------------------------------------------
    database = tmp_path / "coordinator" / "coordinator.db"
    with closing(sqlite3.connect(database)) as db, db:
        committed = db.execute("SELECT COUNT(*) FROM uploads WHERE state = 'committed'").fetchone()
        encoding_bytes = db.execute("SELECT SUM(LENGTH(encodings)) FROM records").fetchone()[0]
        runs = [r[0] for r in db.execute("SELECT state FROM runs")]
    assert committed == (2,) and runs == ["completed"]
    keys: set[bytes] = set()
    tokens: set[bytes] = set()
    for org in organisations:
        node_dir = configs[org].parent
        with (node_dir / "linked.csv").open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert len(rows) > 0
        keys.update(row["linkage_key"].encode() for row in rows)
        with closing(sqlite3.connect(node_dir / "state" / "tokens.sqlite")) as db, db:
            tokens.update(t.encode() for (t,) in db.execute("SELECT token FROM tokens"))

    # --- every TCP byte between the hosts is TLS ------------------------------------------
    streams, others = tcp_streams(capture.frames)
    assert others <= {"ethertype 0x0806", "ethertype 0x86dd"}, others  # ARP, IPv6 ND only
    peers = {(s, d) for s, _, d, _ in streams}
    assert peers == {
        (hosts.node_ips[0], hosts.coordinator_ips[0]),
        (hosts.coordinator_ips[0], hosts.node_ips[0]),
        (hosts.node_ips[1], hosts.coordinator_ips[1]),
        (hosts.coordinator_ips[1], hosts.node_ips[1]),
    }
    assert all(PORT in (sport, dport) for _, sport, _, dport in streams)
    sent_up = 0
    kinds: dict[int, int] = defaultdict(int)
    for (_, _, _, dport), stream in streams.items():
        data_bytes = stream.data()
        client = dport == PORT
        for kind, count in tls_records(data_bytes, client=client).items():
            kinds[kind] += count
        if client:
            sent_up += len(data_bytes)
    # 4 node processes + 1 admin at least; every record's encodings went up inside TLS.
    assert len(streams) >= 2 * 5
    assert kinds[22] > 0 and kinds[23] > 0
    assert sent_up > encoding_bytes > 0
    total = sum(len(s.data()) for s in streams.values())
    print(  # shown with -s: what was inspected
        f"captured {len(capture.frames)} frames, {len(streams) // 2} connections, "
        f"{total} TCP payload bytes ({sent_up} to the coordinator), TLS records by type "
        f"{dict(sorted(kinds.items()))}"
    )
    # The checks would catch plaintext: gRPC's cleartext preface is no TLS record.
    with pytest.raises(AssertionError):
        tls_records(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", client=True)

    # --- and none of it is an identifier, a token or a linkage key -------------------------
    capture_bytes = b"".join(s.data() for s in streams.values())
    forms = identifier_forms(data)
    assert len(forms) > 1000
    some = sorted(forms)[len(forms) // 2]
    assert some in b"plaintext " + some  # the search itself finds what it looks for
    assert sorted(f for f in forms if f in capture_bytes) == []
    assert sorted(t for t in tokens if t in capture_bytes) == []
    assert sorted(k for k in keys if k in capture_bytes) == []
