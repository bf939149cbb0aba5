"""The dry run: build every frame a scan would send, without a network or privileges.

Frames go to a pcap file (``--pcap-out``) or, one summary line per frame, to a text stream (as
ZMap's ``--dryrun`` prints its packets). The original probes of every target come first, then,
if retransmission is on, the retransmissions stamped ``retransmit_delay`` later, as a live scan
would send them.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TextIO

import numpy as np
from numpy.typing import NDArray

from liveness.net.pcap import PcapWriter
from liveness.packet.layout import PROTO_ICMP, PROTO_TCP, PROTO_UDP
from liveness.probes.base import Probe
from liveness.probes.context import ScanContext

__all__ = ["DryRunReport", "dry_run", "frame_summaries"]

TargetBatches = Iterable[tuple[int, Any]]  # uint32 arrays, or TargetBatches of both families


@dataclass
class DryRunReport:
    """Counts of what a dry run built."""

    targets: int = 0
    frames: int = 0
    bytes: int = 0
    frames_per_probe: dict[str, int] = field(default_factory=dict)
    attempts: list[int] = field(default_factory=list)
    elapsed_s: float = 0.0

    def as_dict(self) -> dict[str, object]:
        """JSON-ready counts (with the build rate)."""
        rate = self.frames / self.elapsed_s if self.elapsed_s > 0 else None
        return {
            "targets": self.targets,
            "frames": self.frames,
            "bytes": self.bytes,
            "frames_per_probe": self.frames_per_probe,
            "attempts": self.attempts,
            "elapsed_s": round(self.elapsed_s, 6),
            "frames_per_s": rate,
        }


def frame_summaries(probe: Probe, frames: NDArray[np.uint8], attempt: int) -> list[str]:
    """One line per frame: addresses, probe, attempt and the fields carrying validation bits.

    Frames of either family (an IPv6 frame's fields sit 20 bytes later)."""
    if len(frames) == 0:
        return []
    six = (frames[:, 12] == 0x86) & (frames[:, 13] == 0xDD)
    if six.any() and not six.all():
        lines = [""] * len(frames)
        for mask in (six, ~six):
            rows = np.flatnonzero(mask)
            for row, line in zip(rows, frame_summaries(probe, frames[rows], attempt), strict=True):
                lines[row] = line
        return lines
    shift = 20 if six[0] else 0

    def be(off: int, size: int) -> NDArray[np.uint64]:
        cols = frames[:, shift + off : shift + off + size].astype(np.uint64)
        value = np.zeros(len(frames), dtype=np.uint64)
        for i in range(size):
            value = (value << np.uint64(8)) | cols[:, i]
        return value

    if six[0]:
        src = str(ipaddress.IPv6Address(frames[0, 22:38].tobytes()))
        dsts = [str(ipaddress.IPv6Address(row.tobytes())) for row in frames[:, 38:54]]
        length = probe.frame_len + 20
    else:
        src = str(ipaddress.IPv4Address(int(be(26, 4)[0])))
        dsts = [str(ipaddress.IPv4Address(int(v))) for v in be(30, 4)]
        length = probe.frame_len
    head = f"{probe.name} attempt={attempt} len={length}"
    if probe.protocol == PROTO_ICMP:
        detail = [f"id={i} seq={s}" for i, s in zip(be(38, 2), be(40, 2), strict=True)]
    elif probe.protocol == PROTO_TCP:
        detail = [
            f"sport={s} dport={d} seq={q}"
            for s, d, q in zip(be(34, 2), be(36, 2), be(38, 4), strict=True)
        ]
    elif probe.protocol == PROTO_UDP:
        detail = [f"sport={s} dport={d}" for s, d in zip(be(34, 2), be(36, 2), strict=True)]
    else:
        detail = [""] * len(frames)
    return [f"{src} > {dst} {head} {d}" for dst, d in zip(dsts, detail, strict=True)]


def _count(targets: Any) -> int:
    """How many targets a batch holds (a uint32 array or a TargetBatch)."""
    return len(targets) if isinstance(targets, np.ndarray) else len(targets.is6)


def _head(targets: Any, count: int) -> Any:
    """The first ``count`` targets of a batch."""
    if isinstance(targets, np.ndarray):
        return targets[:count]
    return replace(targets, is6=targets.is6[:count], v4=targets.v4[:count], v6=targets.v6[:count])


def dry_run(
    batches: Callable[[], TargetBatches],
    probes: Sequence[Probe],
    ctx: ScanContext,
    *,
    attempts: Sequence[int] = (0,),
    retransmit_delay_s: float = 0.0,
    pcap: PcapWriter | None = None,
    lines: TextIO | None = None,
    max_targets: int | None = None,
    copies: int = 1,
) -> DryRunReport:
    """Build the frames of every target batch (``batches()`` is called once per attempt).

    The frames are the live scan's own (:func:`~liveness.scan.loop.build_batch`: target-major,
    ``copies`` of each, as ``-P``), so the pcap shows what would be on the wire, in its order.
    ``max_targets`` stops after that many targets (as ``-n``).
    """
    from liveness.scan.loop import build_batch

    report = DryRunReport(attempts=list(attempts))
    report.frames_per_probe = {probe.name: 0 for probe in probes}
    started = time.perf_counter()
    start_ns = time.time_ns()
    for attempt in attempts:
        ts_ns = start_ns + int(attempt * retransmit_delay_s * 1e9)
        seen = 0
        for _, targets in batches():
            if max_targets is not None:
                targets = _head(targets, max(0, max_targets - seen))
                if _count(targets) == 0:
                    break
            seen += _count(targets)
            frames, lengths = build_batch(probes, ctx, targets, attempt, copies)
            report.frames += len(frames)
            report.bytes += int(lengths.sum())
            if pcap is not None:
                pcap.write(frames, lengths, ts_ns)
            slots = len(probes) * copies
            for index, probe in enumerate(probes):
                rows = frames[index * copies :: slots]
                report.frames_per_probe[probe.name] += len(rows) * copies
                if lines is not None:
                    lines.write(
                        "".join(line + "\n" for line in frame_summaries(probe, rows, attempt))
                    )
        report.targets = max(report.targets, seen)
    report.elapsed_s = time.perf_counter() - started
    return report
