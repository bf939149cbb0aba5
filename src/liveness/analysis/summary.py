"""``summarize``: reduce reply files (locally or on Dask), merge, and run every analysis.

Each file is reduced on its own (:func:`~.partial.reduce_file`); a bad file is recorded in
``inputs`` with its one-line error and the others are still analysed. ``summarize`` raises
InputError only when no file could be read. On Dask (``workers`` for a local cluster,
``dask_address`` for an existing scheduler) only the per-file reduction runs remotely; partials
are merged by union on the caller's side (order-independent), so the summary is identical to a
local run.

The families are analysed apart, with the same analyses: the IPv4 results are the summary's
top-level keys (where readers have always found them) and also its ``ipv4`` section, the IPv6
results its ``ipv6`` section (blocks are ``/prefix6`` prefixes there, and ``prefixes`` gives the
picture of :mod:`.prefixes6` in place of the address map); ``families`` says how many rows each
had and what its blocks are. Each section also has ``app_layer`` (:mod:`.app_layer`, the TCP
application layer of ``--app-layer`` scans; ``{"scanned": false}`` without one), which is not
in :data:`ANALYSES`, so summaries written before it still load.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from liveness.analysis import analyses
from liveness.analysis.addressmap import address_cells, address_map_of
from liveness.analysis.app_layer import app_layer
from liveness.analysis.partial import (
    Reducer,
    Reduction,
    ReplyPartial,
    Window,
    reduce_file,
    release_free_memory,
)
from liveness.analysis.prefixes6 import prefix_picture
from liveness.analysis.sets import DEFAULT_PREFIX6, ReplySets
from liveness.analysis.source import BATCH_ROWS, NEEDED_COLUMNS, split_families
from liveness.errors import InputError, LivenessError, RunError
from liveness.output.address_book6 import AddressBook6

__all__ = [
    "ANALYSES",
    "AnalysisParts",
    "Summary",
    "analysis_parts",
    "analyze",
    "reduce_files",
    "summarize",
    "summarize_table",
    "summary_from_parts",
]

#: A summary: a JSON-able dict, one key per analysis plus ``inputs``.
Summary = dict[str, Any]

#: The analysis keys of a summary, in the issue's order (1..9).
ANALYSES: tuple[str, ...] = (
    "coverage",
    "reply_kinds",
    "icmp_errors",
    "transport",
    "tarpits",
    "conditional",
    "application",
    "retransmission",
    "headline",
)


def _reduce_or_error(
    path: str,
    window: Window | None = None,
    counters: bool = True,
    book6: AddressBook6 | None = None,
) -> Reduction | str:
    """Reduce one file, or return its one-line error (so one bad file cannot sink the rest)."""
    try:
        return reduce_file(path, window, counters, book6)
    except LivenessError as exc:
        return str(exc)


def _map_on_dask(
    paths: list[str],
    workers: int | None,
    dask_address: str | None,
    window: Window | None = None,
    counters: bool = True,
) -> Iterator[tuple[int, Reduction | str]]:
    """Run :func:`_reduce_or_error` over ``paths`` on Dask; yield (index, result) as they finish."""
    distributed: Any = importlib.import_module("dask.distributed")  # untyped: keep it Any
    cluster: Any = None
    try:
        if dask_address is not None:
            client = distributed.Client(dask_address, timeout="20s")
        else:
            cluster = distributed.LocalCluster(
                n_workers=workers, threads_per_worker=1, dashboard_address=None
            )
            client = distributed.Client(cluster)
    except (OSError, TimeoutError) as exc:
        raise RunError(f"--dask {dask_address}: cannot reach the Dask scheduler: {exc}") from exc
    try:
        futures = client.map(_reduce_or_error, paths, window=window, counters=counters, pure=False)
        index = {future.key: i for i, future in enumerate(futures)}
        for future, result in distributed.as_completed(futures, with_results=True):
            yield index[future.key], result
            future.release()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def reduce_files(
    paths: Sequence[str],
    *,
    workers: int | None = None,
    dask_address: str | None = None,
    window: Window | None = None,
    counters: bool = True,
) -> tuple[Reduction, Summary]:
    """Reduce every file and merge the good ones; return the merged reduction and ``inputs``.

    Partials are merged as they arrive (union is order-independent), so memory holds the
    merged bitmaps plus those of the files in flight, not one set of bitmaps per file.
    ``window`` and ``counters`` are passed to each file's :class:`~.partial.Reducer`.
    """
    if workers is not None and workers < 1:
        raise InputError(f"--workers {workers}: must be at least 1")
    paths = [str(p) for p in paths]
    if not paths:
        raise InputError("no reply file given")
    if workers is None and dask_address is None:
        book6 = AddressBook6()  # one numbering for every file: their partials union as they are
        results: Iterable[tuple[int, Reduction | str]] = (
            (i, _reduce_or_error(p, window, counters, book6)) for i, p in enumerate(paths)
        )
    else:
        results = _map_on_dask(paths, workers, dask_address, window, counters)
    files: list[dict[str, Any]] = [{"path": p, "rows": 0, "error": None} for p in paths]
    merged: Reduction | None = None
    for i, result in results:
        if isinstance(result, str):
            files[i]["error"] = result
            continue
        files[i]["rows"] = result.rows
        if merged is None:
            merged = result
        else:
            merged.merge(result)
            del result
            if merged.bitmap_bytes() > SLICE_BYTES:  # large enough for the heap to matter
                release_free_memory()
    inputs = {
        "files": files,
        "rows": sum(f["rows"] for f in files),
        "errors": sum(f["error"] is not None for f in files),
    }
    if merged is None:
        raise InputError("; ".join(f["error"] for f in files))
    return merged, inputs


#: Partials with more bitmap bytes than this are analysed in address slices of about this size,
#: so the sets the analyses build (and cache) stay small however large the scan.
SLICE_BYTES = 1 << 27


def _slices(partial: ReplyPartial) -> Iterator[ReplyPartial]:
    """``partial`` itself, or its disjoint address slices (ranges aligned on /16, as roaring's
    containers) when it holds more than :data:`SLICE_BYTES` of bitmaps."""
    count = -(-partial.bitmap_bytes() // SLICE_BYTES)
    low, high = partial.address_span()
    if count <= 1 or high < low:
        yield partial
        return
    first, last = low >> 16, high >> 16
    step = -(-(last - first + 1) // count)
    for i, start in enumerate(range(first, last + 1, step)):
        stop = min(start + step, last + 1)
        yield partial.restricted(start << 16, stop << 16, counters=i == 0)


@dataclass
class AnalysisParts:
    """The analyses of some addresses, before their shares are divided out (see
    :func:`~.analyses.combine`): what address slices and passes add up."""

    results: dict[str, Any] = field(default_factory=dict)
    geometry: dict[str, Any] = field(default_factory=dict)
    cells: npt.NDArray[np.uint8] | None = None

    def add(self, other: AnalysisParts) -> None:
        """Add the parts of other (disjoint) addresses."""
        for name, result in other.results.items():
            mine = self.results.get(name)
            self.results[name] = result if mine is None else analyses.combine(mine, result)
        self.geometry = other.geometry or self.geometry
        if other.cells is not None:
            self.cells = other.cells if self.cells is None else np.maximum(self.cells, other.cells)


#: The analyses in the summary's order; each gets the slice's sets and its earlier results.
_STEPS: list[tuple[str, Callable[[ReplySets, dict[str, Any]], Any]]] = [
    ("coverage", lambda sets, _: analyses.coverage(sets)),
    ("reply_kinds", lambda sets, _: analyses.reply_kinds(sets)),
    ("icmp_errors", lambda sets, _: analyses.icmp_errors(sets)),
    ("transport", lambda sets, _: analyses.transport(sets)),
    ("tarpits", lambda sets, _: analyses.tarpits(sets)),
    ("conditional", lambda sets, _: analyses.conditional(sets)),
    ("application", lambda sets, _: analyses.application(sets)),
    ("retransmission", lambda sets, _: analyses.retransmission(sets)),
    ("headline", lambda sets, found: analyses.headline(sets, found["transport"])),
    ("app_layer", lambda sets, _: app_layer(sets)),
    ("probes", lambda sets, _: analyses.per_probe(sets)),
]


def analysis_parts(
    partial: ReplyPartial,
    timings: dict[str, float] | None = None,
    prefix6: int = DEFAULT_PREFIX6,
) -> AnalysisParts:
    """Every analysis on ``partial``, one address slice at a time (:func:`_slices`);
    ``timings`` (if given) gets seconds per analysis added. An IPv6 partial is analysed whole,
    with blocks of ``prefix6`` bits, and gets the prefix picture in place of the address map."""
    if partial.af == 6:
        return _analysis_parts6(partial, timings, prefix6)
    parts = AnalysisParts()
    sliced = partial.bitmap_bytes() > SLICE_BYTES
    for piece in _slices(partial):
        sets = ReplySets(piece)
        found: dict[str, Any] = {}
        for name, run in _STEPS:
            start = time.perf_counter()
            found[name] = run(sets, found)
            if timings is not None:
                timings[name] = timings.get(name, 0.0) + time.perf_counter() - start
        start = time.perf_counter()
        geometry, cells = address_cells(sets)
        if timings is not None:
            timings["address_map"] = timings.get("address_map", 0.0) + time.perf_counter() - start
        parts.add(AnalysisParts(found, geometry, cells))
        del sets, piece
        if sliced:
            release_free_memory()
    return parts


def _analysis_parts6(
    partial: ReplyPartial, timings: dict[str, float] | None, prefix6: int
) -> AnalysisParts:
    sets = ReplySets(partial, prefix6=prefix6)
    found: dict[str, Any] = {}
    for name, run in [*_STEPS, ("prefixes", lambda sets, _: prefix_picture(sets))]:
        start = time.perf_counter()
        found[name] = run(sets, found)
        if timings is not None:
            key = f"{name}_ipv6"
            timings[key] = timings.get(key, 0.0) + time.perf_counter() - start
    return AnalysisParts(found)


def _section(parts: AnalysisParts) -> Summary:
    return {name: analyses.finish(result) for name, result in parts.results.items()}


def summary_from_parts(
    parts: AnalysisParts,
    inputs: Summary,
    unknown_probes: set[str],
    parts6: AnalysisParts | None = None,
    rows: tuple[int, int] | None = None,
    prefix6: int = DEFAULT_PREFIX6,
) -> Summary:
    """The summary of analysis parts (shares divided out), for ``inputs``: the IPv4 parts at
    the top level and as ``ipv4``, the IPv6 parts (if any) as ``ipv6``; ``rows`` the rows of
    each family (default: all IPv4)."""
    summary: Summary = {"inputs": inputs}
    ipv4 = _section(parts)
    summary.update(ipv4)
    summary["address_map"] = address_map_of(parts.geometry, parts.cells)
    summary["unknown_probes"] = sorted(unknown_probes)
    rows4, rows6 = rows if rows is not None else (inputs.get("rows", 0), 0)
    summary["families"] = {
        "ipv4": {"rows": rows4, "block": "/24"},
        "ipv6": {"rows": rows6, "block": f"/{prefix6}"},
    }
    summary["ipv4"] = ipv4
    summary["ipv6"] = _section(parts6) if parts6 is not None and rows6 else None
    return summary


def analyze(
    reduction: Reduction | ReplyPartial,
    inputs: Summary,
    timings: dict[str, float] | None = None,
    prefix6: int = DEFAULT_PREFIX6,
) -> Summary:
    """Run every analysis on a merged reduction (or an IPv4 partial); ``timings`` (if given)
    gets seconds per analysis.

    A large IPv4 partial is analysed one address slice at a time (:func:`_slices`); the
    slices' results add up (:func:`~.analyses.combine`) to those of the whole.
    """
    if isinstance(reduction, ReplyPartial):
        reduction = Reduction(ipv4=reduction)
    ipv4, ipv6 = reduction.ipv4, reduction.ipv6
    return summary_from_parts(
        analysis_parts(ipv4, timings),
        inputs,
        ipv4.unknown_probes | ipv6.unknown_probes,
        analysis_parts(ipv6, timings, prefix6) if ipv6.rows else None,
        (ipv4.rows, ipv6.rows),
        prefix6,
    )


def summarize(
    paths: Sequence[str],
    *,
    workers: int | None = None,
    dask_address: str | None = None,
    passes: int = 1,
    prefix6: int = DEFAULT_PREFIX6,
) -> Summary:
    """Reduce ``paths`` (streamed, optionally on Dask), merge by union, run analyses 1..9.

    Returns a JSON-able dict with one key per analysis (:data:`ANALYSES`), ``probes``
    (per-probe counts), ``address_map`` (per-/24 highest layer) and ``inputs`` (files, rows,
    errors per file). Raises InputError when no file could be read.

    ``passes`` > 1 reads the files that many times, each time keeping the addresses of one
    window of the IPv4 space only (:meth:`~.partial.Window.split`), so memory holds about
    1/passes of the bitmaps; the windows' analyses add up to the same summary. (The IPv6 rows
    are reduced and analysed in the first pass.) ``prefix6`` is the length of IPv6 blocks.
    """
    if passes < 1 or passes > 1 << 16:
        raise InputError(f"passes {passes}: must be between 1 and 65536")
    if not 1 <= prefix6 <= 64:
        raise InputError(f"--prefix6 {prefix6}: must be between 1 and 64")
    windows: list[Window | None] = [None] if passes == 1 else list(Window.split(passes))
    parts = AnalysisParts()
    parts6: AnalysisParts | None = None
    inputs: Summary = {}
    unknown: set[str] = set()
    rows = (0, 0)
    for i, window in enumerate(windows):
        merged, found = reduce_files(
            paths, workers=workers, dask_address=dask_address, window=window, counters=i == 0
        )
        if i == 0:
            inputs = found
            rows = (merged.ipv4.rows, merged.ipv6.rows)
            unknown = merged.ipv4.unknown_probes | merged.ipv6.unknown_probes
            if merged.ipv6.rows:
                parts6 = analysis_parts(merged.ipv6, prefix6=prefix6)
        parts.add(analysis_parts(merged.ipv4))
        del merged
    return summary_from_parts(parts, inputs, unknown, parts6, rows, prefix6)


def summarize_table(table: pa.Table, name: str = "<table>") -> Summary:
    """Like :func:`summarize` for reply rows already in memory (``name`` stands for the file).

    The table needs the columns of :data:`~liveness.analysis.source.NEEDED_COLUMNS`.
    """
    missing = [c for c in NEEDED_COLUMNS if c not in table.column_names]
    if missing:
        raise InputError(f"{name}: not a reply table (missing column(s): {', '.join(missing)})")
    reducers = Reducer(name), Reducer(name, af=6)
    for batch in table.to_batches(max_chunksize=BATCH_ROWS):
        split = split_families(batch, name)
        reducers[0].add(split.ipv4)
        if split.ipv6 is not None:
            reducers[1].add(split.ipv6)
    reduction = Reduction(reducers[0].finish(), reducers[1].finish())
    if reduction.rows == 0:
        raise InputError(f"{name}: empty scan (no reply rows)")
    files = [{"path": name, "rows": reduction.rows, "error": None}]
    return analyze(reduction, {"files": files, "rows": reduction.rows, "errors": 0})
