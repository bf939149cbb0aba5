"""``liveness reach core``: the IPv4 and IPv6 cores of a reachability relation, and who could
secede from each."""

from __future__ import annotations

import csv
import functools
import math
from pathlib import Path
from typing import Any

import click

from liveness.cli._common import FiniteFloat, echo, emit_json, json_option
from liveness.errors import InputError
from liveness.reach.blocks import block_af
from liveness.reach.core import FAMILIES, CoreResult, FamilyCores
from liveness.targets.inputs import check_input_file, excerpt

__all__ = ["command", "read_relation_csv", "read_weights_csv", "weights_by_family"]

_TRUE = {"1", "true", "t", "yes", "y"}
_FALSE = {"0", "false", "f", "no", "n"}


def _rows(
    path: str, wanted: tuple[str, ...], optional: tuple[str, ...] = ()
) -> list[tuple[int, list[str]]]:
    """Data rows (line number, fields) of a CSV file with a header naming ``wanted``; columns
    of ``optional`` the header lacks come as empty fields."""
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
            index = [names.index(w) if w in names else -1 for w in (*wanted, *optional)]
            rows = []
            for row in reader:
                if not row or all(not cell.strip() for cell in row):
                    continue
                if len(row) < len(names):
                    raise InputError(
                        f"{path}:{reader.line_num}: expected {len(names)} fields, got {len(row)}"
                    )
                rows.append((reader.line_num, [row[i].strip() if i >= 0 else "" for i in index]))
            return rows
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a text CSV file") from None
    except csv.Error as exc:
        line = reader.line_num if reader is not None else 0
        raise InputError(f"{path}:{line}: not a CSV line ({exc})") from None


@functools.cache
def _name_af(name: str) -> int | None:
    return block_af(name)


def _af(text: str, names: tuple[str, ...], where: str) -> int | None:
    """A row's family: its ``af`` cell, checked against names that are IP blocks or addresses,
    else the family of those names (None: no ``af`` and no IP name)."""
    given: int | None = None
    if text:
        if text not in ("4", "6"):
            raise InputError(f"{where}: af is {excerpt(text)}, expected 4 or 6")
        given = int(text)
    for name in names:
        found = _name_af(name)
        if found is None:
            continue
        if given is not None and found != given:
            raise InputError(f"{where}: {excerpt(name)} is IPv{found}, but the row is IPv{given}")
        given = found
    return given


def read_relation_csv(path: str) -> tuple[list[str], list[str], list[bool], list[int]]:
    """``src_group,dst_group,reachable[,af]`` rows (reachable: 1/0, true/false, yes/no).

    A row's family is its ``af`` (4 or 6), else that of its groups when they are IP blocks or
    addresses (both of one family), else IPv4 (a relation of ASes or VPs without ``af``).
    """
    src, dst, reachable, families = [], [], [], []
    for line, (a, b, flag, af) in _rows(path, ("src_group", "dst_group", "reachable"), ("af",)):
        value = flag.lower()
        if value not in _TRUE | _FALSE:
            raise InputError(
                f"{path}:{line}: reachable is {excerpt(flag)}, expected 1/0 or true/false"
            )
        src.append(a)
        dst.append(b)
        reachable.append(value in _TRUE)
        families.append(_af(af, (a, b), f"{path}:{line}") or 4)
    return src, dst, reachable, families


def read_weights_csv(path: str) -> dict[int | None, dict[str, float]]:
    """``group,weight[,af]`` rows: a group's active addresses, per family (key None: a group
    without ``af`` that is no IP block, to be placed by :func:`weights_by_family`)."""
    weights: dict[int | None, dict[str, float]] = {}
    for line, (group, text, af) in _rows(path, ("group", "weight"), ("af",)):
        try:
            weight = float(text)
        except ValueError:
            raise InputError(f"{path}:{line}: weight {excerpt(text)} is not a number") from None
        if not math.isfinite(weight) or weight < 0:
            raise InputError(f"{path}:{line}: weight {excerpt(text)} must be a finite number >= 0")
        family = weights.setdefault(_af(af, (group,), f"{path}:{line}"), {})
        family[group] = family.get(group, 0.0) + weight
    return weights


