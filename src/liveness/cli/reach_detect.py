"""``liveness reach detect``: outages, peninsulas and islands in observation files.

Also home of the small output helpers the other ``reach`` commands share (``write_table``,
``format_rows``, ``read_observation_files``).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
import pyarrow as pa
import pyarrow.parquet as pq

from liveness.cli._common import (
    FiniteFloat,
    check_output_file,
    echo,
    emit_json,
    json_option,
    log,
    output_file,
)
from liveness.errors import InputError
from liveness.reach.atlas_islands import AtlasParams
from liveness.reach.blocks import PREFIX6_RANGE, PREFIX_RANGE
from liveness.reach.detect import (
    Detection,
    DetectParams,
    parse_vp_blocks,
    sort_events,
)
from liveness.reach.detection import detection_summary, is_atlas, run_detection
from liveness.reach.families import cross_family
from liveness.reach.trinocular import ROUND_S

__all__ = [
    "check_table_output",
    "command",
    "format_rows",
    "read_observation_files",
    "table_rows",
    "write_table",
]

KINDS = ("auto", "atlas", "trinocular", "scan", "observation")
JSON_EVENT_LIMIT = 10_000


def read_observation_files(
    paths: Sequence[str], kind: str, prefix: int = 24, prefix6: int = 48
) -> pa.Table:
    """Observation tables from files, through the readers of ``reach.readers`` (scan files:
    IPv4 /``prefix`` and IPv6 /``prefix6`` blocks)."""
    from liveness.reach.readers import read_observations

    table = read_observations(list(paths), kind=kind, block_prefix=prefix, block_prefix6=prefix6)
    if not isinstance(table, pa.Table):
        raise InputError("the observation reader returned no table")
    return table


def check_table_output(
    path: str, extensions: tuple[str, ...] = (".parquet", ".json", ".jsonl")
) -> None:
    """Refuse now an ``-o`` that :func:`write_table` could not write (name or place)."""
    if Path(path).suffix.lower() not in extensions:
        names = (
            f"{', '.join(extensions[:-1])} or {extensions[-1]}"
            if len(extensions) > 1
            else extensions[0]
        )
        raise InputError(f"-o {path}: use a {names} file name")
    check_output_file(path, "-o")


def write_table(table: pa.Table, path: str, extra: dict[str, pa.Table] | None = None) -> None:
    """Write ``table`` as Parquet (.parquet) or JSON (.json: one object; .jsonl: a row a line),
    replacing ``path`` only once complete."""
    check_table_output(path)
    suffix = Path(path).suffix.lower()
    with output_file(path, "-o") as temporary:
        if suffix == ".parquet":
            pq.write_table(table, temporary)
        elif suffix == ".json":
            document: dict[str, Any] = {"rows": table_rows(table)}
            for name, other in (extra or {}).items():
                document[name] = table_rows(other)
            Path(temporary).write_text(json.dumps(document, default=str) + "\n")
        else:
            with open(temporary, "w") as sink:
                for row in table_rows(table):
                    sink.write(json.dumps(row, default=str) + "\n")


def table_rows(table: pa.Table, limit: int | None = None) -> list[dict[str, Any]]:
    """Rows as JSON-ready dictionaries (NaN becomes null)."""
    rows = (table if limit is None else table.slice(0, limit)).to_pylist()
    for row in rows:
        for key, value in row.items():
            if isinstance(value, float) and math.isnan(value):
                row[key] = None
    return rows


def _cell(value: Any, column: str) -> str:
    if column in ("start", "end", "t0", "t1") and isinstance(value, int):
        return dt.datetime.fromtimestamp(value, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or "-"
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.3f}"
    return str(value)


def format_rows(table: pa.Table, limit: int = 40) -> str:
    """A readable fixed-width table of the first ``limit`` rows."""
    columns = table.column_names
    rows = [[_cell(row[c], c) for c in columns] for row in table.slice(0, limit).to_pylist()]
    widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in rows]
    if table.num_rows > limit:
        lines.append(f"... {table.num_rows - limit} more")
    return "\n".join(lines)


_DETECTOR_OPTIONS = [
    click.option("--kind", type=click.Choice(KINDS), default="auto", show_default=True,
                 help="Input format (auto: from the file contents)."),
    click.option("--min-duration", type=click.IntRange(min=0), default=None,
                 help="Drop events shorter than S seconds [blocks: 660, atlas: 0]."),
    click.option("--gap", type=click.IntRange(min=0), default=0, show_default=True,
                 help="Join events of one scope and kind at most S seconds apart."),
    click.option("--round", "round_s", type=click.IntRange(min=0), default=ROUND_S,
                 show_default=True,
                 help="Snap interval boundaries to rounds of S seconds (0: keep seconds)."),
    click.option("--island-share", type=FiniteFloat(0, 1, min_open=True), default=0.5,
                 show_default=True, help="Below this share of active blocks reached: island."),
    click.option("--min-blocks", type=click.IntRange(min=0), default=10, show_default=True,
                 help="A VP measuring fewer blocks is unmeasurable, not an island."),
    click.option("--prefix", type=click.IntRange(*PREFIX_RANGE), default=24, show_default=True,
                 help="Scan input: IPv4 blocks of this length."),
    click.option("--prefix6", type=click.IntRange(*PREFIX6_RANGE), default=48,
                 show_default=True, help="Scan input: IPv6 blocks of this length (/48, /64)."),
    click.option("--vp-blocks", multiple=True, metavar="VP=CIDR",
                 help="A VP's own block (repeatable, one per family for a dual-stack VP): an "
                      "island of that family still reaches it."),
    click.option("--island-mask/--no-island-mask", default=True, show_default=True,
                 help="Blocks: find islands first and leave the island VPs' views out of the "
                      "block detector, so an island does not also show as peninsulas (Atlas "
                      "input has its own island test and is not masked)."),
    click.option("--window", type=click.IntRange(min=1), default=86_400, show_default=True,
                 help="Atlas: window in seconds."),
    click.option("--min-letters", type=click.IntRange(min=1), default=6, show_default=True,
                 help="Atlas: fewer letters measured in a window is unmeasurable."),
    click.option("--all-targets", is_flag=True,
                 help="Atlas: count every destination, not only DNS root letters."),
]  # fmt: skip


def detector_options(function: Any) -> Any:
    """Add the detector options (shared by ``detect`` and ``report``) to a click command."""
    for option in reversed(_DETECTOR_OPTIONS):
        function = option(function)
    return function


def detect_from_options(
    obs: pa.Table, options: dict[str, Any], paths: Sequence[str] = ()
) -> tuple[Detection, bool]:
    """Run the right detector with the parameters from ``detector_options``; and is it Atlas."""
    atlas = is_atlas(obs, options["kind"], paths)
    min_duration = options["min_duration"]
    params = DetectParams(
        round_s=options["round_s"],
        min_duration=ROUND_S if min_duration is None else min_duration,
        gap=options["gap"],
        island_share=options["island_share"],
        min_blocks=options["min_blocks"],
    )
    atlas_params = AtlasParams(
        window=options["window"],
        min_letters=options["min_letters"],
        min_duration=min_duration or 0,
        gap=options["gap"],
        roots_only=not options["all_targets"],
    )
    vp_blocks = parse_vp_blocks(list(options["vp_blocks"]))
    found = run_detection(obs, atlas, params, atlas_params, vp_blocks, options["island_mask"])
    return Detection(sort_events(found.events), found.vp_summary, found.intervals), atlas


@click.command(name="detect")
@click.argument(
    "observations", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False)
)
@detector_options
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write events to this .parquet, .json or .jsonl file.",
)
@json_option
def command(
    observations: tuple[str, ...], output: str | None, as_json: bool, **options: Any
) -> None:
    """Find outages, peninsulas and islands in OBSERVATIONS (Atlas, Trinocular or scan files)."""
    if output:
        check_table_output(output)
    obs = read_observation_files(
        observations, options["kind"], options["prefix"], options["prefix6"]
    )
    log(f"reach detect: {obs.num_rows} intervals")
    found, atlas = detect_from_options(obs, options, observations)
    if output:
        write_table(found.events, output, {"vp_summary": found.vp_summary})
        log(f"reach detect: wrote {found.events.num_rows} events to {output}")
    summary = detection_summary(found)
    cross = cross_family(obs, found)  # each island, and the same VP in the other family
    if as_json:
        emit_json(
            {
                **summary,
                "detector": "atlas" if atlas else "blocks",
                "output": output,
                "events_list": table_rows(found.events, JSON_EVENT_LIMIT),
                "events_truncated": found.events.num_rows > JSON_EVENT_LIMIT,
                "vp_summary": table_rows(found.vp_summary),
                "cross_family": table_rows(cross),
            }
        )
        return
    echo(format_rows(found.events))
    echo()
    echo(format_rows(found.vp_summary))
    if cross.num_rows:
        echo()
        echo(format_rows(cross))
    counts = ", ".join(f"{k}: {v['events']}" for k, v in sorted(summary["by_kind"].items()))
    echo(f"{summary['events']} events ({counts or 'none'}) from {summary['intervals']} intervals")
