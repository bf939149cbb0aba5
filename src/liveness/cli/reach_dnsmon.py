"""``liveness reach dnsmon``: root query loss, all probes and without islands and peninsulas."""

from __future__ import annotations

import click

from liveness.cli._common import echo, emit_json, json_option, log
from liveness.cli.reach_detect import check_table_output, format_rows, table_rows, write_table
from liveness.reach.atlas_islands import AtlasParams
from liveness.reach.dnsmon import dnsmon_loss

__all__ = ["command"]


@click.command(name="dnsmon")
@click.argument("results", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--window",
    type=click.IntRange(min=1),
    default=86_400,
    show_default=True,
    help="Probe windows in seconds (islands and peninsulas are found per window).",
)
@click.option(
    "--min-letters",
    type=click.IntRange(min=1),
    default=6,
    show_default=True,
    help="Fewer letters measured in a window: unmeasurable (kept in every view).",
)
@click.option("--all-targets", is_flag=True, help="Count every destination, not only roots.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the loss table to this .parquet, .json or .jsonl file.",
)
@json_option
def command(
    results: tuple[str, ...],
    window: int,
    min_letters: int,
    all_targets: bool,
    output: str | None,
    as_json: bool,
) -> None:
    """DNS-root query loss per letter and address family from RIPE Atlas RESULTS."""
    from liveness.reach.atlas import read_atlas_queries

    if output:
        check_table_output(output)
    queries = read_atlas_queries(list(results))
    log(f"reach dnsmon: {queries.num_rows} queries")
    loss = dnsmon_loss(
        queries, AtlasParams(window=window, min_letters=min_letters, roots_only=not all_targets)
    )
    if output:
        write_table(loss, output)
    if as_json:
        emit_json({"queries": queries.num_rows, "output": output, "loss": table_rows(loss)})
        return
    shown = loss.select(
        ["target", "af", "queries_all", "loss_all", "loss_no_islands", "loss_no_islands_peninsulas"]
    )
    echo(format_rows(shown, limit=100))
