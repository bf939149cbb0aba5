"""The scan demo (``liveness demo``, ``make demo``): the testbed scanned, analysed and reported.

Brings a testbed spec up, scans every target from its first VP with the study's probe set (a
real ``liveness scan`` inside the VP's namespace), writes the ground truth beside the replies,
takes the testbed down (also on failure), and writes ``summary.json`` and ``report.html``.

A spec with IPv6 hosts (``dualstack``) is scanned over both families in the same scan: its IPv6
population as prefix walks (``::1`` of every /64 of each IPv6 target block), and the summary
and report have an IPv6 section. The spec's connectivity schedule is left out: the scan demo
shows what the hosts answer, the connectivity demo what the events do.

The summary carries ``study_comparison`` (:mod:`liveness.analysis.study`): each of the study's
figures as published, as this scan found it and as the testbed's truth has it, so a reader
sees how far the emulated Internet and the scan of it are from the paper's.
"""

from __future__ import annotations

import ipaddress
import json
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from liveness.errors import RunError
from liveness.safety import BENCHMARK_NET, BENCHMARK_NET6

__all__ = ["run_scan_demo"]

STAGES = 5


def run_scan_demo(
    out: Path,
    *,
    spec: str = "paper",
    rate: str = "150000",
    retransmit_delay: float = 5.0,
    cooldown: float = 3.0,
    progress: Callable[[str], None] = lambda line: None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run the demo into ``out``; returns (the result for ``--json``, the analysis summary)."""
    import pyarrow.parquet as pq

    from liveness.analysis import summarize
    from liveness.analysis.report import write_report
    from liveness.analysis.study import format_comparison
    from liveness.scan.loop import default_checkpoint
    from liveness.testbed import Testbed, load_spec

    out.mkdir(parents=True, exist_ok=True)
    replies = out / "replies.parquet"
    for stale in (replies, Path(f"{default_checkpoint(str(replies))}.json")):
        stale.unlink(missing_ok=True)
    started = time.monotonic()

    def stage(number: int, text: str) -> None:
        progress(f"[{number}/{STAGES} {time.monotonic() - started:5.1f}s] {text}")

    stage(1, f"bringing up the testbed ({spec})")
    with Testbed(replace(load_spec(spec), events=())) as testbed:
        vp = next(iter(testbed.vps.values()))
        allowlist = out / "allowlist.txt"
        allowlist.write_text(f"{BENCHMARK_NET}\n{BENCHMARK_NET6}\n")
        walks = [f"{net}-64" for net in testbed.targets6] if vp.src_ip6 else []
        sources = vp.src_ip + (f", {vp.src_ip6}" if walks else "")
        stage(2, f"scanning {', '.join([*testbed.targets, *walks])} from {vp.name} ({sources})")
        argv = vp.scan_argv(
            [*testbed.targets, *walks],
            allowlist,
            *("-r", rate, "-o", str(replies), "-m", str(out / "metadata.json")),
            *("--retransmit-delay", str(retransmit_delay), "-c", str(cooldown)),
            *(vp.sender_options6() if walks else []),
        )
        done = testbed.run(vp.name, argv, stdout=sys.stderr, stderr=None)
        if done.returncode != 0:
            raise RunError(f"the scan failed (exit {done.returncode}); see the lines above")
        truth, _schedule = testbed.truth()
        pq.write_table(truth, out / "truth.parquet")
        probed = sum(ipaddress.ip_network(net).num_addresses for net in testbed.targets)
        stage(3, "taking the testbed down")
    stage(4, "analysing the replies")
    summary = summarize([str(replies)])
    attempts = 2 if retransmit_delay > 0 else 1  # the scan's default: one retransmission
    summary["study_comparison"] = _study_comparison(summary, truth, probed, attempts)
    metadata = json.loads((out / "metadata.json").read_text())
    summary_path = out / "summary.json"
    summary_path.write_text(json.dumps(summary, indent=1, default=str))
    for line in format_comparison(summary["study_comparison"]).splitlines():
        progress(line)
    stage(5, "writing the report")
    report_path = out / "report.html"
    write_report(summary, str(report_path), metadata=metadata)
    result = {
        "report": str(report_path),
        "summary": str(summary_path),
        "replies": str(replies),
        "seconds": round(time.monotonic() - started, 1),
        "packets_sent": metadata.get("packets_sent"),
        "rate_achieved_pps": metadata.get("rate_achieved_pps"),
        "rate_max_1s_pps": metadata.get("rate_max_1s_pps"),
        "headline": summary.get("headline"),
        "study_comparison": summary["study_comparison"],
    }
    return result, summary


def _study_comparison(
    summary: dict[str, Any], truth: Any, probed: int, attempts: int
) -> dict[str, Any]:
    """The study's figures beside this scan's and the truth's (the truth summarised by the
    same analyses, from its rows turned into first-attempt replies)."""
    from liveness.analysis import summarize_table
    from liveness.analysis.study import compare, retransmission_expected, truth_replies
    from liveness.errors import InputError

    try:
        truth_summary: dict[str, Any] | None = summarize_table(truth_replies(truth), "truth")
    except InputError:  # a truth with no reply at all
        truth_summary = None
    return compare(
        summary,
        truth_summary,
        probed=probed or None,
        truth_retransmission=retransmission_expected(truth, attempts=attempts),
    )
