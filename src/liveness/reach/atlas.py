"""RIPE Atlas DNS results, read through ripe.atlas.sagan into queries and observations.

Input: a JSON array of results or JSON lines (one result a line), gzip/bzip2/xz compressed or
not. Each result is parsed by sagan's ``DnsResult``; a result holds one query or, for a result
set (``resultset``), several (one per resolver of the probe). Per query:

- ``vp`` is the probe id (a string); ``target`` the root letter as ``k.root`` when the
  measurement id is a built-in root measurement or the destination is a root address (see
  :mod:`liveness.reach.roots`), else the destination address.
- ``ok`` is true when the query got an answer (a ``result`` and no ``error``); an error, a
  timeout or a ``"result": null`` (no answer recorded) is a failed query. A ``result`` or
  ``resultset`` of another JSON type is a malformed line (InputError naming file and line).

:func:`read_atlas_queries` returns one row per query (for loss rates per letter and family).
:func:`read_atlas` turns queries into observations: per (probe, target, family), each query
holds until the probe's next query of that target, at most ``window_s`` seconds; consecutive
queries with the same outcome merge into one interval (up if answered, down if not). Queries of
one probe and target at the same second count as one, up if any was answered.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
from ripe.atlas.sagan.base import ParsingDict
from ripe.atlas.sagan.dns import DnsResult

from liveness.errors import InputError
from liveness.output.schema import STRING_DICT
from liveness.reach.compressed import read_bytes
from liveness.reach.roots import builtin_measurement, letter_from_address, root_target
from liveness.reach.runs import DOWN, UP, merge_runs, observation_table
from liveness.targets.inputs import excerpt

__all__ = [
    "QUERY_SCHEMA",
    "WINDOW_S",
    "iter_results",
    "observations_from_queries",
    "read_atlas",
    "read_atlas_queries",
]

WINDOW_S = 1800  # how long one query stands for at most: the built-in root measurements' period

_DICT = STRING_DICT

QUERY_SCHEMA = pa.schema(
    [
        pa.field("vp", _DICT, nullable=False),
        pa.field("target", _DICT, nullable=False),
        pa.field("af", pa.uint8(), nullable=False),
        pa.field("proto", _DICT, nullable=False),
        pa.field("ts", pa.int64(), nullable=False),
        pa.field("ok", pa.bool_(), nullable=False),
        pa.field("msm_id", pa.int64(), nullable=False),
    ],
    metadata={"liveness.schema": "atlas-query/1"},
)

PathLike = str | os.PathLike[str]


def iter_results(path: PathLike) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, result) for each result of a JSON array or JSON-lines file.

    ``where`` names the file and line (``path:12``) or array element (``path[3]``).
    """
    text = read_bytes(path).decode("utf-8", "replace")
    if text.lstrip().startswith("["):
        try:
            results = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from exc
        except (ValueError, RecursionError) as exc:
            raise InputError(f"{path}: invalid JSON: {_json_problem(exc)}") from None
        for index, result in enumerate(results):
            if not isinstance(result, dict):
                raise InputError(f"{path}: array element {index} is not a JSON object")
            yield f"{path}[{index}]", result
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            result = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{number}: invalid JSON: {exc.msg}") from exc
        except (ValueError, RecursionError) as exc:
            raise InputError(f"{path}:{number}: invalid JSON: {_json_problem(exc)}") from None
        if not isinstance(result, dict):
            raise InputError(f"{path}:{number}: not a JSON object")
        yield f"{path}:{number}", result


def _json_problem(exc: Exception) -> str:
    """What Python's json refused beyond syntax: a number of too many digits, deep nesting."""
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return "a number with too many digits" if "digits" in str(exc) else str(exc)[:100]


def _target_of(msm_id: int, destination: str | None) -> str:
    builtin = builtin_measurement(msm_id)
    if builtin is not None:
        return root_target(builtin.letter)
    if destination:
        letter = letter_from_address(destination)
        return root_target(letter) if letter else destination.strip()
    return f"msm:{msm_id}"


def _family(af: int | None, msm_id: int, destination: str | None) -> int:
    builtin = builtin_measurement(msm_id)
    if builtin is not None:
        return builtin.af
    if af in (4, 6):
        return int(af)
    return 6 if destination and ":" in destination else 4


_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}


def _json_type(value: Any) -> str:
    return _JSON_TYPES.get(type(value), "a number")


def _answer_checked(entry: dict[str, Any], where: str) -> dict[str, Any]:
    """``entry`` without a ``"result": null`` (no answer: a failed query); InputError if its
    ``result`` is not an object."""
    if "result" not in entry:
        return entry
    if entry["result"] is None:
        return {key: value for key, value in entry.items() if key != "result"}
    if not isinstance(entry["result"], dict):
        raise InputError(f'{where}: "result" is {_json_type(entry["result"])}, expected an object')
    return entry


def _shape_checked(raw: dict[str, Any], where: str) -> dict[str, Any]:
    """The result with its ``result`` and ``resultset`` entries checked (see the docstring)."""
    checked = _answer_checked(raw, where)
    if "resultset" in raw:
        entries = raw["resultset"]
        if not isinstance(entries, list):
            raise InputError(f'{where}: "resultset" is {_json_type(entries)}, expected an array')
        fixed = []
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict):
                raise InputError(
                    f"{where}: resultset[{index}] is {_json_type(entry)}, not an object"
                )
            fixed.append(_answer_checked(entry, f"{where}: resultset[{index}]"))
        checked = {**checked, "resultset": fixed}
    return checked


