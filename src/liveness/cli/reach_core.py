"""``liveness reach core``: the Internet core of a reachability relation, and who could secede."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import click

from liveness.cli._common import FiniteFloat, echo, emit_json, json_option
from liveness.errors import InputError
from liveness.reach.core import CoreResult, Reachability
from liveness.targets.inputs import check_input_file, excerpt

__all__ = ["command", "read_relation_csv", "read_weights_csv"]

_TRUE = {"1", "true", "t", "yes", "y"}
_FALSE = {"0", "false", "f", "no", "n"}


def _rows(path: str, wanted: tuple[str, ...]) -> list[tuple[int, list[str]]]:
    """Data rows (line number, wanted fields) of a CSV file with a header naming ``wanted``."""
    check_input_file(path)
    reader: Any = None
    try:
        with open(path, newline="", encoding="utf-8") as source:
            reader = csv.reader(source)
            header = next(reader, None)
            if header is None:
                raise InputError(f"{path}: empty file, expected a header {','.join(wanted)}")
            names = [h.strip() for h in header]
            missing = [w for w in wanted if w not in names]
            if missing:
                raise InputError(f"{path}:1: header lacks column(s) {', '.join(missing)}")
            index = [names.index(w) for w in wanted]
            rows = []
            for row in reader:
                if not row or all(not cell.strip() for cell in row):
                    continue
                if len(row) < len(names):
                    raise InputError(
                        f"{path}:{reader.line_num}: expected {len(names)} fields, got {len(row)}"
                    )
                rows.append((reader.line_num, [row[i].strip() for i in index]))
            return rows
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a text CSV file") from None
    except csv.Error as exc:
        line = reader.line_num if reader is not None else 0
        raise InputError(f"{path}:{line}: not a CSV line ({exc})") from None


def read_relation_csv(path: str) -> tuple[list[str], list[str], list[bool]]:
    """``src_group,dst_group,reachable`` rows (reachable: 1/0, true/false, yes/no)."""
    src, dst, reachable = [], [], []
    for line, (a, b, flag) in _rows(path, ("src_group", "dst_group", "reachable")):
        value = flag.lower()
        if value not in _TRUE | _FALSE:
            raise InputError(
                f"{path}:{line}: reachable is {excerpt(flag)}, expected 1/0 or true/false"
            )
        src.append(a)
        dst.append(b)
        reachable.append(value in _TRUE)
    return src, dst, reachable


def read_weights_csv(path: str) -> dict[str, float]:
    """``group,weight`` rows: a group's active addresses."""
    weights: dict[str, float] = {}
    for line, (group, text) in _rows(path, ("group", "weight")):
        try:
            weight = float(text)
        except ValueError:
            raise InputError(f"{path}:{line}: weight {excerpt(text)} is not a number") from None
        if not math.isfinite(weight) or weight < 0:
            raise InputError(f"{path}:{line}: weight {excerpt(text)} must be a finite number >= 0")
        weights[group] = weights.get(group, 0.0) + weight
    return weights


def _describe(result: CoreResult, title: str) -> str:
    share = 100 * result.largest_share
    lines = [
        f"{title}: "
        + (
            f"core of {len(result.core)} group(s), {share:.1f}% of weight"
            if result.has_core
            else f"no core (largest component {share:.1f}%)"
        )
    ]
    if result.has_core:
        lines.append(
            "  core: " + ", ".join(result.core[:20]) + (" ..." if len(result.core) > 20 else "")
        )
    lines.append(f"  islands ({len(result.islands)}): " + (", ".join(result.islands[:20]) or "-"))
    pairs = [f"{a}->{b}" for a, b in result.peninsulas[:20]]
    lines.append(f"  peninsulas ({len(result.peninsulas)}): " + (", ".join(pairs) or "-"))
    return "\n".join(lines)


@click.command(name="core")
@click.argument("relation", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--weights",
    "weights_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="CSV group,weight (active addresses per group).",
)
@click.option(
    "--without",
    default=None,
    metavar="G,G",
    help="Also answer: would a core remain if these groups were cut off?",
)
@click.option(
    "--threshold",
    type=FiniteFloat(0, 1),
    default=0.5,
    show_default=True,
    help="The core holds strictly more than this share of the weight.",
)
@json_option
def command(
    relation: str, weights_path: str, without: str | None, threshold: float, as_json: bool
) -> None:
    """The Internet core of RELATION (CSV src_group,dst_group,reachable) weighted by --weights."""
    src, dst, reachable = read_relation_csv(relation)
    if Path(relation).stat().st_size and not src:
        raise InputError(f"{relation}: no rows")
    graph = Reachability.build(src, dst, reachable, read_weights_csv(weights_path))
    result = graph.core(threshold)
    cut = [g.strip() for g in without.split(",") if g.strip()] if without else []
    if without is not None and not cut:
        raise InputError("--without: give one or more group names separated by commas")
    secession = graph.core_without(cut, threshold) if cut else None
    if as_json:
        emit_json({"core": result.to_json(), "without": secession.to_json() if secession else None})
        return
    echo(_describe(result, "relation"))
    if secession:
        echo(_describe(secession, f"without {', '.join(cut)}"))
