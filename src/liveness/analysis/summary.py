"""``summarize``: reduce reply files (locally or on Dask), merge, and run every analysis.

Each file is reduced on its own (:func:`~.partial.reduce_file`); a bad file is recorded in
``inputs`` with its one-line error and the others are still analysed. ``summarize`` raises
InputError only when no file could be read. On Dask (``workers`` for a local cluster,
``dask_address`` for an existing scheduler) only the per-file reduction runs remotely; partials
are merged by union on the caller's side (order-independent), so the summary is identical to a
local run.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import pyarrow as pa

from liveness.analysis import analyses
from liveness.analysis.addressmap import address_map
from liveness.analysis.partial import Reducer, ReplyPartial, reduce_file
from liveness.analysis.sets import ReplySets
from liveness.analysis.source import BATCH_ROWS, NEEDED_COLUMNS
from liveness.errors import InputError, LivenessError, RunError

__all__ = ["ANALYSES", "Summary", "analyze", "reduce_files", "summarize", "summarize_table"]

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


def _reduce_or_error(path: str) -> ReplyPartial | str:
    """Reduce one file, or return its one-line error (so one bad file cannot sink the rest)."""
    try:
        return reduce_file(path)
    except LivenessError as exc:
        return str(exc)


def _map_on_dask(
    paths: list[str], workers: int | None, dask_address: str | None
) -> Iterator[tuple[int, ReplyPartial | str]]:
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
        futures = client.map(_reduce_or_error, paths, pure=False)
        index = {future.key: i for i, future in enumerate(futures)}
        for future, result in distributed.as_completed(futures, with_results=True):
            yield index[future.key], result
            future.release()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def reduce_files(
    paths: Sequence[str], *, workers: int | None = None, dask_address: str | None = None
) -> tuple[ReplyPartial, Summary]:
    """Reduce every file and merge the good ones; return the merged partial and ``inputs``.

    Partials are merged as they arrive (union is order-independent), so memory holds the
    merged bitmaps plus those of the files in flight, not one set of bitmaps per file.
    """
    if workers is not None and workers < 1:
        raise InputError(f"--workers {workers}: must be at least 1")
    paths = [str(p) for p in paths]
    if not paths:
        raise InputError("no reply file given")
    if workers is None and dask_address is None:
        results: Iterable[tuple[int, ReplyPartial | str]] = (
            (i, _reduce_or_error(p)) for i, p in enumerate(paths)
        )
    else:
        results = _map_on_dask(paths, workers, dask_address)
    files: list[dict[str, Any]] = [{"path": p, "rows": 0, "error": None} for p in paths]
    merged: ReplyPartial | None = None
    for i, result in results:
        if isinstance(result, str):
            files[i]["error"] = result
            continue
        files[i]["rows"] = result.rows
        if merged is None:
            merged = result
        else:
            merged.merge(result)
    inputs = {
        "files": files,
        "rows": sum(f["rows"] for f in files),
        "errors": sum(f["error"] is not None for f in files),
    }
    if merged is None:
        raise InputError("; ".join(f["error"] for f in files))
    return merged, inputs


def analyze(
    partial: ReplyPartial, inputs: Summary, timings: dict[str, float] | None = None
) -> Summary:
    """Run every analysis on a merged partial; ``timings`` (if given) gets seconds per analysis."""
    sets = ReplySets(partial)
    summary: Summary = {"inputs": inputs}

    def timed(name: str, run: Callable[[], Any]) -> None:
        start = time.perf_counter()
        summary[name] = run()
        if timings is not None:
            timings[name] = time.perf_counter() - start

    timed("coverage", lambda: analyses.coverage(sets))
    timed("reply_kinds", lambda: analyses.reply_kinds(sets))
    timed("icmp_errors", lambda: analyses.icmp_errors(sets))
    timed("transport", lambda: analyses.transport(sets))
    timed("tarpits", lambda: analyses.tarpits(sets))
    timed("conditional", lambda: analyses.conditional(sets))
    timed("application", lambda: analyses.application(sets))
    timed("retransmission", lambda: analyses.retransmission(sets))
    timed("headline", lambda: analyses.headline(sets, summary["transport"]))
    timed("probes", lambda: analyses.per_probe(sets))
    timed("address_map", lambda: address_map(sets))
    summary["unknown_probes"] = sorted(partial.unknown_probes)
    return summary


def summarize(
    paths: Sequence[str], *, workers: int | None = None, dask_address: str | None = None
) -> Summary:
    """Reduce ``paths`` (streamed, optionally on Dask), merge by union, run analyses 1..9.

    Returns a JSON-able dict with one key per analysis (:data:`ANALYSES`), ``probes``
    (per-probe counts), ``address_map`` (per-/24 highest layer) and ``inputs`` (files, rows,
    errors per file). Raises InputError when no file could be read.
    """
    merged, inputs = reduce_files(paths, workers=workers, dask_address=dask_address)
    return analyze(merged, inputs)


def summarize_table(table: pa.Table, name: str = "<table>") -> Summary:
    """Like :func:`summarize` for reply rows already in memory (``name`` stands for the file).

    The table needs the columns of :data:`~liveness.analysis.source.NEEDED_COLUMNS`.
    """
    missing = [c for c in NEEDED_COLUMNS if c not in table.column_names]
    if missing:
        raise InputError(f"{name}: not a reply table (missing column(s): {', '.join(missing)})")
    reducer = Reducer(name)
    for batch in table.select(list(NEEDED_COLUMNS)).to_batches(max_chunksize=BATCH_ROWS):
        reducer.add(batch)
    partial = reducer.finish()
    if partial.rows == 0:
        raise InputError(f"{name}: empty scan (no reply rows)")
    files = [{"path": name, "rows": partial.rows, "error": None}]
    return analyze(partial, {"files": files, "rows": partial.rows, "errors": 0})
