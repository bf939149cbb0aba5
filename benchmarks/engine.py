"""Scan engine speed on one core: target permutation, frame building, reply classification.

Prints one JSON object. ``addresses_permuted_per_s``: addresses out of
``iter_target_batches`` over the whole (default-blocklisted) IPv4 space;
``frames_built_per_s``: frames of every probe of the default set, validation tokens included;
``replies_classified_per_s``: a shuffled mix of every reply kind through ``ReplyClassifier``.
The ``_ipv6`` figures are the same for IPv6 targets in 2001:2::/48 (frames and replies of the
same probes), with their ratio to the IPv4 figure measured in the same run.
Each figure is the best of ``--repeat`` timed rounds of ``--batches`` batches.

    python benchmarks/engine.py [--batch-size 65536] [--batches 8] [--repeat 3]
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import platform
import time
from collections.abc import Callable

import numpy as np

from liveness.probes import DEFAULT_PROBES, Probe, ReplyClassifier, parse_probes
from liveness.probes.context import ScanContext
from liveness.probes.synth import synthesize
from liveness.targets import Permutation, Shard, TargetSpace, iter_target_batches

SNAPLEN = 128
SNAPLEN6 = 192  # an ICMPv6 error quoting a DNS probe is 141 bytes (the live ring keeps 192)


def best_rate(work: Callable[[], int], repeat: int) -> float:
    """Items per second of the fastest of ``repeat`` rounds (``work`` returns its item count)."""
    best = 0.0
    for _ in range(repeat):
        started = time.perf_counter()
        items = work()
        best = max(best, items / (time.perf_counter() - started))
    return best


def reply_mix(
    ctx: ScanContext, probes: list[Probe], targets: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """``size`` shuffled replies: for every probe its direct replies and an ICMP error."""
    router = int(ipaddress.IPv4Address("198.18.255.1"))
    frames: list[np.ndarray] = []
    lengths: list[np.ndarray] = []
    six = targets.ndim == 2
    if six:
        router = int.from_bytes(ipaddress.IPv6Address("2001:2:ff::1").packed, "big")
    for probe in probes:
        sent = probe.build6(ctx, targets, 0) if six else probe.build(ctx, targets, 0)
        kinds = {1: ["echo_reply"], 6: ["synack", "rst", "rst_ack"], 17: ["udp"]}[probe.protocol]
        for kind in [*kinds, "icmp_error"]:
            error_type = 3 if six else 11  # time exceeded in either family
            reply = synthesize(sent, kind, responder=router, icmp_type=error_type, icmp_code=0)
            padded = np.zeros((len(reply), SNAPLEN6 if six else SNAPLEN), dtype=np.uint8)
            padded[:, : reply.shape[1]] = reply
            frames.append(padded)
            lengths.append(np.full(len(reply), reply.shape[1]))
    pick = np.random.default_rng(1).integers(0, sum(len(f) for f in frames), size)
    return np.concatenate(frames)[pick], np.concatenate(lengths)[pick]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch-size", type=int, default=65536)
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    size, batches = args.batch_size, args.batches

    space = TargetSpace.from_options(["0.0.0.0/0"])
    perm = Permutation(space.size, 42)
    shard = Shard(space.size)

    def permute() -> int:
        count = 0
        for index, (_, addresses) in enumerate(iter_target_batches(space, perm, shard, size)):
            count += len(addresses)
            if index + 1 == batches:
                break
        return count

    ctx = ScanContext.from_seed(
        42,
        src_ip=int(ipaddress.IPv4Address("198.18.0.1")),
        src_mac=b"\x02\x00\x00\x00\x00\x01",
        gw_mac=b"\x02\x00\x00\x00\x00\x02",
        src_ip6=ipaddress.IPv6Address("2001:2::1").packed,
    )
    probes = parse_probes(DEFAULT_PROBES)
    walk = iter_target_batches(space, perm, shard, size)
    target_batches = [addresses for _, (_, addresses) in zip(range(batches), walk, strict=False)]

    def build() -> int:
        count = 0
        for targets in target_batches:
            for probe in probes:
                count += len(probe.build(ctx, targets, 0))
        return count

    # IPv6 targets: the IPv4 batches' addresses as the low 32 bits of 2001:2::/96.
    prefix = np.frombuffer(ipaddress.IPv6Address("2001:2::").packed, np.uint8)
    batches6 = []
    for targets in target_batches:
        rows = np.tile(prefix, (len(targets), 1))
        rows[:, 12:] = targets.astype(">u4").view(np.uint8).reshape(-1, 4)
        batches6.append(rows)

    def build6() -> int:
        count = 0
        for targets in batches6:
            for probe in probes:
                count += len(probe.build6(ctx, targets, 0))
        return count

    frames, lengths = reply_mix(ctx, probes, target_batches[0][: max(1, size // 8)], size)
    ts_ns = np.zeros(len(frames), dtype=np.int64)
    classifier = ReplyClassifier(ctx, probes)
    frames6, lengths6 = reply_mix(ctx, probes, batches6[0][: max(1, size // 8)], size)
    classifier6 = ReplyClassifier(ctx, probes)

    def classify() -> int:
        count = 0
        for _ in range(batches):
            count += classifier.classify(frames, lengths, ts_ns).num_rows
        return count

    def classify6() -> int:
        count = 0
        for _ in range(batches):
            count += classifier6.classify(frames6, lengths6, ts_ns).num_rows
        return count

    # warm up: templates, and the allocator (after the first large frees, glibc serves big
    # arrays from the heap instead of fresh page-faulting mmaps, as in a long-running scan)
    for _ in range(3):
        build()
        build6()
        classify()
        classify6()
        permute()
    built = best_rate(build, args.repeat)
    built6 = best_rate(build6, args.repeat)
    classified = best_rate(classify, args.repeat)
    classified6 = best_rate(classify6, args.repeat)
    result = {
        "addresses_permuted_per_s": round(best_rate(permute, args.repeat)),
        "frames_built_per_s": round(built),
        "replies_classified_per_s": round(classified),
        "replies_valid_fraction": classifier.counters["valid"]
        / max(1, classifier.counters["frames"]),
        "frames_built_per_s_ipv6": round(built6),
        "replies_classified_per_s_ipv6": round(classified6),
        "replies_valid_fraction_ipv6": classifier6.counters["valid"]
        / max(1, classifier6.counters["frames"]),
        "ipv6_to_ipv4_build_ratio": round(built6 / built, 3),
        "ipv6_to_ipv4_classify_ratio": round(classified6 / classified, 3),
        "batch_size": size,
        "batches": batches,
        "repeat": args.repeat,
        "probes": len(probes),
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
