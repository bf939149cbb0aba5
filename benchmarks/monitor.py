"""Benchmark of ``liveness monitor``'s algorithm: rounds over N blocks against the model.

Builds N synthetic /24 blocks (|E(b)| uniform in [--min-addresses, --max-addresses], response
probability per block uniform in [0.2, 1.0], ~1% of blocks in an outage that moves every few
rounds), runs --rounds rounds of Trinocular probing with the in-process responder model and
streams the FSDB and Observation outputs to a temporary directory. Prints one JSON object:
``blocks_per_round_one_core`` is the number of blocks one core keeps up with in one round
(``round_s``, 660 s), extrapolated linearly from the measured seconds per round per block,
counting the monitor and its output but not the model (which stands in for the network);
``..._with_model`` counts the model too. ``probes_per_block_hour`` and
``max_probes_in_window`` are measured over the run (the bound is 20 per block per hour);
the rates compare the decisions with the model's truth (a block-round is an outage when the
model has the block down during that round). ``--family 6`` runs the same over IPv6 /``--block6``
blocks (2001:db8::/32, the model only: no packet is sent), E(b) scattered over each block, so
the two families' costs per block can be compared.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from liveness.monitor import (
    FsdbStream,
    ModelProber,
    Monitor,
    ObservationStream,
    TrinocularParams,
)
from liveness.monitor.census import Census6, census6_from_snapshots


class TimedProber:
    """Wraps the model and adds up the time spent in it (to leave it out of the monitor's)."""

    def __init__(self, inner: ModelProber) -> None:
        self.inner = inner
        self.seconds = 0.0
        self.probes = 0

    def probe(self, addresses: NDArray[Any]) -> NDArray[np.bool_]:
        began = time.perf_counter()
        answers = self.inner.probe(addresses)
        self.seconds += time.perf_counter() - began
        self.probes += addresses.shape[0]
        return answers


def _census6(
    indptr: NDArray[np.int64],
    sizes: NDArray[np.int64],
    availability: NDArray[np.float64],
    block6: int,
    rng: np.random.Generator,
) -> Census6:
    """IPv6 /block6 blocks under 2001:db8::/32, E(b) of the given sizes at random addresses
    inside each block (sorted, as a census gives them)."""
    count = sizes.size
    keys = (np.uint64(0x20010DB8) << np.uint64(32)) + (
        np.arange(count, dtype=np.uint64) << np.uint64(64 - block6)
    )
    span = np.uint64((1 << (64 - block6)) - 1)
    total = int(indptr[-1])
    hi = np.repeat(keys, sizes) | (rng.integers(0, 1 << 62, total, dtype=np.uint64) & span)
    lo = rng.integers(0, 1 << 63, total, dtype=np.uint64)
    words = np.empty((total, 2), dtype=">u8")
    words[:, 0], words[:, 1] = hi, lo
    census = census6_from_snapshots([words.view(np.uint8).reshape(-1, 16)], block6)
    return replace(census, availability=availability[: census.blocks.size])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--min-addresses", type=int, default=16)
    parser.add_argument("--max-addresses", type=int, default=64)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--family", type=int, choices=(4, 6), default=4)
    parser.add_argument("--block6", type=int, default=48)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    params = TrinocularParams()
    count = args.blocks
    bases = ((10 << 24) + 256 * np.arange(count, dtype=np.int64)).astype(np.uint32)
    sizes = rng.integers(args.min_addresses, args.max_addresses + 1, count)
    indptr = np.zeros(count + 1, dtype=np.int64)
    np.cumsum(sizes, out=indptr[1:])
    # sorted distinct hosts per block, as a census gives them: a random start and even gaps
    gap = 256 // sizes
    first = rng.integers(0, 256 - (sizes - 1) * gap)
    step = np.arange(indptr[-1]) - np.repeat(indptr[:-1], sizes)
    hosts = (np.repeat(first, sizes) + np.repeat(gap, sizes) * step).astype(np.uint8)
    availability = rng.uniform(0.2, 1.0, count)

    began = time.perf_counter()
    if args.family == 6:
        census6 = _census6(indptr, sizes, availability, args.block6, rng)
        bases = census6.blocks  # type: ignore[assignment]
        monitor = Monitor.from_census6(census6, vp="bench", params=params)
        prober = ModelProber(bases, availability, seed=args.seed, prefix6=args.block6)
    else:
        monitor = Monitor(
            bases, (indptr, hosts), vp="bench", params=params, availability=availability
        )
        prober = ModelProber(bases, availability, seed=args.seed)
    setup_s = time.perf_counter() - began
    model = TimedProber(prober)
    outage = rng.choice(count, max(1, count // 100), replace=False)

    core_s = output_s = 0.0
    tally = dict.fromkeys(("up", "outage", "false_down", "found_down", "unknown"), 0)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        with (
            FsdbStream(out / "bench.fsdb") as fsdb,
            ObservationStream(out / "bench.parquet", vp="bench", round_s=params.round_s) as obs,
        ):
            for round_no in range(args.rounds):
                if round_no % 4 == 2:
                    model.inner.set_up(bases[outage], False)
                elif round_no % 4 == 0:
                    model.inner.set_up(bases[outage], True)
                began = time.perf_counter()
                result = monitor.run_round(model, round_no, int(round_no * params.round_s))
                core_s += time.perf_counter() - began
                began = time.perf_counter()
                fsdb.write(result)
                obs.write(result)
                output_s += time.perf_counter() - began
                truth = model.inner.is_up(result.block)
                tally["up"] += int(truth.sum())
                tally["outage"] += int((~truth).sum())
                tally["false_down"] += int(((result.status == 0) & truth).sum())
                tally["found_down"] += int(((result.status == 0) & ~truth).sum())
                tally["unknown"] += int((result.status == 2).sum())
            began = time.perf_counter()
        output_s += time.perf_counter() - began
        fsdb_bytes = (out / "bench.fsdb").stat().st_size

    measured = monitor.blocks.size
    per_round_monitor = (core_s - model.seconds + output_s) / args.rounds
    per_round_all = (core_s + output_s) / args.rounds
    result_json = {
        "family": args.family,
        "block_prefix": 24 if args.family == 4 else args.block6,
        "blocks": count,
        "measurable_blocks": int(measured),
        "addresses": int(indptr[-1]),
        "rounds": args.rounds,
        "round_s": params.round_s,
        "setup_s": round(setup_s, 3),
        "seconds_per_round_core": round((core_s - model.seconds) / args.rounds, 4),
        "seconds_per_round_model": round(model.seconds / args.rounds, 4),
        "seconds_per_round_output": round(output_s / args.rounds, 4),
        "blocks_per_round_one_core": int(params.round_s * measured / per_round_monitor),
        "blocks_per_round_one_core_with_model": int(params.round_s * measured / per_round_all),
        "probes_per_block_hour": round(monitor.probes_per_block_hour(), 3),
        "max_probes_in_window": monitor.max_probes_in_window,
        "probe_bound_per_hour": params.max_probes_per_window,
        "probes_per_block_round": round(model.probes / measured / args.rounds, 3),
        "false_down_rate": round(tally["false_down"] / max(tally["up"], 1), 6),
        "outage_found_same_round_rate": round(tally["found_down"] / max(tally["outage"], 1), 4),
        "unknown_rate": round(tally["unknown"] / max(tally["up"] + tally["outage"], 1), 6),
        "fsdb_bytes_per_round": fsdb_bytes // args.rounds,
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
    }
    sys.stdout.write(json.dumps(result_json) + "\n")


if __name__ == "__main__":
    main()
