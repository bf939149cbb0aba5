"""Benchmark the reach detectors on a synthetic quarter of Trinocular-format data.

Synthesises, directly as Observation arrays in memory, ~90 days of status-change intervals for
``--blocks`` /24 blocks seen by 6 VPs (11-minute rounds, each VP with its own round phase):
blocks have outages (every VP down) and peninsulas (some VPs down) in random slots, some down
stretches are unknown instead, and one VP is an island for a day (it reaches only one block).
Runs the block and VP detectors and prints one JSON object: ``intervals``, ``seconds``,
``intervals_per_s`` (through the detectors, one pass), ``events`` per kind, the same for the
default of ``liveness reach detect`` (islands found first and masked, a second pass:
``island_mask``), ``peak_rss_mb``; with
``--fsdb-sample K`` also writes K blocks through the Trinocular FSDB writer and reader and
checks that the detectors find the same events on the read-back data. ``--af 6`` makes the
blocks IPv6 /48s (``2001:db8::/48`` names, ``af`` 6) instead of IPv4 /24s: the detectors run on
integer codes, so the two should cost the same per interval. ``--scan-rows N`` also times
:func:`observations_from_scans` on a synthetic Parquet reply file of N rows of that family
(``scan_rows_per_s``), where the families differ (16-byte addresses, /48 keys).
``--write FILE.parquet`` writes the synthesised quarter as an Observation file (the input of
``liveness reach report``); ``--report FILE.html`` renders the report of the island-masked
detection (``--detail N``) and adds ``report``: its ``bytes`` and ``seconds``, and with
``--chromium`` the seconds headless Chromium takes to load and screenshot it.

    python benchmarks/reach.py --blocks 500000
    python benchmarks/reach.py --blocks 500000 --af 6 --scan-rows 2000000
    python benchmarks/reach.py --blocks 1000000 --write quarter.parquet --report q.html --chromium
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from liveness.output import REPLY_SCHEMA, open_writer
from liveness.reach.blocks import block_names6
from liveness.reach.detect import DetectParams, detect, sort_events
from liveness.reach.island_mask import detect_with_island_mask
from liveness.reach.observation import OBSERVATION_SCHEMA
from liveness.reach.report import DETAIL, render_report
from liveness.reach.scans import observations_from_scans
from liveness.reach.trinocular import block_names, read_trinocular, write_trinocular

ROUND = 660
QUARTER_ROUNDS = 90 * 86_400 // ROUND
T0 = 1_600_000_020 - 1_600_000_020 % ROUND
VPS = ("c", "e", "g", "j", "n", "w")
SLOTS = 8
ISLAND_VP = 5


def synthesise(n_blocks: int, seed: int, af: int = 4) -> tuple[pa.Table, np.ndarray[Any, Any]]:
    """The Observation table of a quarter, and the uint32 base address of every block (for
    ``af`` 6 the blocks are the /48s 2001:db8::/48 + i instead, named as the scan reader does)."""
    rng = np.random.default_rng(seed)
    slot_rounds = QUARTER_ROUNDS // SLOTS
    occupied = rng.random((n_blocks, SLOTS)) < 0.25  # ~2 events per block per quarter
    outage = rng.random((n_blocks, SLOTS)) < 0.4  # else a peninsula
    start = rng.integers(1, slot_rounds // 2, (n_blocks, SLOTS)) + np.arange(SLOTS) * slot_rounds
    length = np.minimum(rng.geometric(1 / 12, (n_blocks, SLOTS)), slot_rounds // 2 - 1)
    unknown_instead = rng.random((n_blocks, SLOTS)) < 0.1
    blocks = (np.uint32(0x01000000) + np.arange(n_blocks, dtype=np.uint32) * np.uint32(256)).astype(
        np.uint32
    )
    parts: dict[str, list[np.ndarray[Any, Any]]] = {
        k: [] for k in ("vp", "target", "t0", "t1", "status")
    }
    for v in range(len(VPS)):
        phase = int(rng.integers(0, ROUND))
        affected = occupied & (outage | (rng.random((n_blocks, SLOTS)) < 0.3))
        v_start, v_length, v_unknown, v_outage = start, length, unknown_instead, outage
        if v == ISLAND_VP:
            # In the last slot this VP is an island for a day: it reaches only block 0.
            v_start, v_length = start.copy(), length.copy()
            v_unknown, v_outage = unknown_instead.copy(), outage.copy()
            affected[:, -1] = True
            affected[0, -1] = False
            v_start[:, -1] = (SLOTS - 1) * slot_rounds + 100
            v_length[:, -1] = 86_400 // ROUND
            v_unknown[:, -1] = False
        block_of, slot_of = np.nonzero(affected)  # sorted by block, then slot (= time)
        per_block = np.bincount(block_of, minlength=n_blocks)
        # Boundaries per block: 0, s1, e1, s2, e2, ..., end.
        count = 2 * per_block + 2
        offsets = np.cumsum(count) - count
        times = np.empty(int(count.sum()), np.int64)
        times[offsets] = 0
        times[offsets + count - 1] = QUARTER_ROUNDS
        rank = np.arange(len(block_of)) - (np.cumsum(per_block) - per_block)[block_of]
        s = v_start[block_of, slot_of]
        times[offsets[block_of] + 1 + 2 * rank] = s
        times[offsets[block_of] + 2 + 2 * rank] = s + v_length[block_of, slot_of]
        is_last = np.zeros(len(times), bool)
        is_last[offsets + count - 1] = True
        t0 = times[~is_last]
        t1 = times[np.flatnonzero(~is_last) + 1]
        block = np.repeat(np.arange(n_blocks), count - 1)
        position = np.arange(len(t0)) - np.repeat(offsets - np.arange(n_blocks), count - 1)
        status = np.where(position % 2 == 1, 0, 1).astype(np.int8)  # 0 down, 1 up
        down_rows = np.flatnonzero(status == 0)
        event_of_down = (position[down_rows] - 1) // 2
        event = (np.cumsum(per_block) - per_block)[block[down_rows]] + event_of_down
        where = (block[down_rows], slot_of[event])
        status[down_rows[v_unknown[where] & ~v_outage[where]]] = 2  # peninsulas only
        parts["vp"].append(np.full(len(t0), v, np.int32))
        parts["target"].append(block.astype(np.int32))
        parts["t0"].append(T0 + phase + t0 * ROUND)
        parts["t1"].append(T0 + phase + t1 * ROUND)
        parts["status"].append(status.astype(np.int32))
    column = {k: np.concatenate(v) for k, v in parts.items()}
    n = len(column["t0"])
    if af == 6:
        keys = np.uint64(0x20010DB80000) + np.arange(n_blocks, dtype=np.uint64)
        names: pa.Array[Any] = block_names6(keys, 48)
    else:
        names = block_names(blocks)
    table = pa.Table.from_arrays(
        [
            pa.DictionaryArray.from_arrays(column["vp"], pa.array(VPS)),
            pa.DictionaryArray.from_arrays(column["target"], names),
            pa.array(np.full(n, af, np.uint8)),
            pa.array(column["t0"]),
            pa.array(column["t1"]),
            pa.DictionaryArray.from_arrays(column["status"], pa.array(["down", "up", "unknown"])),
        ],
        schema=OBSERVATION_SCHEMA,
    )
    return table, blocks


def codes(table: pa.Table, name: str) -> np.ndarray[Any, Any]:
    """The dictionary indices of a column (as written by ``synthesise``)."""
    array: Any = table.column(name).combine_chunks()
    return np.asarray(array.indices)


def fsdb_round_trip(
    obs: pa.Table, blocks: np.ndarray[Any, Any], n_blocks: int, params: DetectParams
) -> bool:
    """Write the first ``n_blocks`` blocks as Trinocular files (change rows), read them back,
    and check the detectors find the same events."""
    sample = obs.filter(pa.array(codes(obs, "target") < n_blocks))
    vp, target, status = codes(sample, "vp"), codes(sample, "target"), codes(sample, "status")
    t0 = sample.column("t0").to_numpy()
    t1 = sample.column("t1").to_numpy()
    # One row per status change, plus a row in the last round so the data runs to the end.
    vp_end = np.zeros(len(VPS), np.int64)
    np.maximum.at(vp_end, vp, t1)
    last = t1 == vp_end[vp]
    vp = np.concatenate([vp, vp[last]])
    target = np.concatenate([target, target[last]])
    starts = np.concatenate([t0, t1[last] - ROUND])
    status = np.concatenate([status, status[last]])
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for v, name in enumerate(VPS):
            mine = np.flatnonzero(vp == v)
            mine = mine[np.lexsort((starts[mine], target[mine]))]
            path = Path(tmp) / f"{name}.fsdb.gz"
            rounds = (starts[mine] - T0) // ROUND
            write_trinocular(path, blocks[target[mine]], rounds, starts[mine], status[mine])
            paths.append(str(path))
        back = read_trinocular(paths, vp_names=list(VPS))
    columns = ["kind", "scope", "start", "end", "vps_up", "vps_down"]
    expected = sort_events(detect(sample, params).events).select(columns).to_pylist()
    found = sort_events(detect(back, params).events).select(columns).to_pylist()
    return expected == found


def scan_reader(rows: int, af: int, seed: int) -> dict[str, Any]:
    """Time ``observations_from_scans`` (seen blocks) on one Parquet reply file of ``rows``
    replies from 3 VPs of one family, ~4 addresses per block, 2/3 answered from the target."""
    rng = np.random.default_rng(seed)
    blocks = max(1, rows // 12)
    block = rng.integers(0, blocks, rows).astype(np.uint64)
    host = rng.integers(1, 250, rows).astype(np.uint64)
    alive = rng.random(rows) < 2 / 3
    columns: dict[str, Any] = {
        "ts": np.sort(rng.integers(0, 600, rows)).astype(np.int64) * 1_000_000_000,
        "probe": pa.DictionaryArray.from_arrays(np.zeros(rows, np.int32), pa.array(["icmp_echo"])),
        "reply": pa.DictionaryArray.from_arrays(np.zeros(rows, np.int32), pa.array(["echo_reply"])),
        "vp": pa.DictionaryArray.from_arrays(
            rng.integers(0, 3, rows).astype(np.int32), pa.array(["a", "b", "c"])
        ),
        "af": np.full(rows, af, np.uint8),
    }
    if af == 4:
        target = (np.uint64(0x0A000000) + block * np.uint64(256) + host).astype(np.uint32)
        columns["target"] = target
        columns["responder"] = np.where(alive, target, np.uint32(0x0AFFFF01)).astype(np.uint32)
        columns["target6"] = pa.nulls(rows, pa.binary(16))
        columns["responder6"] = pa.nulls(rows, pa.binary(16))
    else:
        grid = np.zeros((rows, 16), np.uint8)
        grid[:, :8] = (
            ((np.uint64(0x20010DB80000) + block) << np.uint64(16))
            .astype(">u8")
            .view(np.uint8)
            .reshape(-1, 8)
        )
        grid[:, 15] = host.astype(np.uint8)
        router = grid.copy()
        router[:, 14] = 0xFF
        answer = np.where(alive[:, None], grid, router)
        columns["target"] = np.zeros(rows, np.uint32)  # 0 on IPv6 rows of a record batch
        columns["responder"] = np.zeros(rows, np.uint32)
        for name, data in (("target6", grid), ("responder6", answer)):
            columns[name] = pa.FixedSizeBinaryArray.from_buffers(
                pa.binary(16), rows, [None, pa.py_buffer(data.tobytes())]
            )
    arrays = [
        columns[f.name] if f.name in columns else pa.array(np.zeros(rows), f.type)
        for f in REPLY_SCHEMA
    ]
    arrays = [
        a if isinstance(a, pa.Array) else pa.array(a, f.type)
        for a, f in zip(arrays, REPLY_SCHEMA, strict=True)
    ]
    table = pa.Table.from_arrays(arrays, schema=REPLY_SCHEMA)
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "scan.parquet")
        with open_writer(path) as writer:
            writer.write(table)
        began = time.perf_counter()
        obs = observations_from_scans(path, probed_blocks="seen")
        seconds = time.perf_counter() - began
    return {
        "af": af,
        "rows": rows,
        "seconds": round(seconds, 3),
        "scan_rows_per_s": round(rows / seconds),
        "observations": obs.num_rows,
    }


def chromium_seconds(page: Path) -> float | None:
    """Seconds headless Chromium takes to load ``page`` and write a screenshot (None: none)."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        shot = Path(tmp) / "shot.png"
        command = [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={Path(tmp) / 'profile'}",
            f"--screenshot={shot}",
            "--window-size=1200,4000",
            page.resolve().as_uri(),
        ]
        began = time.perf_counter()
        subprocess.run(command, capture_output=True, timeout=300, check=False, cwd=tmp)
        seconds = time.perf_counter() - began
        return round(seconds, 3) if shot.exists() else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=5_000_000, help="number of /24 blocks")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--fsdb-sample", type=int, default=0, help="round-trip K blocks via FSDB")
    parser.add_argument("--af", type=int, choices=(4, 6), default=4, help="address family")
    parser.add_argument("--scan-rows", type=int, default=0, help="also time the scan reader")
    parser.add_argument("--write", metavar="FILE", help="write the quarter as Observation parquet")
    parser.add_argument("--report", metavar="FILE", help="render the reach report to this HTML")
    parser.add_argument("--detail", type=int, default=DETAIL, help="detail sections of --report")
    parser.add_argument("--chromium", action="store_true", help="time --report in Chromium")
    args = parser.parse_args()
    if args.fsdb_sample and args.af == 6:
        parser.error("--fsdb-sample: Trinocular FSDB files hold IPv4 /24s only")
    made = time.perf_counter()
    obs, blocks = synthesise(args.blocks, args.seed, args.af)
    synth_s = time.perf_counter() - made
    print(f"synthesised {obs.num_rows} intervals in {synth_s:.1f} s", file=sys.stderr)
    if args.write:
        pq.write_table(obs, args.write)
        print(f"wrote {args.write}", file=sys.stderr)
    params = DetectParams()
    began = time.perf_counter()
    found = detect(obs, params)
    seconds = time.perf_counter() - began
    kinds = found.events.column("kind").to_pylist()
    result: dict[str, Any] = {
        "af": args.af,
        "blocks": args.blocks,
        "vps": len(VPS),
        "days": 90,
        "intervals": obs.num_rows,
        "seconds": round(seconds, 3),
        "intervals_per_s": round(obs.num_rows / seconds),
        "events": {k: kinds.count(k) for k in ("outage", "peninsula", "island")},
        "synthesis_s": round(synth_s, 3),
    }
    began = time.perf_counter()
    masked = detect_with_island_mask(obs, params)
    masked_s = time.perf_counter() - began
    masked_kinds = masked.events.column("kind").to_pylist()
    result["island_mask"] = {
        "seconds": round(masked_s, 3),
        "intervals_per_s": round(obs.num_rows / masked_s),
        "events": {k: masked_kinds.count(k) for k in ("outage", "peninsula", "island")},
    }
    if args.report:
        began = time.perf_counter()
        page = render_report(obs, masked, detail=args.detail)
        Path(args.report).write_text(page, encoding="utf-8")
        result["report"] = {
            "bytes": len(page.encode()),
            "seconds": round(time.perf_counter() - began, 3),
            "detail": args.detail,
        }
        if args.chromium:
            result["report"]["chromium_s"] = chromium_seconds(Path(args.report))
    if args.fsdb_sample:
        result["fsdb_sample_blocks"] = args.fsdb_sample
        result["fsdb_sample_same_events"] = fsdb_round_trip(obs, blocks, args.fsdb_sample, params)
    if args.scan_rows:
        result["scan_reader"] = scan_reader(args.scan_rows, args.af, args.seed)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
