"""Benchmark: end-to-end ``summarize`` throughput on a synthetic reply dataset.

Generates ``--rows`` reply rows (default 50 million) in the study's rough proportions (many RSTs,
echo replies, a few SYN-ACKs, ICMP errors from targets and routers, DNS/NTP payloads, a few
tarpits). Every probe is sent twice (original and one retransmission) and most answers come
twice, so 45% of rows answer a retransmission; an alive address answers about four probe types,
hence ``--rows-per-host`` 8 by default. The analysis cost grows with addresses, the reduction
cost with rows, so fewer rows per host is slower per row.

The rows are written as Parquet files in a temporary directory, as a scan without
``--app-layer`` writes them (its columns, its codec; generation is not timed); the script runs
:func:`liveness.analysis.summarize`'s two steps on them and prints one JSON object:
``rows``, ``seconds``, ``rows_per_s``, ``rows_per_s_per_core``, ``cpu_seconds`` and
``rows_per_cpu_s`` (this process's CPU time, threads included: a fairer per-core figure on a
shared machine; null with Dask workers, whose CPU time is elsewhere), ``seconds_reduce``,
``seconds_per_analysis``, ``alive``, ``peak_rss_mb`` (from ``getrusage``: the whole run,
generation included).

``--alive N`` measures the study's scale instead (N = 500 million): ``N * --rows-per-host`` rows
are generated in batches and streamed straight into one :class:`~liveness.analysis.partial.Reducer`
per shard (``--files`` shards, merged as ``reduce_files`` merges files), with no files and no
table of hosts (a host's address is computed from its index), so that the generator holds a few
batches and the /24 table only. Times and CPU seconds then cover the reduction and the analyses,
not the generation (``seconds_generate``); the object adds ``mode`` (``"stream"``),
``alive_requested``, ``passes``, ``bitmap_mb`` (the merged bitmaps, summed over passes),
``peak_rss_mb_reduce`` (the peak up to the last pass's analyses) and ``peak_rss_mb`` (the peak
of the whole run). ``--passes P`` generates the same rows P times and keeps one window of the
IPv4 space per pass (as ``summarize(passes=P)``), so memory holds about 1/P of the bitmaps.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from liveness.analysis.partial import Reducer, ReplyPartial, Window, release_free_memory
from liveness.analysis.source import BATCH_ROWS, NEEDED_COLUMNS
from liveness.analysis.summary import (
    AnalysisParts,
    analysis_parts,
    analyze,
    reduce_files,
    summary_from_parts,
)
from liveness.output.schema import BASE_COLUMNS, REPLY_SCHEMA
from liveness.output.writers import PARQUET_COMPRESSION

# what a scan without --app-layer writes
SCAN_SCHEMA = pa.schema([REPLY_SCHEMA.field(name) for name in BASE_COLUMNS])

CHUNK = 1 << 20
# (probe, reply, icmp_code, from_router, app_valid, weight): share of reply rows
MIX: list[tuple[str, str, int, bool, bool, float]] = [
    ("icmp_echo", "echo_reply", -1, False, False, 30.0),
    ("icmp_echo", "icmp_unreach", 1, True, False, 1.5),
    ("icmp_echo", "icmp_unreach", 13, True, False, 0.5),
    ("icmp_echo", "icmp_time_exceeded", 0, True, False, 0.3),
    *[
        row
        for port in ("22", "23", "80", "443", "7547")
        for row in (
            (f"tcp_syn:{port}", "synack", -1, False, False, 2.4),
            (f"tcp_syn:{port}", "rst", -1, False, False, 7.0),
            (f"tcp_syn:{port}", "icmp_unreach", 13, False, False, 0.6),
            (f"tcp_syn:{port}", "icmp_unreach", 1, True, False, 0.4),
        )
    ],
    ("tcp_syn:random", "synack", -1, False, False, 0.1),
    ("tcp_syn:random", "rst", -1, False, False, 6.0),
    ("udp_dns", "udp", -1, False, True, 1.5),
    ("udp_dns", "udp", -1, False, False, 0.5),
    ("udp_dns", "icmp_unreach", 3, False, False, 4.0),
    ("udp_ntp", "udp", -1, False, True, 0.8),
    ("udp_ntp", "icmp_unreach", 3, False, False, 4.0),
    ("udp_ntp", "icmp_unreach", 10, True, False, 0.3),
]


def _dictionary(values: list[str], codes: np.ndarray) -> pa.Array:  # type: ignore[type-arg]
    return pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), pa.array(values))


RETRANSMITTED_SHARE = 0.45


_PROBES = sorted({m[0] for m in MIX})
_REPLIES = sorted({m[1] for m in MIX})


def _mix_rows(rng: np.random.Generator, rows: int) -> dict[str, np.ndarray]:
    """Per row, a MIX entry: its probe and reply codes, ICMP code, router flag, app_valid."""
    weights = np.array([m[5] for m in MIX])
    pick = rng.choice(len(MIX), size=rows, p=weights / weights.sum())
    return {
        "probe": np.array([_PROBES.index(m[0]) for m in MIX], dtype=np.int32)[pick],
        "reply": np.array([_REPLIES.index(m[1]) for m in MIX], dtype=np.int32)[pick],
        "icmp_code": np.array([m[2] for m in MIX], dtype=np.int16)[pick],
        "from_router": np.array([m[3] for m in MIX])[pick],
        "app_valid": np.array([m[4] for m in MIX])[pick],
    }


def _attempts(rng: np.random.Generator, rows: int) -> np.ndarray:
    return (rng.random(rows) < RETRANSMITTED_SHARE).astype(np.uint8)


def ipv6_of(addresses: np.ndarray) -> pa.FixedSizeBinaryArray:
    """An IPv6 address for each uint32 address: its /24 becomes the /64 2001:2:X:Y:: (X:Y the
    /24's number) and its last byte a random-looking 64-bit interface id, as a hitlist's are."""
    value = addresses.astype(np.uint64)
    hi = np.uint64(0x2001000200000000) | (value >> np.uint64(8))
    lo = value * _GOLDEN
    lo ^= lo >> np.uint64(31)
    packed = np.stack([hi, lo], axis=1).astype(">u8").tobytes()
    return pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(16), addresses.size, [None, pa.py_buffer(packed)]
    )


def generate_chunk(
    rng: np.random.Generator, rows: int, hosts: np.ndarray, family: int = 4
) -> pa.Table:
    """``rows`` synthetic reply rows about ``hosts`` (alive addresses) in the MIX proportions;
    ``family`` 6 moves every address to IPv6 (:func:`ipv6_of`), as a scan's IPv6 rows are
    stored in a record batch (``af`` 6, ``target6``/``responder6``, IPv4 columns 0)."""
    mix = _mix_rows(rng, rows)
    icmp_code = mix["icmp_code"]
    target = hosts[rng.integers(0, hosts.size, size=rows)]
    routers = hosts[: max(1, hosts.size // 100)] ^ np.uint32(0x55)
    router = routers[rng.integers(0, routers.size, size=rows)]
    responder = np.where(mix["from_router"], router, target)
    attempt = _attempts(rng, rows)
    zeros16 = np.zeros(rows, dtype=np.uint16)
    columns = {
        "ts": pa.array(np.arange(rows, dtype=np.int64)),
        "probe": _dictionary(_PROBES, mix["probe"]),
        "target": pa.array(target),
        "responder": pa.array(responder.astype(np.uint32)),
        "reply": _dictionary(_REPLIES, mix["reply"]),
        "icmp_type": pa.array(np.where(icmp_code >= 0, 3, -1).astype(np.int16)),
        "icmp_code": pa.array(icmp_code),
        "tcp_flags": pa.array(np.zeros(rows, dtype=np.uint8)),
        "ttl": pa.array(np.full(rows, 64, dtype=np.uint8)),
        "ipid": pa.array(zeros16),
        "sport": pa.array(zeros16),
        "dport": pa.array(zeros16),
        "attempt": pa.array(attempt),
        "repeat": pa.array(np.zeros(rows, dtype=bool)),
        "app_valid": pa.array(mix["app_valid"]),
        "vp": _dictionary(["vp0"], np.zeros(rows, dtype=np.int32)),
        "af": pa.array(np.full(rows, family, dtype=np.uint8)),
        "target6": pa.nulls(rows, pa.binary(16)),
        "responder6": pa.nulls(rows, pa.binary(16)),
    }
    if family == 6:
        columns["target6"] = ipv6_of(target)
        columns["responder6"] = ipv6_of(responder.astype(np.uint32))
        columns["target"] = columns["responder"] = pa.array(np.zeros(rows, dtype=np.uint32))
    return pa.Table.from_pydict(columns, schema=SCAN_SCHEMA)


def _alive_blocks(rng: np.random.Generator, count: int, density: float) -> np.ndarray:
    """The /24 blocks (uint32 block numbers) of ``count`` alive addresses (see _alive_hosts)."""
    blocks_alive = max(count // 40, 1)
    if density > 0:
        space_blocks = min(1 << 24, 1 << int(np.ceil(np.log2(count / density / 256))))
    else:
        space_blocks = 1 << 24
    base = rng.integers(0, (1 << 24) // space_blocks) * space_blocks
    blocks = base + rng.choice(space_blocks, size=min(blocks_alive, space_blocks), replace=False)
    return blocks.astype(np.uint32)


def _alive_hosts(rng: np.random.Generator, count: int, density: float) -> np.ndarray:
    """``count`` alive addresses at the study's density: about ``density`` of the scanned space
    alive (500 million of the ~3.7 billion allocated addresses), clustered in /24 blocks (about
    40 alive per alive block). A scaled-down run scans a proportionally smaller range, as a
    shard of the address space would; ``density`` 0 spreads hosts over all of IPv4 (worst case).
    """
    blocks = _alive_blocks(rng, count, density)
    picked = blocks[rng.integers(0, blocks.size, size=count)]
    return (picked << np.uint32(8)) | rng.integers(0, 256, size=count, dtype=np.uint32)


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_LOW32 = np.uint64(0xFFFFFFFF)


def _host_address(blocks: np.ndarray, index: np.ndarray) -> np.ndarray:
    """The address of each host ``index`` (uint64) without a table of hosts: host i lives in
    block ``blocks[i % len(blocks)]`` (about 40 per block, as in _alive_hosts) at a low byte
    taken from a multiplicative hash of i (so hosts of a block collide about as often)."""
    block = blocks[index % np.uint64(blocks.size)]
    low = ((index * _GOLDEN) >> np.uint64(56)).astype(np.uint32)
    return (block << np.uint32(8)) | low


def _mix_table() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """MIX entry by 16 random bits (each entry's share of the 65536 values as its weight), and
    per entry: probe and reply codes, ICMP code, router flag, app_valid."""
    weights = np.array([m[5] for m in MIX])
    bounds = np.round(np.cumsum(weights) / weights.sum() * 65536).astype(np.int64)
    entry = np.searchsorted(bounds, np.arange(65536), side="right").astype(np.uint8)
    return entry, {
        "probe": np.array([_PROBES.index(m[0]) for m in MIX], dtype=np.int32),
        "reply": np.array([_REPLIES.index(m[1]) for m in MIX], dtype=np.int32),
        "icmp_code": np.array([m[2] for m in MIX], dtype=np.int16),
        "from_router": np.array([m[3] for m in MIX]),
        "app_valid": np.array([m[4] for m in MIX]),
    }


def stream_batches(
    rng: np.random.Generator, rows: int, alive: int, blocks: np.ndarray
) -> Iterator[pa.RecordBatch]:
    """``rows`` reply rows about ``alive`` hosts (in ``blocks``), in record batches holding the
    columns the reduction reads; the first ``alive // 100`` hosts, with their addresses
    changed, also act as the routers that source ICMP errors. Two raw 64-bit random numbers
    per row decide everything (host, router, MIX entry, attempt), to keep the generator cheap."""
    schema = pa.schema([REPLY_SCHEMA.field(name) for name in NEEDED_COLUMNS])
    entry_of, entries = _mix_table()
    routers = np.uint64(max(1, alive // 100))
    retransmitted = np.uint64(round(RETRANSMITTED_SHARE * 65536))
    while rows > 0:
        n = min(BATCH_ROWS, rows)
        rows -= n
        hosts = rng.bit_generator.random_raw(n)
        bits = rng.bit_generator.random_raw(n)
        entry = entry_of[bits & np.uint64(0xFFFF)]
        target = _host_address(blocks, ((hosts >> np.uint64(32)) * np.uint64(alive)) >> 32)
        router = _host_address(blocks, ((hosts & _LOW32) * routers) >> np.uint64(32))
        responder = np.where(entries["from_router"][entry], router ^ np.uint32(0x55), target)
        attempt = (((bits >> np.uint64(16)) & np.uint64(0xFFFF)) < retransmitted).astype(np.uint8)
        columns = {
            "probe": _dictionary(_PROBES, entries["probe"][entry]),
            "target": pa.array(target),
            "responder": pa.array(responder),
            "reply": _dictionary(_REPLIES, entries["reply"][entry]),
            "icmp_code": pa.array(entries["icmp_code"][entry]),
            "attempt": pa.array(attempt),
            "app_valid": pa.array(entries["app_valid"][entry]),
        }
        yield pa.RecordBatch.from_pydict(columns, schema=schema)


def _peak_rss_mb() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def run_streamed(args: argparse.Namespace) -> dict[str, object]:
    """The ``--alive`` mode: generated batches streamed into one Reducer per shard, merged as
    ``reduce_files`` merges files; with ``--passes``, once per address window (the same rows
    each time, from the same seed), as ``summarize(passes=...)`` does."""
    rows = int(args.alive * args.rows_per_host)
    per_shard = -(-rows // args.files)
    cpu = generate = reduced = analysed = 0.0
    timings: dict[str, float] = {}
    parts = AnalysisParts()
    windows: list[Window | None] = [None] if args.passes == 1 else list(Window.split(args.passes))
    bitmap_bytes = counted = 0
    reduce_peak = 0
    unknown: set[str] = set()
    for index, window in enumerate(windows):
        rng = np.random.default_rng(args.seed)
        blocks = _alive_blocks(rng, args.alive, args.density)
        merged: ReplyPartial | None = None
        for shard in range(args.files):
            reducer = Reducer(f"shard-{shard}", window=window, counters=index == 0)
            shard_rows = min(per_shard, rows - shard * per_shard)
            batches = stream_batches(rng, shard_rows, args.alive, blocks)
            while True:
                start = time.perf_counter()
                batch = next(batches, None)
                generated = time.perf_counter()
                generate += generated - start
                if batch is None:
                    break
                cpu_start = time.process_time()
                reducer.add(batch)
                reduced += time.perf_counter() - generated
                cpu += time.process_time() - cpu_start
            start, cpu_start = time.perf_counter(), time.process_time()
            partial = reducer.finish()
            if merged is None:
                merged = partial
            else:
                merged.merge(partial)
            del reducer, partial
            release_free_memory()
            reduced += time.perf_counter() - start
            cpu += time.process_time() - cpu_start
            print(
                f"pass {index} shard {shard}: {merged.rows} rows, {_peak_rss_mb()} MB peak",
                file=sys.stderr,
            )
        assert merged is not None
        counted = counted or merged.rows
        bitmap_bytes += merged.bitmap_bytes()
        reduce_peak = max(reduce_peak, _peak_rss_mb())
        unknown = merged.unknown_probes
        start, cpu_start = time.perf_counter(), time.process_time()
        parts.add(analysis_parts(merged, timings))
        del merged
        release_free_memory()
        analysed += time.perf_counter() - start
        cpu += time.process_time() - cpu_start
    summary = summary_from_parts(parts, {"files": [], "rows": counted, "errors": 0}, unknown)
    wall = reduced + analysed
    return {
        "mode": "stream",
        "alive_requested": args.alive,
        "passes": args.passes,
        "rows": counted,
        "files": args.files,
        "workers": None,
        "density": args.density,
        "rows_per_host": args.rows_per_host,
        "seconds": round(wall, 3),
        "rows_per_s": round(counted / wall),
        "rows_per_s_per_core": round(counted / wall),
        "cpu_seconds": round(cpu, 3),
        "rows_per_cpu_s": round(counted / cpu),
        "seconds_reduce": round(reduced, 3),
        "seconds_per_analysis": {k: round(v, 4) for k, v in timings.items()},
        "seconds_generate": round(generate, 3),
        "alive": summary["coverage"]["all"],
        "bitmap_mb": round(bitmap_bytes / 2**20),
        "peak_rss_mb_reduce": reduce_peak,
        "peak_rss_mb": _peak_rss_mb(),
    }


def generate(
    directory: str,
    rows: int,
    files: int,
    seed: int,
    density: float,
    rows_per_host: float = 8.0,
    family: int = 4,
) -> list[str]:
    """Write ``rows`` rows as ``files`` Parquet files of one ``family``; return their paths."""
    rng = np.random.default_rng(seed)
    hosts = _alive_hosts(rng, max(int(rows / rows_per_host), 1), density)
    paths = []
    per_file = -(-rows // files)
    left = rows
    for i in range(files):
        path = os.path.join(directory, f"replies{family}-{i:03d}.parquet")
        with pq.ParquetWriter(path, SCAN_SCHEMA, compression=PARQUET_COMPRESSION) as writer:
            in_file = min(per_file, left)
            while in_file > 0:
                n = min(CHUNK, in_file)
                writer.write_table(generate_chunk(rng, n, hosts, family), row_group_size=CHUNK)
                in_file -= n
                left -= n
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000_000, help="reply rows to generate")
    parser.add_argument("--files", type=int, default=4, help="Parquet files (shards)")
    parser.add_argument("--workers", type=int, help="reduce on a local Dask cluster of N workers")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--density",
        type=float,
        default=0.13,
        help="alive share of the scanned range (study: ~0.13); 0 = hosts all over IPv4",
    )
    parser.add_argument(
        "--rows-per-host", type=float, default=8.0, help="reply rows per alive address"
    )
    parser.add_argument(
        "--alive",
        type=int,
        help="stream alive * rows-per-host generated rows into the reduction, no files"
        " (the study's scale: 500000000); --rows is then ignored",
    )
    parser.add_argument(
        "--passes",
        type=int,
        default=1,
        help="with --alive: reduce and analyse one window of the address space per pass",
    )
    parser.add_argument(
        "--ipv6",
        action="store_true",
        help="also run the same rows moved to IPv6 and report the IPv6/IPv4 rows/s ratio",
    )
    args = parser.parse_args()
    if args.alive:
        print(json.dumps(run_streamed(args)))
        return
    with tempfile.TemporaryDirectory(prefix="liveness-bench-") as directory:
        results = {4: run_files(args, directory, 4)}
        if args.ipv6:
            results[6] = run_files(args, directory, 6)
    if not args.ipv6:
        print(json.dumps(results[4]))
        return
    ratio = results[6]["rows_per_s"] / results[4]["rows_per_s"]
    cpu_ratio = None
    if results[4]["rows_per_cpu_s"] and results[6]["rows_per_cpu_s"]:
        cpu_ratio = round(results[6]["rows_per_cpu_s"] / results[4]["rows_per_cpu_s"], 3)
    print(
        json.dumps(
            {
                "ipv4": results[4],
                "ipv6": results[6],
                "ipv6_to_ipv4_rows_per_s": round(ratio, 3),
                "ipv6_to_ipv4_rows_per_cpu_s": cpu_ratio,
            }
        )
    )


def run_files(args: argparse.Namespace, directory: str, family: int) -> dict[str, Any]:
    """Generate ``args.rows`` rows of ``family`` as files, then reduce and analyse them."""
    start = time.perf_counter()
    paths = generate(
        directory, args.rows, args.files, args.seed, args.density, args.rows_per_host, family
    )
    print(
        f"generated {args.rows} IPv{family} rows in {time.perf_counter() - start:.1f}s",
        file=sys.stderr,
    )
    start = time.perf_counter()
    cpu_start = time.process_time()
    merged, inputs = reduce_files(paths, workers=args.workers)
    reduced = time.perf_counter() - start
    timings: dict[str, float] = {}
    summary = analyze(merged, inputs, timings)
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    for path in paths:
        os.unlink(path)
    cores = args.workers or 1
    section = summary if family == 4 else summary["ipv6"]
    return {
        "family": family,
        "rows": inputs["rows"],
        "files": args.files,
        "workers": args.workers,
        "density": args.density,
        "rows_per_host": args.rows_per_host,
        "seconds": round(seconds, 3),
        "rows_per_s": round(inputs["rows"] / seconds),
        "rows_per_s_per_core": round(inputs["rows"] / seconds / cores),
        "cpu_seconds": None if args.workers else round(cpu_seconds, 3),
        "rows_per_cpu_s": None if args.workers else round(inputs["rows"] / cpu_seconds),
        "seconds_reduce": round(reduced, 3),
        "seconds_per_analysis": {k: round(v, 4) for k, v in timings.items()},
        "alive": section["coverage"]["all"],
        "peak_rss_mb": _peak_rss_mb(),
    }


if __name__ == "__main__":
    main()