def weights_by_family(
    weights: dict[int | None, dict[str, float]],
    src: list[str],
    dst: list[str],
    families: list[int],
    path: str,
) -> dict[int, dict[str, float]]:
    """Place the weights without a family: in the relation's family when it has one, else in
    the family whose rows name the group; a group of both families needs an ``af`` column."""
    placed = {af: dict(weights.get(af, {})) for af in FAMILIES}
    loose = weights.get(None, {})
    present = sorted(set(families)) or [4]
    named: dict[str, set[int]] = {}
    for a, b, af in zip(src, dst, families, strict=True):
        named.setdefault(a, set()).add(af)
        named.setdefault(b, set()).add(af)
    for group, weight in loose.items():
        where = set(present) if len(present) == 1 else named.get(group, set())
        if len(where) != 1:
            why = "both families' rows name it" if where else "no relation row names it"
            raise InputError(
                f"{path}: group {excerpt(group)} has no af and the relation is IPv4 and IPv6 "
                f"({why}): add an af column"
            )
        family = placed[where.pop()]
        family[group] = family.get(group, 0.0) + weight
    return placed


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


def _family_json(
    af: int, graphs: FamilyCores, core: CoreResult, without: CoreResult | None
) -> dict[str, Any]:
    return {
        "af": af,
        "measured": graphs.measured(af),
        "groups": len(graphs.relations[af].groups),
        "has_core": core.has_core,
        "core": core.to_json(),
        "without": without.to_json() if without else None,
        "core_remains": without.has_core if without else None,
    }


@click.command(name="core")
@click.argument("relation", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--weights",
    "weights_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="CSV group,weight[,af] (active addresses per group and family).",
)
@click.option(
    "--without",
    default=None,
    metavar="G,G",
    help="Also answer, per family: would a core remain if these groups were cut off?",
)
@click.option(
    "--threshold",
    type=FiniteFloat(0, 1),
    default=0.5,
    show_default=True,
    help="A core holds strictly more than this share of its family's weight.",
)
@json_option
def command(
    relation: str, weights_path: str, without: str | None, threshold: float, as_json: bool
) -> None:
    """The IPv4 and IPv6 cores of RELATION (CSV src_group,dst_group,reachable[,af]) weighted by
    --weights, each computed on its own family's rows and weights."""
    src, dst, reachable, families = read_relation_csv(relation)
    if Path(relation).stat().st_size and not src:
        raise InputError(f"{relation}: no rows")
    weights = weights_by_family(read_weights_csv(weights_path), src, dst, families, weights_path)
    graphs = FamilyCores.build(src, dst, reachable, families, weights)
    cores = graphs.cores(threshold)
    cut = [g.strip() for g in without.split(",") if g.strip()] if without else []
    if without is not None and not cut:
        raise InputError("--without: give one or more group names separated by commas")
    secession = graphs.cores_without(cut, threshold) if cut else None
    if as_json:
        v4_without = secession[4] if secession else None
        emit_json(
            {
                "core": cores[4].to_json(),  # the IPv4 keys, where they were before IPv6
                "without": v4_without.to_json() if v4_without else None,
                "families": {
                    str(af): _family_json(
                        af, graphs, cores[af], secession[af] if secession else None
                    )
                    for af in FAMILIES
                },
            }
        )
        return
    for af in FAMILIES:
        if not graphs.measured(af):
            echo(f"IPv{af}: no IPv{af} groups in the relation or weights, so no IPv{af} core")
            continue
        echo(_describe(cores[af], f"IPv{af}"))
        if secession:
            gone = secession[af]
            answer = "a core remains" if gone.has_core else "no core would remain"
            cut_here = ", ".join(gone.cut) or "none of them is an IPv" + str(af) + " group"
            echo(_describe(gone, f"IPv{af} without {', '.join(cut)} ({answer}; cut: {cut_here})"))
