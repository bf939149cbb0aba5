"""The scan loop over both families, through the in-memory transport (no root, no network).

A mixed space (an IPv4 /25 and 256 IPv6 addresses) is scanned with echo and a SYN; a responder
answers every frame as a host would. Each family's targets are probed once per attempt, the
replies carry the family and the IPv6 addresses, and a SIGKILL then ``--resume`` sends no
frame twice.
"""

from __future__ import annotations

import ipaddress
import multiprocessing as mp
import os
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from liveness.net.transport import MemoryTransport
from liveness.output import read_replies
from liveness.probes import parse_probes
from liveness.probes.context import ScanContext
from liveness.probes.synth import synthesize
from liveness.scan.loop import ScanSettings, run_scan
from liveness.targets import TargetSpace

SOURCE = 0xC612FF01  # 198.18.255.1
SOURCE6 = ipaddress.IPv6Address("2001:2:ff::1").packed
TARGETS = ["198.18.0.0/25", "2001:2:0:7::/120"]
ALLOW = ["198.18.0.0/15", "2001:2::/48"]


def _responder(frames: NDArray[np.uint8], lengths: NDArray[np.uint32]) -> tuple[Any, Any]:
    """Answer every probe: echo replies to echo requests, SYN-ACKs to SYNs (either family)."""
    out: list[NDArray[np.uint8]] = []
    six = (frames[:, 12] == 0x86) & (frames[:, 13] == 0xDD)
    proto = np.where(six, frames[:, 20], frames[:, 23])
    for family in (False, True):
        for protocol in np.unique(proto[six == family]):
            rows = np.flatnonzero((six == family) & (proto == protocol))
            width = int(lengths[rows[0]])
            kind = "synack" if protocol == 6 else "echo_reply"
            out.append(synthesize(frames[rows, :width], kind))
    width = max(r.shape[1] for r in out)
    replies = np.concatenate([np.pad(r, ((0, 0), (0, width - r.shape[1]))) for r in out])
    sizes = np.concatenate([np.full(len(r), r.shape[1], np.uint32) for r in out])
    return replies, sizes


def _settings(tmp_path: Path, transport: MemoryTransport, **kw: Any) -> ScanSettings:
    ctx = ScanContext.from_seed(
        5, src_ip=SOURCE, src_mac=b"\x02" * 6, gw_mac=b"\x04" * 6, src_ip6=SOURCE6
    )
    defaults: dict[str, Any] = {
        "rate": 20_000.0,
        "cooldown": 0.3,
        "retransmit_delay": 0.2,
        "quiet": True,
        "drop_privileges": False,
    }
    return ScanSettings(
        space=TargetSpace.from_options(TARGETS, allowlist=ALLOW),
        probes=parse_probes("icmp_echo,tcp_syn:80"),
        context=ctx,
        seed=5,
        ifname="memory",
        output=str(tmp_path / "out.parquet"),
        transport=transport,
        **(defaults | kw),
    )


def _destinations(frames: NDArray[np.uint8]) -> Counter[tuple[str, int]]:
    """(destination address, IP protocol) -> frames sent."""
    counts: Counter[tuple[str, int]] = Counter()
    for row in frames:
        if row[12] == 0x86 and row[13] == 0xDD:
            counts[(str(ipaddress.IPv6Address(row[38:54].tobytes())), int(row[20]))] += 1
        else:
            counts[(str(ipaddress.IPv4Address(row[30:34].tobytes())), int(row[23]))] += 1
    return counts


def _expected() -> set[str]:
    return {str(a) for net in TARGETS for a in ipaddress.ip_network(net)}


def test_both_families_are_probed_once_per_attempt_and_answered(tmp_path: Path) -> None:
    transport = MemoryTransport(responder=_responder)
    settings = _settings(tmp_path, transport)
    meta = run_scan(settings)
    sent = _destinations(transport.frames())
    assert {address for address, _ in sent} == _expected()
    assert set(sent.values()) == {2}  # original + one retransmission, per probe
    assert {proto for (address, proto) in sent if ":" in address} == {58, 6}
    assert meta["targets_total"] == 384 and meta["packets_sent"] == 384 * 2 * 2
    assert meta["source_ip6"] == "2001:2:ff::1"
    table = pa.Table.from_batches(list(read_replies(settings.output)))
    first = table.filter(pa.compute.equal(table["repeat"], False)).to_pydict()
    assert len(first["af"]) == 384 * 2  # one first reply per (target, probe)
    pairs = list(zip(first["af"], first["target"], first["target6"], strict=True))
    six = [str(ipaddress.IPv6Address(t6)) for af, _, t6 in pairs if af == 6]
    four = [str(ipaddress.IPv4Address(t)) for af, t, _ in pairs if af == 4]
    assert Counter(six) == {str(a): 2 for a in ipaddress.ip_network(TARGETS[1])}
    assert sorted(set(four)) == sorted(str(a) for a in ipaddress.ip_network(TARGETS[0]))
    assert table.num_rows == 384 * 2 * 2  # the retransmissions' replies are repeats
    distinct = meta["distinct_targets_per_probe"]
    assert distinct == {"icmp_echo": 384, "tcp_syn:80": 384}


def _killed_scan(tmp_path: Path, log: Path) -> None:
    """A scan that SIGKILLs itself after a few flushes (run in a child process)."""
    flushes = [0]

    def logging_responder(frames: NDArray[np.uint8], lengths: NDArray[np.uint32]) -> Any:
        with open(log, "ab") as handle:
            for row in frames:
                handle.write(row[:80].tobytes().ljust(80, b"\0"))
        return _responder(frames, lengths)

    def kill(frames_sent: int) -> None:
        flushes[0] += 1
        if flushes[0] == 3:
            os.kill(os.getpid(), signal.SIGKILL)

    transport = MemoryTransport(responder=logging_responder, on_flush=kill)
    run_scan(_settings(tmp_path, transport, rate=4_000.0, retransmit_delay=0.0))


def test_sigkill_then_resume_sends_no_frame_twice_over_both_families(tmp_path: Path) -> None:
    log = tmp_path / "sent.bin"
    child = mp.get_context("fork").Process(target=_killed_scan, args=(tmp_path, log))
    child.start()
    child.join(60)
    assert child.exitcode == -signal.SIGKILL
    from liveness.scan.checkpoint import wait_for_unlock

    assert wait_for_unlock(f"{tmp_path}/out.parquet.checkpoint.progress", 30)
    before = np.frombuffer(log.read_bytes(), np.uint8).reshape(-1, 80)
    assert 0 < before.shape[0] < 384 * 2
    transport = MemoryTransport(responder=_responder)
    settings = _settings(tmp_path, transport, rate=4_000.0, retransmit_delay=0.0, resume=True)
    run_scan(settings)
    after = transport.frames()[:, :80]
    after = np.pad(after, ((0, 0), (0, 80 - after.shape[1])))
    sent = _destinations(np.concatenate([before, after]))
    assert {address for address, _ in sent} == _expected()
    assert set(sent.values()) == {1}
    table = pa.Table.from_batches(list(read_replies(settings.output)))
    first = table.filter(pa.compute.equal(table["repeat"], False))
    assert first.num_rows == 384 * 2
