"""One entry point for every observation source: ``read_observations(paths, kind="auto")``.

Kinds: ``atlas`` (RIPE Atlas DNS JSON), ``trinocular`` (FSDB outage files), ``scan`` (Parquet
reply records of ``liveness scan``), ``observation`` (Parquet already in OBSERVATION_SCHEMA).
With ``auto`` each file's kind is told from its content: Parquet by its schema (observation or
reply records), text by its start (``#fsdb``; JSON lines with a ``responder`` field or CSV
with a ``responder`` column are reply records, other JSON is Atlas). Files of several kinds may be
mixed; the result is one table with the observations of all of them, of both address families.
Scans are read with ``probed_blocks="seen"`` (:mod:`liveness.reach.scans`): the scan files given
together are taken to have probed the same targets, so a block that answered one VP and not
another is down for the other; their blocks are IPv4 /``block_prefix`` and IPv6
/``block_prefix6``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from liveness.errors import InputError
from liveness.reach.atlas import read_atlas
from liveness.reach.compressed import read_head
from liveness.reach.observation import OBSERVATION_SCHEMA
from liveness.reach.scans import observations_from_scans
from liveness.reach.trinocular import read_trinocular
from liveness.targets.inputs import excerpt

__all__ = ["KINDS", "detect_kind", "read_observations"]

KINDS: tuple[str, ...] = ("atlas", "trinocular", "scan", "observation")

PathLike = str | os.PathLike[str]


def detect_kind(path: PathLike) -> str:
    """The kind of one input file, from its content."""
    head = read_head(path)
    if head.startswith(b"PAR1"):
        try:
            schema = pq.read_schema(str(path))
        except pa.ArrowInvalid as exc:
            raise InputError(f"{path}: unreadable Parquet: {exc}") from exc
        if {"t0", "t1", "status", "vp", "target"} <= set(schema.names):
            return "observation"
        if {"ts", "target", "responder"} <= set(schema.names):
            return "scan"
        raise InputError(f"{path}: Parquet file is neither observations nor reply records")
    head = head.lstrip()
    first_line = head.split(b"\n", 1)[0]
    if head.startswith(b"#fsdb"):
        return "trinocular"
    if head.startswith(b"["):
        return "atlas"
    if head.startswith(b"{"):
        return "scan" if b'"responder"' in first_line else "atlas"
    if b"responder" in first_line:
        return "scan"  # CSV reply records
    raise InputError(f"{path}: cannot tell the kind of file (not Parquet, FSDB or JSON)")


def _read_parquet_observations(path: PathLike) -> pa.Table:
    try:
        table = pq.read_table(str(path))
        return table.select(OBSERVATION_SCHEMA.names).cast(OBSERVATION_SCHEMA)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, KeyError) as exc:
        raise InputError(f"{path}: not an observation table: {exc}") from exc


def read_observations(
    paths: Sequence[PathLike] | PathLike,
    kind: str = "auto",
    *,
    block_prefix: int = 24,
    block_prefix6: int = 48,
) -> pa.Table:
    """Observations (OBSERVATION_SCHEMA) from files of one kind, or of any kinds with ``auto``.

    ``block_prefix`` and ``block_prefix6``: the IPv4 and IPv6 block lengths of scan files.
    """
    if kind != "auto" and kind not in KINDS:
        raise InputError(f"--kind: {excerpt(kind)} is not one of auto, {', '.join(KINDS)}")
    path_list: list[PathLike] = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    groups: dict[str, list[PathLike]] = {}
    for path in path_list:
        groups.setdefault(detect_kind(path) if kind == "auto" else kind, []).append(path)
    tables: list[pa.Table] = []
    for found, members in groups.items():
        if found == "atlas":
            tables.append(read_atlas(members))
        elif found == "trinocular":
            tables.append(read_trinocular(members))
        elif found == "scan":
            tables.append(
                observations_from_scans(
                    members,
                    probed_blocks="seen",
                    block_prefix=block_prefix,
                    block_prefix6=block_prefix6,
                )
            )
        else:
            tables.extend(_read_parquet_observations(path) for path in members)
    if not tables:
        return OBSERVATION_SCHEMA.empty_table()
    return pa.concat_tables(tables).unify_dictionaries().combine_chunks()
