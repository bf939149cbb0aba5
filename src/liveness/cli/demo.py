"""``liveness demo``: the main job end to end on the built-in testbed.

Brings up the testbed's ``paper`` spec, scans it from its vantage point with the default probe
set (the scanner runs inside the VP's namespace, exactly as a user would run it), analyses the
replies, writes ``report.html`` and ``summary.json``, prints the headline table and takes the
testbed down, also when something fails on the way.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import click

from liveness.cli._common import FiniteFloat, emit_json, json_option, log
from liveness.errors import RunError

__all__ = ["command"]


@click.command(name="demo")
@click.option(
    "-o",
    "--output-dir",
    default="demo-out",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Where replies.parquet, metadata.json, summary.json and report.html go.",
)
@click.option("--spec", default="paper", show_default=True, help="Testbed spec (name or TOML).")
@click.option(
    "-r",
    "--rate",
    default="150000",
    show_default=True,
    help="Probe rate for the demo scan (packets per second).",
)
@click.option(
    "--retransmit-delay",
    default=5.0,
    show_default=True,
    type=FiniteFloat(min=0.0),
    help="Seconds before the retransmission (the study used 20; shorter keeps the demo quick).",
)
@click.option("-c", "--cooldown", default=3.0, show_default=True, type=FiniteFloat(min=0.0))
@click.option(
    "--connectivity",
    is_flag=True,
    help="Instead: monitor the 'connectivity' testbed from six VPs and find its events.",
)
@json_option
def command(
    output_dir: str,
    spec: str,
    rate: str,
    retransmit_delay: float,
    cooldown: float,
    connectivity: bool,
    as_json: bool,
) -> None:
    """Bring up the testbed, scan it with every probe type, analyse, report, tear down."""
    if os.geteuid() != 0:
        raise RunError("the demo builds network namespaces: run it as root (sudo make demo)")
    if connectivity:
        from liveness.cli.demo_connectivity import run_connectivity_demo

        outcome = run_connectivity_demo(Path(output_dir), as_json)
        if as_json:
            emit_json(outcome)
        return
    from liveness.analysis import summarize
    from liveness.analysis.report import write_report
    from liveness.analysis.tables import format_headline
    from liveness.testbed import Testbed, load_spec

    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("replies.parquet", "replies.parquet.checkpoint.json"):
        (out / stale).unlink(missing_ok=True)
    started = time.monotonic()

    def stage(number: int, text: str) -> None:
        log(f"[{number}/5 {time.monotonic() - started:5.1f}s] {text}")

    stage(1, f"bringing up the testbed ({spec})")
    testbed_spec = load_spec(spec)
    with Testbed(testbed_spec) as testbed:
        vp = next(iter(testbed.vps.values()))
        allowlist = out / "allowlist.txt"
        allowlist.write_text("198.18.0.0/15\n")
        stage(2, f"scanning {', '.join(testbed.targets)} from {vp.name} ({vp.src_ip})")
        argv = vp.scan_argv(
            testbed.targets,
            allowlist,
            *("-r", rate, "-o", str(out / "replies.parquet"), "-m", str(out / "metadata.json")),
            *("--retransmit-delay", str(retransmit_delay), "-c", str(cooldown)),
        )
        done = testbed.run(vp.name, argv, stdout=sys.stderr, stderr=None)
        if done.returncode != 0:
            raise RunError(f"the scan failed (exit {done.returncode}); see the lines above")
        truth_path = out / "truth.parquet"
        import pyarrow.parquet as pq

        truth, _schedule = testbed.truth()
        pq.write_table(truth, truth_path)
        stage(3, "taking the testbed down")
    stage(4, "analysing the replies")
    replies = str(out / "replies.parquet")
    summary = summarize([replies])
    metadata = json.loads((out / "metadata.json").read_text())
    summary_path = out / "summary.json"
    summary_path.write_text(json.dumps(summary, indent=1, default=str))
    stage(5, "writing the report")
    report_path = out / "report.html"
    write_report(summary, str(report_path), metadata=metadata)
    elapsed = time.monotonic() - started
    result = {
        "report": str(report_path),
        "summary": str(summary_path),
        "replies": replies,
        "seconds": round(elapsed, 1),
        "packets_sent": metadata.get("packets_sent"),
        "rate_achieved_pps": metadata.get("rate_achieved_pps"),
        "headline": summary.get("headline"),
    }
    if as_json:
        emit_json(result)
    else:
        click.echo(format_headline(summary))
        width = shutil.get_terminal_size().columns
        click.echo("-" * min(width, 72))
        click.echo(f"report:  {report_path}\nsummary: {summary_path}\ntook {elapsed:.0f} s")
