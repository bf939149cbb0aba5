"""The scan loop through the in-memory transport: no root, no network, every frame inspected.

``run_scan`` drives a :class:`~liveness.net.transport.MemoryTransport` whose responder answers
every echo request; the frames it logged are checked against the frames the probe builds for
each attempt, so timing, counts and resumption are asserted frame by frame.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from numpy.typing import NDArray

from liveness.errors import RunError
from liveness.net.transport import MemoryTransport
from liveness.output import read_replies
from liveness.probes import parse_probes
from liveness.probes.context import ScanContext
from liveness.probes.synth import synthesize
from liveness.scan.loop import ScanSettings, run_scan
from liveness.targets import TargetSpace

SOURCE = 0xC612FF01  # 198.18.255.1


def _echo_responder(frames: NDArray[np.uint8], lengths: NDArray[np.uint32]) -> tuple[Any, Any]:
    replies = synthesize(frames, "echo_reply")
    return replies, np.full(len(replies), replies.shape[1], np.uint32)


def _settings(tmp_path: Path, cidr: str, transport: MemoryTransport, **kw: Any) -> ScanSettings:
    retransmissions = kw.pop("retransmissions", 1)
    ctx = ScanContext.from_seed(
        3, src_ip=SOURCE, src_mac=b"\x02" * 6, gw_mac=b"\x04" * 6, max_attempts=1 + retransmissions
    )
    defaults: dict[str, Any] = {
        "rate": 20_000.0,
        "cooldown": 0.3,
        "retransmit_delay": 0.2,
        "quiet": True,
        "metadata_path": str(tmp_path / "meta.json"),
        "drop_privileges": False,  # the test process keeps its capabilities for later tests
    }
    return ScanSettings(
        space=TargetSpace.from_options([cidr], default_blocklist=False),
        probes=parse_probes("icmp_echo"),
        context=ctx,
        seed=3,
        ifname="memory",
        output=str(tmp_path / "out.parquet"),
        retransmissions=retransmissions,
        transport=transport,
        **(defaults | kw),
    )


def _by_attempt(settings: ScanSettings, frames: NDArray[np.uint8]) -> Counter[tuple[bytes, int]]:
    """(frame bytes' destination, attempt) -> how many times it was sent."""
    probe = settings.probes[0]
    targets = settings.space.addresses(np.arange(settings.space.size))
    attempt_of = {}
    for attempt in range(settings.context.max_attempts):
        for row in probe.build(settings.context, targets, attempt):
            attempt_of[row.tobytes()] = attempt
    width = probe.frame_len
    return Counter((bytes(row[30:34]), attempt_of[row[:width].tobytes()]) for row in frames)


def test_each_attempt_leaves_once_per_target_and_a_delay_after_the_last(tmp_path: Path) -> None:
    transport = MemoryTransport(responder=_echo_responder)
    settings = _settings(tmp_path, "198.18.0.0/24", transport, retransmissions=2)
    meta = run_scan(settings)
    sent = _by_attempt(settings, transport.frames())
    assert set(sent.values()) == {1} and len(sent) == 256 * 3
    by_target: dict[bytes, list[float]] = {}
    for t, frames in transport.sent:
        for row in frames:
            by_target.setdefault(bytes(row[30:34]), []).append(t)
    gaps = np.array([np.diff(sorted(ts)) for ts in by_target.values()])
    assert gaps.min() >= 0.2 - 0.01  # --retransmit-delay between attempts
    replies = pa.Table.from_batches(list(read_replies(settings.output)))
    assert replies.num_rows == 768 and pa.compute.sum(replies["repeat"]).as_py() == 512
    assert sorted(set(replies["attempt"].to_pylist())) == [0, 1, 2]
    assert meta["packets_sent"] == 768 and meta["retransmitted"] == [256, 256]


def test_an_idle_wait_for_retransmissions_is_not_paid_back(tmp_path: Path) -> None:
    transport = MemoryTransport(responder=None)
    settings = _settings(
        tmp_path, "198.18.0.0/21", transport, rate=4_000.0, retransmit_delay=0.9, cooldown=0.0
    )
    meta = run_scan(settings)
    times = np.sort(transport.times())
    assert times.size == 2 * 2048
    ends = np.searchsorted(times, times + 1.0, side="left")
    busiest = int((ends - np.arange(times.size)).max())
    assert busiest <= 1.03 * 4_000
    assert meta["rate_max_1s_pps"] <= 1.03 * 4_000
    assert meta["rate_achieved_pps"] == pytest.approx(4_000, rel=0.1)


def test_max_targets_and_copies(tmp_path: Path) -> None:
    transport = MemoryTransport(responder=None)
    settings = _settings(
        tmp_path, "198.18.0.0/22", transport, max_targets=100, copies=2, retransmissions=0
    )
    run_scan(settings)
    frames = transport.frames()
    assert frames.shape[0] == 200
    # Copies leave side by side, and 100 distinct targets were probed.
    assert (frames[0::2] == frames[1::2]).all()
    assert len({bytes(row[30:34]) for row in frames}) == 100


def test_a_full_queue_is_retried_and_counted(tmp_path: Path) -> None:
    transport = MemoryTransport(responder=None, full_flushes=5)
    settings = _settings(tmp_path, "198.18.0.0/24", transport)
    meta = run_scan(settings)
    assert meta["sendto_failures"] == 5
    assert set(_by_attempt(settings, transport.frames()).values()) == {1}
    assert json.loads(Path(tmp_path / "meta.json").read_text())["sendto_failures"] == 5


def test_a_full_queue_beyond_max_sendto_failures_stops_the_scan(tmp_path: Path) -> None:
    transport = MemoryTransport(responder=None, full_flushes=5)
    settings = _settings(tmp_path, "198.18.0.0/24", transport, max_sendto_failures=3)
    with pytest.raises(RunError, match="max-sendto-failures 3"):
        run_scan(settings)


def _killed_scan(tmp_path: Path, log: Path) -> None:
    """Run a scan that is SIGKILLed after ~300 frames, logging every flush to ``log``."""

    def logging_responder(frames: NDArray[np.uint8], lengths: NDArray[np.uint32]) -> Any:
        with open(log, "ab") as handle:
            handle.write(frames[:, :42].tobytes())
        return _echo_responder(frames, lengths)

    def kill(sent: int) -> None:
        if sent >= 300:
            os.kill(os.getpid(), signal.SIGKILL)

    transport = MemoryTransport(responder=logging_responder, on_flush=kill)
    run_scan(_settings(tmp_path, "198.18.0.0/22", transport, rate=5_000.0))


def test_resume_after_a_kill_sends_every_probe_exactly_once(tmp_path: Path) -> None:
    log = tmp_path / "killed.frames"
    child = mp.get_context("fork").Process(target=_killed_scan, args=(tmp_path, log))
    child.start()
    child.join(60)
    assert child.exitcode == -signal.SIGKILL
    from liveness.scan.checkpoint import wait_for_unlock

    assert wait_for_unlock(f"{tmp_path}/out.parquet.checkpoint.progress", 30)
    before = np.frombuffer(log.read_bytes(), np.uint8).reshape(-1, 42)
    assert 300 <= before.shape[0] < 1024
    rows_before = sum(b.num_rows for b in read_replies(str(tmp_path / "out.parquet")))
    assert rows_before > 0  # the orphaned receiver closed what it had

    transport = MemoryTransport(responder=_echo_responder)
    settings = _settings(tmp_path, "198.18.0.0/22", transport, rate=5_000.0, resume=True)
    run_scan(settings)
    after = transport.frames()[:, :42]
    both = np.concatenate([before, after])
    sent = _by_attempt(settings, both)
    assert len(sent) == 1024 * 2 and set(sent.values()) == {1}
    replies = pa.Table.from_batches(list(read_replies(settings.output)))
    first = replies.filter(pa.compute.equal(replies["repeat"], False))
    assert first.num_rows == 1024


def test_the_pcap_transport_rehearses_a_scan_from_and_to_files(tmp_path: Path) -> None:
    """Frames go to a pcap, replies come from one: the scan of a capture, with no network."""
    from liveness.net.pcap import PcapWriter, read_pcap
    from liveness.net.transport import PcapTransport

    settings = _settings(
        tmp_path, "198.18.0.0/24", MemoryTransport(), retransmissions=0, cooldown=0.5
    )
    probe = settings.probes[0]
    targets = settings.space.addresses(np.arange(settings.space.size))
    replies = synthesize(probe.build(settings.context, targets, 0), "echo_reply")
    with PcapWriter(tmp_path / "replies.pcap") as pcap:
        pcap.write(replies)
    settings.transport = PcapTransport(str(tmp_path / "sent.pcap"), str(tmp_path / "replies.pcap"))
    meta = run_scan(settings)
    sent, error = read_pcap(tmp_path / "sent.pcap")
    assert error is None and len(sent) == 256 == meta["packets_sent"]
    assert {bytes(row[30:34]) for row in sent.frames} == {
        int(t).to_bytes(4, "big") for t in targets
    }
    found = pa.Table.from_batches(list(read_replies(settings.output)))
    assert found.num_rows == 256 and set(found["target"].to_pylist()) == set(targets.tolist())
