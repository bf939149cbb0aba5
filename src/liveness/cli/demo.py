"""``liveness demo``: the main job end to end on the built-in testbed (flags only; the demos
themselves are :func:`liveness.demo.run_scan_demo` and :func:`liveness.demo.run_connectivity_demo`).
"""

from __future__ import annotations

import os
import shutil
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
@click.option(
    "--spec",
    default=None,
    help="Testbed spec (name or TOML) [default: paper; with --connectivity: connectivity, "
    "or dualstack for both families].",
)
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
    help="Instead: monitor the testbed (--spec) from all its VPs and find its events.",
)
@json_option
def command(
    output_dir: str,
    spec: str | None,
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
        from liveness.demo.connectivity import DEMO_SPEC, outcome_lines, run_connectivity_demo

        outcome = run_connectivity_demo(
            Path(output_dir), progress=log, spec=spec if spec is not None else DEMO_SPEC
        )
        if as_json:
            emit_json(outcome)
        else:
            click.echo("\n".join(outcome_lines(outcome)))
        return
    from liveness.analysis.tables import format_headline
    from liveness.demo.scan_demo import run_scan_demo

    result, summary = run_scan_demo(
        Path(output_dir),
        spec=spec if spec is not None else "paper",
        rate=rate,
        retransmit_delay=retransmit_delay,
        cooldown=cooldown,
        progress=log,
    )
    if as_json:
        emit_json(result)
        return
    click.echo(format_headline(summary))
    click.echo("-" * min(shutil.get_terminal_size().columns, 72))
    click.echo(f"report:  {result['report']}\nsummary: {result['summary']}")
    click.echo(f"took {result['seconds']:.0f} s")
