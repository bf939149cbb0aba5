"""``--app-layer`` follow-ups per second on one core, beside the SYN-ACK classification.

Prints one JSON object. A batch of SYN-ACKs (synthesised from the probes' own frames, to the
study's TCP ports and the random port, IPv4 and IPv6) goes through the reply pipeline and the
follow-up engine (:class:`~liveness.scan.followups.FollowUps`) with a sender that only counts
frames: ``followups_per_s`` is SYN-ACKs answered with their ACK and payload frame per second,
pipeline included; ``closes_per_s`` the closing RSTs built per second (every connection times
out at once); ``synacks_classified_per_s`` the same batch through the pipeline alone, measured
in the same run, and ``followup_cost_ratio`` = followups_per_s / synacks_classified_per_s.
Each figure is the best of ``--repeat`` rounds.

    python benchmarks/app_layer.py [--batch-size 16384] [--repeat 5]
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import platform
import time

import numpy as np

from liveness.probes import parse_probes
from liveness.probes.app_profiles import AppLayer
from liveness.probes.context import ScanContext
from liveness.probes.pipeline import ReplyPipeline
from liveness.probes.synth import synthesize
from liveness.scan.followups import FollowUps

SNAPLEN = 480


def synacks(ctx: ScanContext, probes: list, size: int, six: bool) -> tuple[np.ndarray, np.ndarray]:
    """``size`` SYN-ACKs to the probes' frames for ``size // len(probes)`` targets."""
    per = max(1, size // len(probes))
    if six:
        prefix = np.frombuffer(ipaddress.IPv6Address("2001:2::").packed, np.uint8)
        targets = np.tile(prefix, (per, 1))
        targets[:, 12:] = np.arange(per, dtype=">u4").view(np.uint8).reshape(-1, 4)
    else:
        targets = np.arange(per, dtype=np.uint32) + np.uint32(
            int(ipaddress.IPv4Address("198.18.0.0"))
        )
    parts = []
    for probe in probes:
        sent = probe.build6(ctx, targets, 0) if six else probe.build(ctx, targets, 0)
        parts.append(synthesize(sent, "synack"))
    frames = np.zeros((sum(len(p) for p in parts), SNAPLEN), np.uint8)
    lengths = np.zeros(len(frames), np.uint32)
    row = 0
    for part in parts:
        frames[row : row + len(part), : part.shape[1]] = part
        lengths[row : row + len(part)] = part.shape[1]
        row += len(part)
    return frames, lengths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch-size", type=int, default=16384)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    ctx = ScanContext.from_seed(
        42,
        src_ip=int(ipaddress.IPv4Address("198.18.0.1")),
        src_mac=b"\x02\x00\x00\x00\x00\x01",
        gw_mac=b"\x02\x00\x00\x00\x00\x02",
        src_ip6=ipaddress.IPv6Address("2001:2::1").packed,
        app_layer=AppLayer(),
    )
    probes = parse_probes(
        "tcp_syn:22,tcp_syn:23,tcp_syn:80,tcp_syn:443,tcp_syn:7547,tcp_syn:random"
    )
    result: dict[str, object] = {"benchmark": "app_layer", "python": platform.python_version()}
    for family, six in (("", False), ("_ipv6", True)):
        frames, lengths = synacks(ctx, probes, args.batch_size, six)
        ts = np.zeros(len(frames), np.int64)
        best = {"followups": 0.0, "closes": 0.0, "classified": 0.0}
        for _ in range(args.repeat):
            sent = [0]
            clock = [0.0]

            def count(f: np.ndarray, n: np.ndarray, sent: list[int] = sent) -> None:
                sent[0] += len(f)

            engine = FollowUps(ctx, count, clock=lambda clock=clock: clock[0])
            pipeline = ReplyPipeline(ctx, probes)
            started = time.perf_counter()
            pipeline.run(frames, lengths, ts)
            engine.handle(pipeline.last)
            opened = time.perf_counter()
            clock[0] = 1e9
            engine.expire()
            closed = time.perf_counter()
            assert engine.stats["acks_sent"] == engine.stats["rsts_sent"] == len(frames)
            plain = ReplyPipeline(ctx, probes)
            t0 = time.perf_counter()
            plain.run(frames, lengths, ts)
            t1 = time.perf_counter()
            best["followups"] = max(best["followups"], len(frames) / (opened - started))
            best["closes"] = max(best["closes"], len(frames) / (closed - opened))
            best["classified"] = max(best["classified"], len(frames) / (t1 - t0))
        result[f"followups_per_s{family}"] = round(best["followups"])
        result[f"closes_per_s{family}"] = round(best["closes"])
        result[f"synacks_classified_per_s{family}"] = round(best["classified"])
        result[f"followup_cost_ratio{family}"] = round(best["followups"] / best["classified"], 3)
    result["batch_size"] = args.batch_size
    print(json.dumps(result))


if __name__ == "__main__":
    main()
