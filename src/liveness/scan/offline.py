"""The offline receiver: a capture of replies decoded into reply records (``liveness decode``).

The same :class:`~liveness.probes.pipeline.ReplyPipeline` as the live receiver (classify, mark
repeats, count), fed from a pcap file instead of the receive ring, so a capture taken beside a
scan (tcpdump, Wireshark) decodes to the records the scan itself would have written. A truncated
capture is decoded up to the cut; the cut is returned as a warning.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from liveness.net.pcap import PcapReader
from liveness.output.writers import ReplyWriter
from liveness.probes.base import Probe
from liveness.probes.context import ScanContext
from liveness.probes.pipeline import ReplyPipeline

__all__ = ["Decoded", "decode_capture"]


@dataclass
class Decoded:
    """What a decode found: records made, the classifier's counters, a truncation warning."""

    records: int
    counters: dict[str, int]
    warning: str | None


def decode_capture(
    pcap: str, ctx: ScanContext, probes: Sequence[Probe], writer: ReplyWriter | None
) -> Decoded:
    """Decode every frame of ``pcap`` for the scan of ``ctx`` and ``probes``; records go to
    ``writer`` (kept open: the caller closes it)."""
    pipeline = ReplyPipeline(ctx, probes)
    reader = PcapReader(pcap)
    for batch in reader:
        records = pipeline.run(batch.frames, batch.lengths, batch.ts_ns)
        if writer is not None and records.num_rows:
            writer.write(records)
    warning = str(reader.error) if reader.error is not None else None
    return Decoded(pipeline.records, dict(pipeline.counters), warning)