def _queries_of(raw: dict[str, Any], where: str) -> Iterator[tuple[str, str, int, str, int, bool]]:
    """(vp, target, af, proto, ts, ok) for each query of one result."""
    raw = _shape_checked(raw, where)
    if raw.get("type", "dns") != "dns":
        raise InputError(f"{where}: not a DNS result (type {excerpt(raw.get('type'))})")
    for key in ("prb_id", "msm_id", "timestamp"):
        if not isinstance(raw.get(key), int):
            raise InputError(f"{where}: result lacks an integer {key!r}")
    if "fw" not in raw:
        raise InputError(f"{where}: result lacks 'fw' (the probe's firmware), as Atlas writes it")
    try:
        result = DnsResult(
            raw,
            parse_buf=False,
            on_error=ParsingDict.ACTION_IGNORE,
            on_malformation=ParsingDict.ACTION_IGNORE,
        )
    except Exception as exc:  # sagan raises assorted errors on broken input
        detail = str(exc) if len(str(exc)) <= 200 else f"{str(exc)[:200]}…"
        raise InputError(f"{where}: not a readable Atlas DNS result: {detail}") from exc
    vp = str(result.probe_id)
    msm_id = int(raw["msm_id"])
    ts = int(raw["timestamp"])
    builtin = builtin_measurement(msm_id)
    default_proto = builtin.proto if builtin else "UDP"
    if not result.responses:  # a single query that failed before any answer (error, timeout)
        destination = raw.get("dst_addr") or raw.get("dst_name")
        af = _family(raw.get("af"), msm_id, destination)
        proto = str(raw.get("proto") or default_proto).upper()
        yield vp, _target_of(msm_id, destination), af, proto, ts, False
        return
    in_set = "resultset" in raw
    for response in result.responses:
        entry = response.raw_data
        if in_set:
            ok = isinstance(entry.get("result"), dict) and "error" not in entry
            when = entry.get("time", ts)
        else:  # sagan hands the inner "result" object itself as the response
            ok = "error" not in raw
            when = ts
        destination = response.destination_address
        af = _family(response.af, msm_id, destination)
        proto = str(response.protocol or default_proto)
        when = int(when) if isinstance(when, int | float) else ts
        yield vp, _target_of(msm_id, destination), af, proto, when, bool(ok)


def read_atlas_queries(paths: Sequence[PathLike] | PathLike) -> pa.Table:
    """One row per DNS query (QUERY_SCHEMA: vp, target, af, proto, ts, ok, msm_id)."""
    path_list: list[PathLike] = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    rows: list[tuple[str, str, int, str, int, bool]] = []
    msm_ids: list[int] = []
    for path in path_list:
        for where, raw in iter_results(path):
            for query in _queries_of(raw, where):
                rows.append(query)
                msm_ids.append(int(raw["msm_id"]))
    columns: list[Sequence[Any]] = list(zip(*rows, strict=True)) if rows else [[]] * 6
    return pa.Table.from_arrays(
        [
            pa.array(columns[0], type=pa.string()).dictionary_encode(),
            pa.array(columns[1], type=pa.string()).dictionary_encode(),
            pa.array(columns[2], type=pa.uint8()),
            pa.array(columns[3], type=pa.string()).dictionary_encode(),
            pa.array(columns[4], type=pa.int64()),
            pa.array(columns[5], type=pa.bool_()),
            pa.array(msm_ids, type=pa.int64()),
        ],
        schema=QUERY_SCHEMA,
    )


def read_atlas(paths: Sequence[PathLike] | PathLike, *, window_s: int = WINDOW_S) -> pa.Table:
    """Atlas DNS results as an OBSERVATION_SCHEMA table (see the module docstring)."""
    return observations_from_queries(read_atlas_queries(paths), window_s=window_s)


def observations_from_queries(queries: pa.Table, *, window_s: int = WINDOW_S) -> pa.Table:
    """Observations from a :func:`read_atlas_queries` table (so one parse serves both)."""
    queries = queries.unify_dictionaries()
    vp: Any = queries["vp"].combine_chunks()
    target: Any = queries["target"].combine_chunks()
    vp_index = vp.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    target_index = target.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    is_v6 = (queries["af"].to_numpy() == 6).astype(np.int64)
    series = (vp_index * max(len(target.dictionary), 1) + target_index) * 2 + is_v6
    status = np.where(queries["ok"].to_numpy(zero_copy_only=False), UP, DOWN)
    runs = merge_runs(series, queries["ts"].to_numpy(), status, hold_s=window_s, max_gap_s=window_s)
    pair, v6 = np.divmod(runs.series, 2)
    run_vp, run_target = np.divmod(pair, max(len(target.dictionary), 1))
    return observation_table(
        run_vp,
        vp.dictionary,
        run_target,
        target.dictionary,
        np.where(v6 == 1, 6, 4),
        runs.t0,
        runs.t1,
        runs.status,
    )
