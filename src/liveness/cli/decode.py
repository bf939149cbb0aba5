"""``liveness decode``: reply records from a pcap of captured replies, offline.

The validation key comes from the scan's seed (``--seed``, as ``scan -e``) or is given as hex
(``--key``, from the scan's metadata); the source address, probe list and port range must be
those of the scan. A truncated pcap is decoded up to the cut and reported as a warning.
"""

from __future__ import annotations

import ipaddress
from contextlib import ExitStack
from typing import Any, cast

import click
import numpy as np
import pyarrow as pa

from liveness.cli._common import check_output_file, emit_json, json_option, log
from liveness.cli._common import output_file as replacing_output
from liveness.errors import InputError
from liveness.net.pcap import PcapReader
from liveness.probes import DEFAULT_PROBES, ReplyClassifier, parse_probes
from liveness.probes.context import ScanContext
from liveness.targets.inputs import check_input_file, excerpt
from liveness.validate import KEY_LEN

__all__ = ["ClassifierPipeline", "RepeatMarker", "command"]

PLACEHOLDER_MAC = bytes(6)


class RepeatMarker:
    """Marks ``repeat`` on replies whose (target, probe) already answered earlier."""

    def __init__(self) -> None:
        self._seen = np.zeros(0, dtype=np.uint64)

    def mark(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """The batch with its ``repeat`` column filled in (state kept across batches)."""
        if batch.num_rows == 0:
            return batch
        target = batch.column("target").to_numpy().astype(np.uint64)
        probe_column = cast("pa.DictionaryArray[Any, Any]", batch.column("probe"))
        probe = np.asarray(probe_column.indices, dtype=np.uint64)
        keys = (target << np.uint64(16)) | probe
        _, first = np.unique(keys, return_index=True)
        repeat = np.ones(len(keys), dtype=bool)
        repeat[first] = False
        repeat |= np.isin(keys, self._seen)
        self._seen = np.union1d(self._seen, keys)
        index = batch.schema.get_field_index("repeat")
        return batch.set_column(index, batch.schema.field(index), pa.array(repeat))


def _context(
    seed: int | None, key: str | None, source_ip: str, vp: str, max_attempts: int
) -> ScanContext:
    try:
        src = int(ipaddress.IPv4Address(source_ip))
    except ValueError:
        raise InputError(f"--source-ip: {excerpt(source_ip)} is not an IPv4 address") from None
    fields: dict[str, Any] = {
        "src_ip": src,
        "src_mac": PLACEHOLDER_MAC,
        "gw_mac": PLACEHOLDER_MAC,
        "vp": vp,
        "max_attempts": max_attempts,
    }
    if (seed is None) == (key is None):
        raise InputError("give exactly one of --seed (the scan's -e) and --key (hex)")
    if seed is not None:
        return ScanContext.from_seed(seed, **fields)
    assert key is not None
    try:
        raw = bytes.fromhex(key)
    except ValueError:
        raise InputError(f"--key: {excerpt(key)} is not hex") from None
    if len(raw) != KEY_LEN:
        raise InputError(f"--key: must be {KEY_LEN} bytes ({2 * KEY_LEN} hex digits)")
    return ScanContext(key=raw, **fields)


class ClassifierPipeline:
    """Classify, then mark repeats: the offline equivalent of the scan's receiver."""

    def __init__(self, ctx: ScanContext, probes: list[Any]) -> None:
        self.classifier = ReplyClassifier(ctx, probes)
        self.repeats = RepeatMarker()
        self.records = 0

    def run(self, frames: Any, lengths: Any, ts_ns: Any) -> pa.RecordBatch:
        """Records of one batch of frames."""
        batch = self.repeats.mark(self.classifier.classify(frames, lengths, ts_ns))
        self.records += batch.num_rows
        return batch


@click.command(name="decode")
@click.argument("pcap", type=click.Path(dir_okay=False))
@click.option("-e", "--seed", type=click.IntRange(0, 2**64 - 1), help="The scan's seed (scan -e).")
@click.option("--key", help="The scan's validation key in hex (from its metadata).")
@click.option("-S", "--source-ip", required=True, help="The scan's source address.")
@click.option("--probes", default=DEFAULT_PROBES, show_default=True, help="The scan's probes.")
@click.option("-p", "--target-ports", help="The scan's -p ports.")
@click.option(
    "--max-attempts",
    type=int,
    default=2,
    show_default=True,
    help="Transmissions per probe in the scan (1 + retransmissions).",
)
@click.option("--vp", default="", help="Vantage point name to record.")
@click.option("-o", "--output-file", help="Records: .parquet, .csv, .jsonl (- = CSV stdout).")
@json_option
def command(
    pcap: str,
    seed: int | None,
    key: str | None,
    source_ip: str,
    probes: str,
    target_ports: str | None,
    max_attempts: int,
    vp: str,
    output_file: str | None,
    as_json: bool,
) -> None:
    """Decode PCAP (captured replies) into reply records and print the counters."""
    from liveness.output.writers import open_writer

    if output_file == "-" and as_json:
        raise InputError("-o - and --json would both write to stdout; pick one")
    if not 1 <= max_attempts <= 255:
        raise InputError(f"--max-attempts: {max_attempts} must be 1..255")
    to_file = output_file not in (None, "-")
    if to_file:
        assert output_file is not None
        check_output_file(output_file, "-o/--output-file")
    check_input_file(pcap)
    ctx = _context(seed, key, source_ip, vp, max_attempts)
    probe_list = parse_probes(probes, target_ports)
    classifier = ClassifierPipeline(ctx, probe_list)
    reader = PcapReader(pcap)
    with ExitStack() as stack:
        # a file output is written to a temporary that replaces it only once complete
        target = output_file
        if to_file:
            assert output_file is not None
            target = stack.enter_context(replacing_output(output_file, "-o/--output-file"))
        writer = open_writer(target, scanner_addr=ctx.src_ip) if target else None
        for batch in reader:
            records = classifier.run(batch.frames, batch.lengths, batch.ts_ns)
            if writer is not None:
                writer.write(records)
        if writer is not None:
            writer.close()
    warning = str(reader.error) if reader.error is not None else None
    if warning:
        log(f"liveness: warning: {warning}")
    result = {
        "pcap": pcap,
        "output": output_file,
        "records": classifier.records,
        "counters": classifier.classifier.counters,
        "warning": warning,
    }
    if as_json:
        emit_json(result)
    else:
        counters = " ".join(f"{k}={v}" for k, v in classifier.classifier.counters.items() if v)
        log(f"liveness: decoded {classifier.records} replies; {counters}")
