"""``liveness reach report``: a self-contained HTML report of connectivity events."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import click
import pyarrow as pa

from liveness.cli._common import check_output_file, emit_json, json_option, log, output_file
from liveness.cli.reach_detect import (
    detect_from_options,
    detector_options,
    read_observation_files,
)
from liveness.errors import InputError
from liveness.reach.atlas_islands import AtlasParams
from liveness.reach.detection import detection_summary
from liveness.reach.dnsmon import dnsmon_loss
from liveness.reach.report import DETAIL, render_report

__all__ = ["MAX_DETAIL", "command", "rir_table_or_none"]

MAX_DETAIL = 500
"""The most detail sections ``--detail`` accepts (one figure each: the page stays small)."""


def rir_table_or_none(paths: list[str], census: str | None) -> pa.Table | None:
    """The RIR table (``liveness.reach.rir.rir_table``) of delegated files, if any are given."""
    if not paths:
        if census:
            raise InputError("--census needs --rir files")
        return None
    try:
        rir = importlib.import_module("liveness.reach.rir")
    except ImportError:
        log("reach report: liveness.reach.rir is not available; no RIR table")
        return None
    census_data = rir.read_census(census) if census else None
    table = rir.rir_table(rir.read_delegated(paths), census_data)
    if not isinstance(table, pa.Table):
        raise InputError("--rir: rir_table did not return a table")
    return table


@click.command(name="report")
@click.argument(
    "observations", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False)
)
@click.option(
    "-o", "--output", required=True, type=click.Path(dir_okay=False), help="The HTML file to write."
)
@detector_options
@click.option(
    "--atlas",
    "atlas_paths",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="RIPE Atlas results for the DNSmon bars (default: OBSERVATIONS when they are Atlas).",
)
@click.option(
    "--rir",
    "rir_paths",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="RIR delegated-extended files for the who-could-secede table.",
)
@click.option(
    "--census",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Active-address census (scan alive set or CSV block,active) for the RIR table.",
)
@click.option(
    "--detail",
    type=click.IntRange(min=0, max=MAX_DETAIL),
    default=DETAIL,
    show_default=True,
    help="Detail sections for at most this many largest events (blocks x duration).",
)
@click.option("--timelines", type=click.IntRange(min=0, max=MAX_DETAIL), hidden=True)
@click.option("--title", default="liveness reach report", show_default=True)
@json_option
def command(
    observations: tuple[str, ...],
    output: str,
    atlas_paths: tuple[str, ...],
    rir_paths: tuple[str, ...],
    census: str | None,
    detail: int,
    timelines: int | None,
    title: str,
    as_json: bool,
    **options: Any,
) -> None:
    """Write an HTML report of outages, peninsulas, islands, DNSmon loss and RIR shares.

    An overview per address family first, then detail for the --detail largest events
    (--timelines is its former name)."""
    if Path(output).suffix.lower() not in (".html", ".htm"):
        raise InputError(f"-o {output}: the report is HTML; use a .html file name")
    check_output_file(output, "-o")
    obs = read_observation_files(
        observations, options["kind"], options["prefix"], options["prefix6"]
    )
    found, atlas = detect_from_options(obs, options, observations)
    dnsmon = None
    sources = list(atlas_paths) or (list(observations) if atlas else [])
    if sources:
        from liveness.reach.atlas import read_atlas_queries

        params = AtlasParams(
            window=options["window"],
            min_letters=options["min_letters"],
            roots_only=not options["all_targets"],
        )
        dnsmon = dnsmon_loss(read_atlas_queries(sources), params)
    rir = rir_table_or_none(list(rir_paths), census)
    detail = detail if timelines is None else timelines
    page = render_report(obs, found, dnsmon=dnsmon, rir=rir, title=title, detail=detail)
    with output_file(output, "-o") as temporary:
        Path(temporary).write_text(page, encoding="utf-8")
    log(f"reach report: wrote {output} ({len(page)} bytes)")
    if as_json:
        emit_json(
            {
                **detection_summary(found),
                "output": output,
                "bytes": len(page),
                "detail": page.count('<section class="detail"'),
                "dnsmon": dnsmon is not None,
                "rir": rir is not None,
            }
        )
