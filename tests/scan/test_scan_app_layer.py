"""``--app-layer`` on the ``services`` testbed: real nginx (HTTP, TLS), sshd and a Telnet banner,
services on unexpected ports, open ports without a service, tarpits and ACKing middleboxes.

One scan over both families must give every (address, TCP probe) the application fields the
ground truth implies for its port's profile; a capture at the router must show exactly one ACK
and one closing RST per SYN-ACK and nothing for the other replies; the RST guard must exist only
in the VP's namespace, only while the scan runs, and be gone after a SIGKILL (by the keeper, or
by ``liveness cleanup`` / ``--resume`` when the keeper was killed too).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from router_capture import capture_at_router, stop

from liveness.output import read_replies
from liveness.output.addresses import format_dotted, format_ipv6
from liveness.probes.app_profiles import AppLayer, parse_app_profiles
from liveness.testbed import Testbed, load_spec
from liveness.testbed.testbed import LIVENESS_CLI

pytestmark = [pytest.mark.root, pytest.mark.slow]

ALLOW = "198.18.0.0/15\n2001:2::/48\n"
TCP_PROBES = (
    "tcp_syn:22",
    "tcp_syn:23",
    "tcp_syn:80",
    "tcp_syn:443",
    "tcp_syn:7547",
    "tcp_syn:random",
)
SPEAKS_FIRST = ("ssh", "telnet")
PROFILE_SPEAKS = {"http": ("http",), "tls": ("tls",), "banner": ("ssh", "telnet", "text")}
SIGNATURE = {
    "http": b"HTTP/1.1 200 OK\r\n",  # nginx's answer to our GET
    "tls": b"\x16\x03\x03",  # a ServerHello record
    "ssh": b"SSH-2.0-OpenSSH",
    "telnet": b"\xff\xfd",  # IAC DO
}
Key = tuple[int, str, str]  # (af, address text, probe)
_PIPE_STDERR: dict[str, Any] = {"stderr": subprocess.PIPE, "text": True}


@pytest.fixture(scope="module")
def testbed() -> Iterator[Testbed]:
    with Testbed(load_spec("services")) as tb:
        yield tb


def _targets(tb: Testbed) -> list[str]:
    return [*tb.targets, *(f"{net}-64" for net in tb.targets6)]


def _text(table: pa.Table) -> list[str]:
    four = format_dotted(table["target"].combine_chunks()).to_pylist()
    six = format_ipv6(pc.fill_null(table["target6"], b"\0" * 16).combine_chunks()).to_pylist()
    return [
        s if af == 6 else f for f, s, af in zip(four, six, table["af"].to_pylist(), strict=True)
    ]


def _tables(tb: Testbed, vp: str | None) -> set[str]:
    argv = ["nft", "list", "tables"]
    done = (
        tb.run(vp, argv, capture_output=True, text=True, check=True)
        if vp
        else subprocess.run(argv, capture_output=True, text=True, check=True)
    )
    return {line.split()[-1] for line in done.stdout.splitlines() if line.startswith("table")}


def _guards(tb: Testbed) -> set[str]:
    return {t for t in _tables(tb, "vp1") if t.startswith("liveness_rst_guard_")}


def _scan(
    tb: Testbed, tmp: Path, name: str, *options: str, popen: dict[str, Any] | None = None
) -> Any:
    """Scan the testbed from vp1 (both families): the reply table, or with ``popen`` (its
    keywords) the running process."""
    allow = tmp / "allow.txt"
    allow.write_text(ALLOW)
    vp = tb.vps["vp1"]
    out = tmp / f"{name}.parquet"
    argv = [
        *vp.scan_argv(_targets(tb), allow, "-o", str(out), "-m", str(tmp / f"{name}.json"),
                      "-q", *options),
        *vp.sender_options6(),
    ]  # fmt: skip
    if popen is not None:
        return tb.popen("vp1", argv, **popen)
    done = tb.run("vp1", argv, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    return pa.Table.from_batches(list(read_replies(str(out))))


def _expected(tb: Testbed, app: AppLayer) -> dict[Key, tuple[str, bool, bool]]:
    """(app_proto, app_valid, app_active) per SYN-ACKing (address, TCP probe), from the truth
    and the profiles: a server that waits for the client says nothing to ``banner``; an open
    port without a service acknowledges our payload (the kernel takes the data, the listener
    closes); tarpits and middleboxes (SYN-ACK on every probe) never do."""
    truth, _ = tb.truth()
    truth = truth.filter(pc.equal(truth["vp"], "vp1"))
    truth = truth.filter(pc.equal(truth["reply"], "synack"))
    names = _text(truth)
    synacks: dict[tuple[int, str], set[str]] = {}
    rows = list(zip(truth["af"].to_pylist(), names, truth["probe"].to_pylist(),
                    truth["app_proto"].to_pylist(), strict=True))  # fmt: skip
    for af, address, probe, _ in rows:
        synacks.setdefault((af, address), set()).add(probe)
    expected = {}
    for af, address, probe, proto in rows:
        port = 50000 if probe == "tcp_syn:random" else int(probe.split(":")[1])
        profile = app.profile(port)
        sends = profile != "banner"
        seen = proto if (sends or proto in SPEAKS_FIRST) else ""
        tarpit_like = synacks[(af, address)] >= set(TCP_PROBES)
        active = bool(seen) or (sends and not tarpit_like)
        expected[(af, address, probe)] = (seen, seen in PROFILE_SPEAKS[profile], active)
    return expected


def _found(table: pa.Table) -> tuple[dict[Key, tuple[str, bool, bool]], dict[Key, bytes]]:
    """The same per (address, TCP probe) from the scan, with the first banner of each."""
    found: dict[Key, tuple[str, bool, bool]] = {}
    banners: dict[Key, bytes] = {}
    names = _text(table)
    for row, address in zip(table.to_pylist(), names, strict=True):
        if not row["probe"].startswith("tcp_syn"):
            continue
        key = (row["af"], address, row["probe"])
        proto, valid, active = found.get(key, ("", False, False))
        if row["reply"] == "app_data" and not proto:
            proto = row["app_proto"]
            banners[key] = row["banner"]
        found[key] = (proto, valid or row["app_valid"], active or row["app_active"])
    return found, banners


def test_app_fields_equal_the_truth_and_the_guard_comes_and_goes(
    testbed: Testbed, tmp_path: Path
) -> None:
    tb = testbed
    host_before = _tables(tb, None)
    assert not _guards(tb)
    pcap = tmp_path / "wire.pcap"
    capture = capture_at_router(tb, "vp1", pcap, "tcp")
    try:
        options = ("--app-layer", "-r", "3000", "--retransmit-delay", "0", "--app-timeout", "2")
        scan = _scan(tb, tmp_path, "app", *options, "-c", "3", popen=_PIPE_STDERR)
        seen_guard: set[str] = set()
        while scan.poll() is None:
            seen_guard |= _guards(tb)
            time.sleep(0.1)
        assert scan.returncode == 0, scan.stderr.read()
        time.sleep(0.3)
    finally:
        stop(capture)
    assert len(seen_guard) == 1, "the guard exists while the scan runs"
    assert not _guards(tb), "and is gone after it"
    assert _tables(tb, None) == host_before, "the host's namespace is untouched"
    table = pa.Table.from_batches(list(read_replies(str(tmp_path / "app.parquet"))))
    meta = json.loads((tmp_path / "app.json").read_text())["app_layer"]
    assert meta["rst_guard"]["table"] in seen_guard

    want = _expected(tb, AppLayer())
    found, banners = _found(table)
    for af in (4, 6):
        expected = {k: v for k, v in want.items() if k[0] == af}
        got = {k: found.get(k, ("", False, False)) for k in expected}
        wrong = {k: (got[k], v) for k, v in expected.items() if got[k] != v}
        assert not wrong, (af, len(wrong), sorted(wrong.items())[:8])
        # no application answer from an address/probe the truth has no SYN-ACK for
        extra = {k for k, v in found.items() if k[0] == af and k not in expected and any(v)}
        assert not extra, sorted(extra)[:8]
        protos = Counter(v[0] for v in expected.values() if v[0])
        assert set(protos) == {"http", "tls", "ssh", "telnet"}, protos
    # banners are the servers' real first bytes, and services on unexpected ports are named
    for key, (proto, _, _) in want.items():
        if proto:
            assert banners[key].startswith(SIGNATURE[proto]), (key, banners[key][:40])
    unexpected = {(k[2], v[0]) for k, v in want.items() if v[0] == "ssh" and k[2] == "tcp_syn:443"}
    assert unexpected == {("tcp_syn:443", "ssh")}
    assert {(k[2], v[0]) for k, v in want.items() if k[2] == "tcp_syn:7547"} >= {
        ("tcp_syn:7547", "http")
    }

    # What the VP sent over TCP: per connection with a SYN-ACK, its SYN, one ACK (with the
    # profile's payload) and one RST; for every other connection the SYN alone.
    from scapy.layers.inet import IP, TCP
    from scapy.layers.inet6 import IPv6
    from scapy.utils import PcapReader

    sent: dict[tuple[str, int, int], Counter[str]] = {}
    with PcapReader(str(pcap)) as packets:
        for packet in packets:
            net = packet[IP] if IP in packet else packet[IPv6]
            tcp = packet[TCP]
            kind = "syn" if tcp.flags.S else "rst" if tcp.flags.R else "ack"
            sent.setdefault((net.dst, tcp.sport, tcp.dport), Counter())[kind] += 1
    synacked = {
        (address, row["dport"], row["sport"])
        for row, address in zip(table.to_pylist(), _text(table), strict=True)
        if row["reply"] == "synack"
    }
    assert synacked and len(synacked) == meta["acks_sent"] == meta["rsts_sent"]
    for connection, kinds in sent.items():
        if connection in synacked:
            assert kinds == Counter(syn=1, ack=1, rst=1), (connection, kinds)
        else:
            assert kinds == Counter(syn=1), (connection, kinds)
    assert synacked <= set(sent)


def test_a_sending_profile_names_http_on_port_22(testbed: Testbed, tmp_path: Path) -> None:
    """With ``22:http``, HTTP on 22 answers and SSH on 22 still greets first."""
    tb = testbed
    options = ("--probes", "tcp_syn:22", "--app-layer", "--app-profile", "22:http", "-r", "3000")
    table = _scan(tb, tmp_path, "p22", *options, "--retransmit-delay", "0", "--app-timeout", "2")
    want = _expected(tb, AppLayer(parse_app_profiles("22:http")))
    want = {k: v for k, v in want.items() if k[2] == "tcp_syn:22"}
    found, banners = _found(table)
    wrong = {k: (found.get(k), v) for k, v in want.items() if found.get(k, ("", False, False)) != v}
    assert not wrong, sorted(wrong.items())[:8]
    protos = Counter(v[0] for v in want.values())
    assert protos["http"] > 0 and protos["ssh"] > 0
    assert all(banners[k].startswith(SIGNATURE[v[0]]) for k, v in want.items() if v[0])


def test_without_app_layer_nothing_changes(testbed: Testbed, tmp_path: Path) -> None:
    tb = testbed
    host_before = _tables(tb, None)
    vp_before = _tables(tb, "vp1")
    scan = _scan(
        tb, tmp_path, "plain", "-r", "2000", "--retransmit-delay", "0", "-c", "1",
        popen=_PIPE_STDERR,
    )  # fmt: skip
    during: set[str] = set()
    while scan.poll() is None:
        during |= _tables(tb, "vp1")
        time.sleep(0.1)
    assert scan.returncode == 0, scan.stderr.read()
    assert during <= vp_before and _tables(tb, "vp1") == vp_before
    assert _tables(tb, None) == host_before
    table = pa.Table.from_batches(list(read_replies(str(tmp_path / "plain.parquet"))))
    assert not set(table["reply"].cast(pa.string()).to_pylist()) & {
        "app_data",
        "app_ack",
        "app_rst",
    }
    meta = json.loads((tmp_path / "plain.json").read_text())
    assert "app_layer" not in meta


def _wait_for_guard(tb: Testbed, scan: Any) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and scan.poll() is None:
        guards = _guards(tb)
        if guards:
            return guards.pop()
        time.sleep(0.05)
    raise AssertionError("no RST guard appeared")


def test_sigkill_leaves_no_guard_and_cleanup_or_resume_removes_a_stranded_one(
    testbed: Testbed, tmp_path: Path
) -> None:
    tb = testbed
    slow = ("--app-layer", "-r", "100", "--retransmit-delay", "0", "--app-timeout", "1", "-c", "2")
    # SIGKILL of the scan: its keeper removes the guard
    scan = _scan(tb, tmp_path, "killed", *slow, popen={"start_new_session": True})
    table = _wait_for_guard(tb, scan)
    scan.kill()
    scan.wait(10)
    deadline = time.monotonic() + 10
    while table in _guards(tb) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert table not in _guards(tb)
    # SIGKILL of everything (the keeper too): the guard stays, recorded with the checkpoint
    scan = _scan(tb, tmp_path, "stranded", *slow, popen={"start_new_session": True})
    table = _wait_for_guard(tb, scan)
    os.killpg(scan.pid, signal.SIGKILL)
    scan.wait(10)
    time.sleep(0.5)
    assert table in _guards(tb)
    record = Path(f"{tmp_path / 'stranded.parquet'}.checkpoint.guard.json")
    assert json.loads(record.read_text())["table"] == table
    argv = [*LIVENESS_CLI, "cleanup", "-o", str(tmp_path / "stranded.parquet"), "--json"]
    cleanup = tb.run("vp1", argv, capture_output=True, text=True, timeout=60)
    assert cleanup.returncode == 0, cleanup.stderr
    assert json.loads(cleanup.stdout)["removed"] == [table]
    assert not _guards(tb) and not record.exists()
    # and again, this time finished by --resume, which replaces the stranded guard
    scan = _scan(tb, tmp_path, "resumed", *slow, popen={"start_new_session": True})
    table = _wait_for_guard(tb, scan)
    time.sleep(1.0)
    os.killpg(scan.pid, signal.SIGKILL)
    scan.wait(10)
    time.sleep(0.5)
    assert table in _guards(tb)
    _scan(tb, tmp_path, "resumed", *slow, "--resume")
    assert not _guards(tb)
    assert not Path(f"{tmp_path / 'resumed.parquet'}.checkpoint.guard.json").exists()


def test_probes_and_follow_ups_together_keep_to_the_rate(testbed: Testbed, tmp_path: Path) -> None:
    """The follow-ups are charged to the scan's pacer: on the wire (a capture at the router),
    no one-second window of what the scanner sent (probes, ACKs, RSTs) holds more than
    1.03 x ``-r``, and the follow-ups are a good part of it."""
    import numpy as np
    from scapy.layers.inet import ICMP, IP, TCP, UDP
    from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6
    from scapy.utils import PcapReader

    tb = testbed
    rate = 1000
    pcap = tmp_path / "wire.pcap"
    capture = capture_at_router(tb, "vp1", pcap)
    try:
        options = ("--app-layer", "-r", str(rate), "--retransmit-delay", "0", "--app-timeout", "1")
        _scan(tb, tmp_path, "paced", *options, "-c", "2")
        time.sleep(0.3)
    finally:
        stop(capture)
    times: list[float] = []
    follow_ups = 0
    with PcapReader(str(pcap)) as packets:
        for packet in packets:
            scanner = (
                TCP in packet
                or UDP in packet
                or (ICMP in packet and packet[ICMP].type == 8)
                or ICMPv6EchoRequest in packet
            )  # not the VP kernel's port unreachables and neighbour discovery
            if scanner and (IP in packet or IPv6 in packet):
                times.append(float(packet.time))
                follow_ups += int(TCP in packet and not packet[TCP].flags.S)
    meta = json.loads((tmp_path / "paced.json").read_text())
    stamps = np.sort(np.array(times))
    ends = np.searchsorted(stamps, stamps + 1.0, side="left")
    busiest = int((ends - np.arange(stamps.size)).max())
    assert follow_ups == meta["app_layer"]["acks_sent"] + meta["app_layer"]["rsts_sent"] > 500
    assert stamps.size == meta["packets_sent"] + follow_ups
    assert busiest <= 1.03 * rate, busiest
    assert meta["rate_max_1s_pps"] <= 1.03 * rate
