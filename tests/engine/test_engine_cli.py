"""``liveness scan -d`` and ``liveness decode``: end to end through the CLI, without a network."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from cli_runner import run_cli
from liveness.net.pcap import PcapWriter, read_pcap
from liveness.probes import DEFAULT_PROBES, parse_probes
from liveness.probes.synth import synthesize

NET = "198.18.0.0/24"


@pytest.fixture
def allow(tmp_path: Path) -> str:
    path = tmp_path / "allow.txt"
    path.write_text(f"# the benchmarking range\n{NET}\n")
    return str(path)


def test_dry_run_writes_every_frame_to_pcap(
    allow: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pcap = tmp_path / "probes.pcap"
    args = ["scan", "-d", NET, "-w", allow, "-e", "11", "-S", "198.18.0.1"]
    code, out, _ = run_cli([*args, "--pcap-out", str(pcap), "--json"], capsys)
    assert code == 0
    result = json.loads(out)
    n_probes = len(DEFAULT_PROBES.split(","))
    assert result["targets"] == 256 and result["attempts"] == [0, 1]
    assert result["frames"] == 256 * n_probes * 2
    assert set(result["frames_per_probe"].values()) == {512}
    batch, error = read_pcap(pcap)
    assert error is None and len(batch) == result["frames"]
    destinations = {bytes(row[30:34]) for row in batch.frames}
    net = ipaddress.IPv4Network(NET)
    assert destinations == {a.packed for a in net}
    # retransmissions are stamped --retransmit-delay (default 20 s) after the originals
    assert batch.ts_ns.max() - batch.ts_ns.min() == 20 * 10**9


def test_dry_run_prints_one_line_per_frame(allow: str, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["scan", "-d", "198.18.0.0/30", "-w", allow, "--retransmit-delay", "0"]
    code, out, err = run_cli([*args, "--probes", "icmp_echo,tcp_syn:80"], capsys)
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 4 * 2
    assert sum("tcp_syn:80 attempt=0" in line and "dport=80" in line for line in lines) == 4
    assert "8 frames for 4 targets" in err


def test_dry_run_max_targets_and_shards(allow: str, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["scan", "-d", NET, "-w", allow, "-e", "3", "--json", "--retransmit-delay", "0"]
    code, out, _ = run_cli([*base, "-n", "10"], capsys)
    assert code == 0 and json.loads(out)["targets"] == 10
    code, out, _ = run_cli([*base, "-n", "50%"], capsys)
    assert json.loads(out)["targets"] == 128
    counts = []
    for shard in range(3):
        code, out, _ = run_cli([*base, "--shards", "3", "--shard", str(shard)], capsys)
        counts.append(json.loads(out)["targets"])
    assert sum(counts) == 256


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["-p", "0"], "-p/--target-ports"),
        (["--probes", "icmp_echo,nope"], "unknown probe"),
        (["--shards", "2", "--shard", "2"], "--shard"),
        (["-S", "300.1.1.1"], "-S/--source-ip"),
        (["-G", "zz:00"], "-G/--gateway-mac"),
        (["--source-mac", "1:2:3"], "--source-mac"),
        (["--retransmit-delay", "-1"], "--retransmit-delay"),
        (["-n", "many"], "-n/--max-targets"),
    ],
)
def test_bad_flags_give_one_line_and_status_2(
    allow: str, extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(["scan", "-d", NET, "-w", allow, *extra], capsys)
    assert code == 2 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_blocklisted_target_without_allowlist_is_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run_cli(["scan", "-d", NET], capsys)
    assert code == 2 and "Traceback" not in err


def _replies_pcap(tmp_path: Path, seed: int, source: str) -> tuple[Path, int]:
    """A pcap of synthetic replies to a dry-run pcap's frames (one reply per probe frame)."""
    from liveness.probes.context import ScanContext

    ctx = ScanContext.from_seed(
        seed, src_ip=int(ipaddress.IPv4Address(source)), src_mac=b"\x02" * 6, gw_mac=b"\x04" * 6
    )
    targets = np.arange(
        int(ipaddress.IPv4Address("198.18.0.10")),
        int(ipaddress.IPv4Address("198.18.0.30")),
        dtype=np.uint32,
    )
    path = tmp_path / "replies.pcap"
    count = 0
    with PcapWriter(path) as writer:
        for probe in parse_probes(DEFAULT_PROBES):
            frames = probe.build(ctx, targets, 1)
            kind = {1: "echo_reply", 6: "synack", 17: "udp"}[probe.protocol]
            for reply in (synthesize(frames, kind), synthesize(frames, "icmp_error")):
                writer.write(reply)
                count += len(reply)
            writer.write(synthesize(frames, kind))  # duplicates: marked repeat
            writer.write(frames)  # our own probes in the capture: not for us
    return path, count


