"""``liveness reach rir``: allocated and active addresses per RIR and country; who could secede."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from liveness.cli._common import check_output_file, echo, emit_json, json_option, log, output_file
from liveness.errors import InputError

__all__ = ["command"]

_LABELS = {"ipv4": "IPv4", "ipv6_64s": "IPv6", "active": "active"}


def _result(files: list[str], census_path: str | None) -> tuple[Any, dict[str, Any]]:
    """The RIR table and the JSON-ready result (totals, majorities, coalitions, rows)."""
    from liveness.reach.rir import read_census, read_delegated, rir_table, secession, table_totals

    delegated = read_delegated(files)
    census = read_census(census_path) if census_path else None
    table = rir_table(delegated, census)
    rows = table.to_pylist()
    majority: dict[str, dict[str, str | None]] = {}
    coalitions: dict[str, dict[str, Any]] = {}
    for level in ("rir", "country"):
        mine = [row for row in rows if row["level"] == level]
        majority[level] = {
            metric: next((row["name"] for row in mine if row[f"majority_{metric}"]), None)
            for metric in _LABELS
            if census is not None or metric != "active"
        }
        coalitions[level] = {
            metric: None if found is None else found.to_dict()
            for metric, found in secession(table, level=level).items()
        }
    result = {
        "files": files,
        "census": census_path,
        "records": delegated.num_rows,
        "totals": table_totals(table),
        "majority": majority,
        "secession": coalitions,
        "rows": rows,
    }
    return table, result


def _format_table(rows: list[dict[str, Any]], with_active: bool) -> str:
    """Rows of one level as aligned text: counts with thousands separators and shares in %."""
    header = ["name", "IPv4 addresses", "share", "IPv6 /32s", "share"]
    if with_active:
        header += ["active IPv4", "share"]
    lines = [header]
    for row in rows:
        line = [
            row["name"] or "-",
            f"{row['ipv4']:,}",
            f"{100 * row['ipv4_share']:.1f}%",
            f"{row['ipv6_64s'] / 2**32:,.2f}",
            f"{100 * row['ipv6_64s_share']:.1f}%",
        ]
        if with_active:
            line += [f"{row['active']:,}", f"{100 * row['active_share']:.1f}%"]
        lines.append(line)
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        )
        for line in lines
    )


def _summary(result: dict[str, Any], top: int) -> str:
    with_active = result["census"] is not None
    rows = result["rows"]
    rirs = [row for row in rows if row["level"] == "rir"]
    countries = [row for row in rows if row["level"] == "country"]
    parts = [
        f"RIRs ({len(rirs)}; {result['records']} records)",
        _format_table(rirs, with_active),
        "",
        f"Countries (top {min(top, len(countries))} of {len(countries)} by allocated IPv4)",
        _format_table(countries[:top], with_active),
        "",
    ]
    if with_active:
        totals = result["totals"]
        parts.append(
            f"active addresses: {totals['active']:,} in the given allocations, "
            f"{totals['active_unmapped']:,} outside them (left out of the shares)"
        )
    for level in ("rir", "country"):
        holders = ", ".join(
            f"{_LABELS[metric]}: {name or 'none'}"
            for metric, name in result["majority"][level].items()
        )
        parts.append(f"majority held by one {level}: {holders}")
    for metric, found in result["secession"]["country"].items():
        if found is None:
            parts.append(f"smallest country coalition ({_LABELS[metric]}): none")
            continue
        members = ", ".join(name or "-" for name in found["members"][:12])
        more = "" if found["size"] <= 12 else f", ... (+{found['size'] - 12})"
        parts.append(
            f"smallest country coalition ({_LABELS[metric]}): {found['size']} "
            f"{'country' if found['size'] == 1 else 'countries'} "
            f"hold {100 * found['share']:.1f}%: {members}{more}"
        )
    return "\n".join(parts)


def _check_output(output: str) -> str:
    """The output's kind (``.parquet`` or ``.json``), refused now if it cannot be written."""
    suffix = Path(output).suffix.lower()
    if suffix not in (".parquet", ".json"):
        raise InputError(f"-o/--output: {output}: use a .parquet or .json file name")
    check_output_file(output, "-o/--output")
    return suffix


def _write(table: Any, result: dict[str, Any], output: str) -> None:
    suffix = _check_output(output)
    with output_file(output, "-o/--output") as temporary:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            pq.write_table(table, temporary)
        else:
            Path(temporary).write_text(json.dumps(result) + "\n")


@click.command(name="rir")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--census",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Active addresses: an IP-set file, a scan's reply Parquet, or a block,active CSV.",
)
@click.option(
    "--top",
    type=click.IntRange(min=1),
    default=15,
    show_default=True,
    help="Countries shown in the terminal table.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the table to this .parquet file, or the whole result to this .json file.",
)
@json_option
def command(
    files: tuple[str, ...], census: str | None, top: int, output: str | None, as_json: bool
) -> None:
    """Allocated IPv4/IPv6 and active IPv4 per RIR and country from RIR delegated FILES.

    Says whether one RIR or country holds a majority (strictly more than half) and the smallest
    coalition of countries that would.
    """
    if output:
        _check_output(output)
    table, result = _result(list(files), census)
    log(f"reach rir: {result['records']} records from {len(files)} file(s)")
    if output:
        _write(table, result, output)
    if as_json:
        emit_json(result)
        return
    echo(_summary(result, top))
