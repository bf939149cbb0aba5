"""Benchmark: end-to-end ``summarize`` throughput on a synthetic reply dataset.

Generates ``--rows`` reply rows (default 50 million) in the study's rough proportions (many RSTs,
echo replies, a few SYN-ACKs, ICMP errors from targets and routers, DNS/NTP payloads, a few
tarpits). Every probe is sent twice (original and one retransmission) and most answers come
twice, so 45% of rows answer a retransmission; an alive address answers about four probe types,
hence ``--rows-per-host`` 8 by default. The analysis cost grows with addresses, the reduction
cost with rows, so fewer rows per host is slower per row.

The rows are written as Parquet files in a temporary directory (generation is not timed); the
script runs :func:`liveness.analysis.summarize`'s two steps on them and prints one JSON object:
``rows``, ``seconds``, ``rows_per_s``, ``rows_per_s_per_core``, ``cpu_seconds`` and
``rows_per_cpu_s`` (this process's CPU time, threads included: a fairer per-core figure on a
shared machine; null with Dask workers, whose CPU time is elsewhere), ``seconds_reduce``,
``seconds_per_analysis``, ``alive``, ``peak_rss_mb``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from liveness.analysis.summary import analyze, reduce_files
from liveness.output.schema import REPLY_SCHEMA

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


def generate_chunk(rng: np.random.Generator, rows: int, hosts: np.ndarray) -> pa.Table:
    """``rows`` synthetic reply rows about ``hosts`` (alive addresses) in the MIX proportions."""
    weights = np.array([m[5] for m in MIX])
    pick = rng.choice(len(MIX), size=rows, p=weights / weights.sum())
    probes = sorted({m[0] for m in MIX})
    replies = sorted({m[1] for m in MIX})
    probe_code = np.array([probes.index(m[0]) for m in MIX], dtype=np.int32)[pick]
    reply_code = np.array([replies.index(m[1]) for m in MIX], dtype=np.int32)[pick]
    icmp_code = np.array([m[2] for m in MIX], dtype=np.int16)[pick]
    from_router = np.array([m[3] for m in MIX])[pick]
    app_valid = np.array([m[4] for m in MIX])[pick]
    target = hosts[rng.integers(0, hosts.size, size=rows)]
    routers = hosts[: max(1, hosts.size // 100)] ^ np.uint32(0x55)
    responder = np.where(from_router, routers[rng.integers(0, routers.size, size=rows)], target)
    attempt = (rng.random(rows) < RETRANSMITTED_SHARE).astype(np.uint8)
    zeros16 = np.zeros(rows, dtype=np.uint16)
    columns = {
        "ts": pa.array(np.arange(rows, dtype=np.int64)),
        "probe": _dictionary(probes, probe_code),
        "target": pa.array(target),
        "responder": pa.array(responder.astype(np.uint32)),
        "reply": _dictionary(replies, reply_code),
        "icmp_type": pa.array(np.where(icmp_code >= 0, 3, -1).astype(np.int16)),
        "icmp_code": pa.array(icmp_code),
        "tcp_flags": pa.array(np.zeros(rows, dtype=np.uint8)),
        "ttl": pa.array(np.full(rows, 64, dtype=np.uint8)),
        "ipid": pa.array(zeros16),
        "sport": pa.array(zeros16),
        "dport": pa.array(zeros16),
        "attempt": pa.array(attempt),
        "repeat": pa.array(np.zeros(rows, dtype=bool)),
        "app_valid": pa.array(app_valid),
        "vp": _dictionary(["vp0"], np.zeros(rows, dtype=np.int32)),
    }
    return pa.Table.from_pydict(columns, schema=REPLY_SCHEMA)


def _alive_hosts(rng: np.random.Generator, count: int, density: float) -> np.ndarray:
    """``count`` alive addresses at the study's density: about ``density`` of the scanned space
    alive (500 million of the ~3.7 billion allocated addresses), clustered in /24 blocks (about
    40 alive per alive block). A scaled-down run scans a proportionally smaller range, as a
    shard of the address space would; ``density`` 0 spreads hosts over all of IPv4 (worst case).
    """
    blocks_alive = max(count // 40, 1)
    if density > 0:
        space_blocks = min(1 << 24, 1 << int(np.ceil(np.log2(count / density / 256))))
    else:
        space_blocks = 1 << 24
    base = rng.integers(0, (1 << 24) // space_blocks) * space_blocks
    blocks = base + rng.choice(space_blocks, size=min(blocks_alive, space_blocks), replace=False)
    picked = blocks.astype(np.uint32)[rng.integers(0, blocks.size, size=count)]
    return (picked << np.uint32(8)) | rng.integers(0, 256, size=count, dtype=np.uint32)


def generate(
    directory: str, rows: int, files: int, seed: int, density: float, rows_per_host: float = 8.0
) -> list[str]:
    """Write ``rows`` rows as ``files`` Parquet files; return their paths."""
    rng = np.random.default_rng(seed)
    hosts = _alive_hosts(rng, max(int(rows / rows_per_host), 1), density)
    paths = []
    per_file = -(-rows // files)
    left = rows
    for i in range(files):
        path = os.path.join(directory, f"replies-{i:03d}.parquet")
        with pq.ParquetWriter(path, REPLY_SCHEMA) as writer:
            in_file = min(per_file, left)
            while in_file > 0:
                n = min(CHUNK, in_file)
                writer.write_table(generate_chunk(rng, n, hosts), row_group_size=CHUNK)
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
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="liveness-bench-") as directory:
        start = time.perf_counter()
        paths = generate(
            directory, args.rows, args.files, args.seed, args.density, args.rows_per_host
        )
        print(f"generated {args.rows} rows in {time.perf_counter() - start:.1f}s", file=sys.stderr)
        start = time.perf_counter()
        cpu_start = time.process_time()
        merged, inputs = reduce_files(paths, workers=args.workers)
        reduced = time.perf_counter() - start
        timings: dict[str, float] = {}
        summary = analyze(merged, inputs, timings)
        seconds = time.perf_counter() - start
        cpu_seconds = time.process_time() - cpu_start
    cores = args.workers or 1
    print(
        json.dumps(
            {
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
                "alive": summary["coverage"]["all"],
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            }
        )
    )


if __name__ == "__main__":
    main()