@pytest.mark.parametrize("suffix", ["parquet", "csv", "jsonl"])
def test_decode_writes_records(
    tmp_path: Path, suffix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    pcap, expected = _replies_pcap(tmp_path, 21, "198.18.0.1")
    out_file = tmp_path / f"out.{suffix}"
    args = ["decode", str(pcap), "-e", "21", "-S", "198.18.0.1", "-o", str(out_file), "--json"]
    code, out, _ = run_cli(args, capsys)
    assert code == 0
    result = json.loads(out)
    n_probes = len(DEFAULT_PROBES.split(","))
    assert result["records"] == expected + 20 * n_probes
    assert result["counters"]["not_for_us"] == 20 * n_probes
    if suffix == "parquet":
        table = pq.read_table(out_file)
        assert table.num_rows == result["records"]
        assert sum(table.column("repeat").to_pylist()) == 2 * 20 * n_probes  # error + duplicate
        assert set(table.column("attempt").to_pylist()) == {1}
    else:
        text = out_file.read_text()
        assert "198.18.0.10" in text and "tcp_syn:random" in text


def test_decode_with_key_and_wrong_seed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from liveness.validate import derive_key

    pcap, expected = _replies_pcap(tmp_path, 5, "198.18.0.1")
    code, out, _ = run_cli(
        ["decode", str(pcap), "--key", derive_key(5).hex(), "-S", "198.18.0.1", "--json"], capsys
    )
    assert code == 0 and json.loads(out)["records"] > expected
    code, out, _ = run_cli(["decode", str(pcap), "-e", "6", "-S", "198.18.0.1", "--json"], capsys)
    assert code == 0 and json.loads(out)["records"] == 0


def test_decode_truncated_pcap_warns_and_keeps(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pcap, _ = _replies_pcap(tmp_path, 5, "198.18.0.1")
    pcap.write_bytes(pcap.read_bytes()[:-10])
    code, out, err = run_cli(["decode", str(pcap), "-e", "5", "-S", "198.18.0.1", "--json"], capsys)
    assert code == 0
    result = json.loads(out)
    assert result["records"] > 0 and "truncated" in result["warning"]
    assert "warning" in err and str(pcap) in err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "exactly one of --seed"),
        (["-e", "1", "--key", "00"], "exactly one of --seed"),
        (["--key", "abc"], "--key"),
        (["--key", "00" * 8], "16 bytes"),
        (["-e", "1", "--max-attempts", "0"], "--max-attempts"),
    ],
)
def test_decode_bad_flags(
    tmp_path: Path, extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    pcap, _ = _replies_pcap(tmp_path, 5, "198.18.0.1")
    code, _, err = run_cli(["decode", str(pcap), "-S", "198.18.0.1", *extra], capsys)
    assert code == 2 and message in err and "Traceback" not in err


def test_dry_run_frames_answered_then_decoded(
    allow: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """scan -d --pcap-out -> replies to exactly those frames -> decode with the same seed."""
    sent = tmp_path / "sent.pcap"
    scan = ["scan", "-d", "198.18.0.0/28", "-w", allow, "-e", "77", "-S", "198.18.0.1"]
    assert run_cli([*scan, "--pcap-out", str(sent)], capsys)[0] == 0
    batch, _ = read_pcap(sent)
    replies = tmp_path / "replies.pcap"
    with PcapWriter(replies) as writer:
        for width in np.unique(batch.lengths):  # one probe type per frame length
            frames = batch.frames[batch.lengths == width, :width]
            protocol = int(frames[0, 23])
            writer.write(synthesize(frames, {1: "echo_reply", 6: "rst_ack", 17: "udp"}[protocol]))
    args = ["decode", str(replies), "-e", "77", "-S", "198.18.0.1", "--json"]
    code, out, _ = run_cli([*args, "-o", str(tmp_path / "r.parquet")], capsys)
    assert code == 0 and json.loads(out)["records"] == len(batch)
    table = pq.read_table(tmp_path / "r.parquet")
    assert sorted(set(table.column("target").to_pylist())) == list(
        range(int(ipaddress.IPv4Address("198.18.0.0")), int(ipaddress.IPv4Address("198.18.0.16")))
    )
    assert sorted(set(table.column("attempt").to_pylist())) == [0, 1]


def test_dry_run_lines_to_file(
    allow: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = tmp_path / "frames.txt"
    args = ["scan", "-d", "198.18.0.0/29", "-w", allow, "-o", str(out_file), "--json"]
    code, out, _ = run_cli([*args, "--probes", "udp_dns:TXT:example.org"], capsys)
    assert code == 0 and json.loads(out)["frames"] == 16
    lines = out_file.read_text().splitlines()
    assert len(lines) == 16 and all("udp_dns" in line and "dport=53" in line for line in lines)
