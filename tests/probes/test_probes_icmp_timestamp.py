"""``icmp_timestamp``: the probe added as one file. Its frames, checked by scapy and tshark, and
its replies (timestamp replies and the errors quoting it) through the classifier, with forgeries
rejected."""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from scapy.layers.inet import ICMP, IP, IPerror
from scapy.layers.l2 import Ether

from liveness.net.pcap import PcapWriter
from liveness.probes import ReplyClassifier, parse_probes, probe_classes
from liveness.probes.context import ScanContext
from liveness.probes.synth import synthesize

SRC = int(ipaddress.IPv4Address("198.18.0.1"))
ROUTER = int(ipaddress.IPv4Address("198.18.255.254"))


@pytest.fixture(scope="module")
def ctx() -> ScanContext:
    return ScanContext.from_seed(
        77, src_ip=SRC, src_mac=b"\x02\0\0\0\0\xaa", gw_mac=b"\x02\0\0\0\0\xbb", max_attempts=2
    )


@pytest.fixture(scope="module")
def targets() -> np.ndarray:
    return (int(ipaddress.IPv4Address("198.19.0.0")) + np.arange(200) * 7).astype(np.uint32)


def test_it_is_found_by_name_from_its_class_alone() -> None:
    assert "icmp_timestamp" in probe_classes()
    (probe,) = parse_probes("icmp_timestamp")
    assert probe.name == "icmp_timestamp"
    both = parse_probes("icmp_echo,icmp_timestamp")
    assert len({p.probe_id for p in both}) == 2


@pytest.mark.parametrize("attempt", [0, 1])
def test_frames_are_valid_timestamp_requests_for_scapy(
    ctx: ScanContext, targets: np.ndarray, attempt: int
) -> None:
    (probe,) = parse_probes("icmp_timestamp")
    frames = probe.build(ctx, targets, attempt)
    tokens = probe.tokens(ctx, targets)
    for row, target, token in zip(frames, targets, tokens, strict=True):
        packet = Ether(row.tobytes())
        icmp = packet[ICMP]
        assert (icmp.type, icmp.code) == (13, 0)
        assert packet[IP].dst == str(ipaddress.IPv4Address(int(target)))
        assert icmp.id == int(token[0]) & 0xFFFF
        assert icmp.seq == ((int(token[0]) >> 16) + attempt) & 0xFFFF
        assert icmp.ts_ori == int(token[2])
        clone = packet.copy()
        del clone[ICMP].chksum, clone[IP].chksum
        rebuilt = Ether(bytes(clone))
        assert (rebuilt[ICMP].chksum, rebuilt[IP].chksum) == (icmp.chksum, packet[IP].chksum)


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_tshark_decodes_a_correct_timestamp_request(
    ctx: ScanContext, targets: np.ndarray, tmp_path: Path
) -> None:
    (probe,) = parse_probes("icmp_timestamp")
    path = tmp_path / "ts.pcap"
    with PcapWriter(path) as pcap:
        pcap.write(probe.build(ctx, targets[:5], 0))
    fields = ["icmp.type", "icmp.checksum.status", "ip.checksum.status"]
    command = ["tshark", "-n", "-r", str(path), "-o", "ip.check_checksum:TRUE", "-T", "fields"]
    command += [arg for name in fields for arg in ("-e", name)]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["13\t1\t1"] * 5


def test_replies_and_errors_round_trip_and_forgeries_are_counted(
    ctx: ScanContext, targets: np.ndarray
) -> None:
    probes = parse_probes("icmp_echo,icmp_timestamp")
    probe = probes[1]
    sent = probe.build(ctx, targets, 1)
    replies = synthesize(sent, "timestamp_reply")
    errors = synthesize(sent, "icmp_error", icmp_type=3, icmp_code=13, responder=ROUTER)
    forged = replies.copy()
    forged[:, 34 + 8] ^= 0xFF  # the originate timestamp no longer echoes ours
    frames = np.zeros((3 * len(targets), 128), dtype=np.uint8)
    frames[: len(targets), : replies.shape[1]] = replies
    frames[len(targets) : 2 * len(targets), : errors.shape[1]] = errors
    frames[2 * len(targets) :, : forged.shape[1]] = forged
    lengths = np.repeat([replies.shape[1], errors.shape[1], forged.shape[1]], len(targets))
    classifier = ReplyClassifier(ctx, probes)
    records = classifier.classify(frames, lengths, np.zeros(len(frames), np.int64)).to_pylist()
    assert len(records) == 2 * len(targets)
    assert classifier.counters["validation_failed"] == len(targets)
    answers = [r for r in records if r["reply"] == "timestamp_reply"]
    assert {r["target"] for r in answers} == set(targets.tolist())
    assert {(r["probe"], r["attempt"], r["icmp_type"]) for r in answers} == {
        ("icmp_timestamp", 1, 14)
    }
    unreach = [r for r in records if r["reply"] == "icmp_unreach"]
    assert {(r["responder"], r["icmp_code"], r["attempt"]) for r in unreach} == {(ROUTER, 13, 1)}
    assert {r["target"] for r in unreach} == set(targets.tolist())
    # scapy reads our synthetic error as an ICMP error quoting the timestamp request.
    quoted = Ether(errors[0].tobytes())
    assert quoted[IPerror].proto == 1 and bytes(quoted[IPerror].payload)[0] == 13


def test_an_echo_reply_is_not_taken_for_a_timestamp_reply(
    ctx: ScanContext, targets: np.ndarray
) -> None:
    probes = parse_probes("icmp_timestamp")
    echo = parse_probes("icmp_echo")[0]
    replies = synthesize(echo.build(ctx, targets, 0), "echo_reply")
    classifier = ReplyClassifier(ctx, probes)
    batch = classifier.classify(replies, np.full(len(replies), replies.shape[1]), np.zeros(200))
    assert batch.num_rows == 0 and classifier.counters["unknown_probe"] == len(targets)


@pytest.mark.root
def test_a_linux_kernel_answers_and_the_replies_validate(veth_pair: tuple[str, str]) -> None:
    """Real packets: namespace B's kernel answers the timestamp requests sent through the ring
    (and never answers an echo request with a timestamp reply)."""
    a, _ = veth_pair
    code = """
        import ipaddress, json, subprocess, time
        import numpy as np
        from liveness.net.afpacket import RingReceiver, RingSender, interface_mac
        from liveness.probes import ReplyClassifier, parse_probes
        from liveness.probes.context import ScanContext
        src = int(ipaddress.IPv4Address("198.18.255.1"))
        neigh = json.loads(subprocess.run(["ip", "-j", "neigh"], capture_output=True,
                                          text=True).stdout)[0]["lladdr"]
        ctx = ScanContext.from_seed(9, src_ip=src, src_mac=interface_mac("vA"),
                                    gw_mac=bytes.fromhex(neigh.replace(":", "")))
        probes = parse_probes("icmp_echo,icmp_timestamp")
        targets = (int(ipaddress.IPv4Address("198.18.0.1")) + np.arange(300)).astype(np.uint32)
        rx, tx = RingReceiver("vA", src), RingSender("vA")
        for probe in probes:
            tx.send(probe.build(ctx, targets, 0))
        classifier = ReplyClassifier(ctx, probes)
        rows = []
        deadline = time.time() + 5
        while time.time() < deadline and len(rows) < 600:
            batch = rx.poll(100)
            if len(batch.lengths):
                rows += classifier.classify(batch.frames, batch.lengths, batch.ts_ns).to_pylist()
        pairs = sorted({(r["probe"], r["reply"]) for r in rows})
        answered = {r["target"] for r in rows if r["reply"] == "timestamp_reply"}
        print(json.dumps([pairs, len(answered) == 300, classifier.counters["validation_failed"]]))
    """
    import json
    import sys
    import textwrap

    done = subprocess.run(
        ["ip", "netns", "exec", a, sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    pairs, all_answered, failed = json.loads(done.stdout)
    assert pairs == [["icmp_echo", "echo_reply"], ["icmp_timestamp", "timestamp_reply"]]
    assert all_answered and failed == 0
