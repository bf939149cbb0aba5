"""The fast paths against plain references on random data (each reference is the spec).

- bitmaps built from sorted arrays equal ``BitMap(values)``;
- the vectorised reduction equals a row-by-row classification with the taxonomy's helpers
  (the application rows of ``--app-layer`` in application classes, never in the others);
- the set algebra's shortcuts (shared, normalised cache keys) equal plain class unions;
- analysing a partial in address slices, or the files in address passes, gives the summary of
  the whole.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyroaring import BitMap

from liveness.analysis import summary as summary_module
from liveness.analysis.bitmaps import from_sorted, from_unsorted, sorted_unique
from liveness.analysis.partial import Reducer, ReplyPartial, Window, merge_partials
from liveness.analysis.sets import ALL_PROBES_AND_UNKNOWN, ReplySets
from liveness.analysis.summary import analyze, summarize
from liveness.analysis.taxonomy import (
    ALL_PROBES,
    APP_ACK,
    APP_ACTIVE,
    APP_DATA_OTHER,
    APP_DATA_VALID,
    APP_PROTO_ALIASES,
    APP_PROTO_BASE,
    APP_PROTOS,
    APP_RST,
    ERR_ROUTER,
    ERR_TARGET,
    ERROR_KINDS,
    KIND_ECHO,
    KIND_RST,
    KIND_SYNACK,
    KIND_UDP_INVALID,
    KIND_UDP_VALID,
    N_CLASSES,
    N_ERROR_CLASSES,
    N_ERROR_KINDS,
    REPLY_KINDS,
    UNKNOWN_PROBE,
    app_class_of,
    class_of,
    error_class_of,
)
from liveness.output.schema import APP_CATEGORIES, REPLY_CATEGORIES

PROBE_NAMES = [*ALL_PROBES, "tcp_syn:8080"]  # the last one is outside the default set
# app_proto values: the scanner's, an early alias, and one nobody knows
APP_PROTO_NAMES = ["", "http", "tls", "ssh", "telnet", "text", "binary", "banner", "gopher"]


@pytest.mark.parametrize("span", [1 << 12, 1 << 16, 1 << 20, 1 << 32])
def test_from_sorted_equals_bitmap_of_the_values(span: int) -> None:
    rng = np.random.default_rng(span % 1000)
    for size in (0, 1, 4096, 4097, 20_000, 200_000):  # array, bitset and mixed containers
        values = rng.integers(0, span, size=size, dtype=np.uint64).astype(np.uint32)
        expected = BitMap(values.tolist())
        assert from_unsorted(values) == expected
        assert from_sorted(sorted_unique(values)) == expected
        assert len(from_unsorted(values)) == len(expected)


def random_replies(rng: np.random.Generator, rows: int, spread: int) -> pa.Table:
    """Random reply rows: every probe (an unknown one too), category, ICMP code, source."""
    target = rng.integers(0, spread, size=rows, dtype=np.uint64).astype(np.uint32)
    routers = rng.integers(0, 1 << 32, size=8, dtype=np.uint64).astype(np.uint32)
    from_router = rng.random(rows) < 0.3
    responder = np.where(from_router, routers[rng.integers(0, routers.size, rows)], target)
    return pa.table(
        {
            "probe": pa.array(rng.choice(PROBE_NAMES, size=rows)).dictionary_encode(),
            "target": pa.array(target),
            "responder": pa.array(responder),
            "reply": pa.array(rng.choice(REPLY_CATEGORIES, size=rows)).dictionary_encode(),
            "icmp_code": pa.array(rng.integers(-1, 20, size=rows).astype(np.int16)),
            "attempt": pa.array(rng.integers(0, 3, size=rows).astype(np.uint8)),
            "app_valid": pa.array(rng.random(rows) < 0.5),
            "app_active": pa.array(rng.random(rows) < 0.5),
            "app_proto": pa.array(rng.choice(APP_PROTO_NAMES, size=rows)).dictionary_encode(),
        }
    )


def _reference_app(row: dict[str, object], probe: int, into: dict[int, set[int]]) -> int:
    """The application classes of an application row, added to ``into``; its kind's class."""
    category = row["reply"]
    kind = {
        "app_data": APP_DATA_VALID if row["app_valid"] else APP_DATA_OTHER,
        "app_ack": APP_ACK,
        "app_rst": APP_RST,
    }[str(category)]
    responder = int(str(row["responder"]))
    into[app_class_of(probe, kind)].add(responder)
    if category != "app_rst" or row["app_active"]:
        into[app_class_of(probe, APP_ACTIVE)].add(responder)
    if category == "app_data":
        proto = APP_PROTO_ALIASES.get(str(row["app_proto"]), str(row["app_proto"]))
        index = APP_PROTOS.index(proto) if proto in APP_PROTOS else APP_PROTOS.index("other")
        into[app_class_of(probe, APP_PROTO_BASE + index)].add(responder)
    return app_class_of(probe, kind)


def reference_partial(table: pa.Table) -> ReplyPartial:
    """The reduction row by row, straight from the taxonomy (no vectorisation, no grouping)."""
    responders: dict[int, set[int]] = defaultdict(set)
    targets: dict[int, set[int]] = defaultdict(set)
    app: dict[int, set[int]] = defaultdict(set)
    expected = ReplyPartial(rows=table.num_rows)
    for row in table.to_pylist():
        probe = ALL_PROBES.index(row["probe"]) if row["probe"] in ALL_PROBES else UNKNOWN_PROBE
        category, own = row["reply"], row["responder"] == row["target"]
        if category in APP_CATEGORIES:  # no transport reply, whatever the probe
            expected.app_rows[_reference_app(row, probe, app)] += 1
            continue
        kind = {
            "echo_reply": KIND_ECHO,
            "timestamp_reply": KIND_ECHO,  # an ICMP answer, as echo's
            "synack": KIND_SYNACK,
            "rst": KIND_RST,
            "udp": KIND_UDP_VALID if row["app_valid"] else KIND_UDP_INVALID,
        }.get(category, ERR_TARGET if own else ERR_ROUTER)
        c = class_of(probe, kind, row["attempt"] != 0)
        responders[c].add(row["responder"])
        expected.class_rows[c] += 1
        if kind in (ERR_TARGET, ERR_ROUTER):
            name = category.removeprefix("icmp_")
            if category == "icmp_unreach":
                error_kind = row["icmp_code"] if 0 <= row["icmp_code"] < 16 else N_ERROR_KINDS - 1
            else:
                error_kind = ERROR_KINDS.index(name) if name in ERROR_KINDS else N_ERROR_KINDS - 1
            e = error_class_of(probe, error_kind, own)
            targets[e].add(row["target"])
            expected.error_rows[e] += 1
    expected.responders = {c: BitMap(v) for c, v in responders.items()}
    expected.error_targets = {e: BitMap(v) for e, v in targets.items()}
    expected.app_responders = {a: BitMap(v) for a, v in app.items()}
    return expected


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_reducer_equals_row_by_row_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    table = random_replies(rng, 5000, spread=1 << int(rng.integers(8, 33)))
    expected = reference_partial(table)
    reducer = Reducer("random")
    reducer.FLUSH_EVERY = int(rng.integers(1, 5))
    offset = 0
    while offset < table.num_rows:  # batches of random sizes
        size = int(rng.integers(1, 800))
        for batch in table.slice(offset, size).to_batches():
            reducer.add(batch)
        offset += size
    got = reducer.finish()
    assert got.responders == expected.responders
    assert got.error_targets == expected.error_targets
    assert got.app_responders == expected.app_responders and len(got.app_responders) > 50
    assert (got.class_rows == expected.class_rows).all()
    assert (got.error_rows == expected.error_rows).all()
    assert (got.app_rows == expected.app_rows).all()
    assert got.rows == expected.rows
    assert got.unknown_probes == {"tcp_syn:8080"}
    assert got.class_rows.size == N_CLASSES and got.error_rows.size == N_ERROR_CLASSES


def test_sets_equal_plain_unions_of_classes() -> None:
    rng = np.random.default_rng(7)
    reducer = Reducer("random")
    reducer.add(random_replies(rng, 20_000, spread=1 << 20).to_batches()[0])
    partial = reducer.finish()
    sets = ReplySets(partial, cache_bytes=int(rng.integers(1, 1 << 20)))
    probe_count = len(ALL_PROBES_AND_UNKNOWN)
    for _ in range(300):
        probes = sorted(rng.choice(probe_count, size=int(rng.integers(1, 4)), replace=False))
        kinds = sorted(rng.choice(REPLY_KINDS, size=int(rng.integers(1, 8)), replace=False))
        first = bool(rng.random() < 0.3)
        attempts = (False,) if first else (False, True)
        plain = BitMap()
        for p in probes:
            for k in kinds:
                for r in attempts:
                    plain |= partial.responders.get(class_of(int(p), int(k), r), BitMap())
        names = [ALL_PROBES_AND_UNKNOWN[p] for p in probes]
        assert sets.responders(names, [int(k) for k in kinds], first_attempt_only=first) == plain
        errors = sorted(rng.choice(N_ERROR_KINDS, size=int(rng.integers(1, 5)), replace=False))
        source = [None, True, False][int(rng.integers(0, 3))]
        sources = (False, True) if source is None else (source,)
        plain_errors = BitMap()
        for p in probes:
            for k in errors:
                for s in sources:
                    e = error_class_of(int(p), int(k), s)
                    plain_errors |= partial.error_targets.get(e, BitMap())
        assert sets.error_targets(names, [int(k) for k in errors], source) == plain_errors


def test_analysis_in_address_slices_equals_the_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(11)
    reducer = Reducer("random")
    reducer.add(random_replies(rng, 30_000, spread=1 << 26).to_batches()[0])
    partial = reducer.finish()
    inputs = {"files": [], "rows": partial.rows, "errors": 0}
    whole = json.dumps(analyze(partial, inputs))
    monkeypatch.setattr(summary_module, "SLICE_BYTES", partial.bitmap_bytes() // 13)
    assert len(list(summary_module._slices(partial))) > 10
    assert json.dumps(analyze(partial, inputs)) == whole


@pytest.mark.parametrize("passes", [2, 3, 7])
def test_summary_in_address_passes_equals_one_pass(tmp_path: Path, passes: int) -> None:
    rng = np.random.default_rng(passes)
    paths = []
    for i in range(2):  # two shards
        path = tmp_path / f"shard-{i}.parquet"
        pq.write_table(random_replies(rng, 4000, spread=1 << 32), path)
        paths.append(str(path))
    one = summarize(paths)
    assert json.dumps(summarize(paths, passes=passes)) == json.dumps(one)


def test_windows_partition_the_bitmaps() -> None:
    table = random_replies(np.random.default_rng(5), 6000, spread=1 << 32)
    whole = Reducer("whole")
    whole.add(table.to_batches()[0])
    expected = whole.finish()
    pieces = []
    for i, window in enumerate(Window.split(5)):
        reducer = Reducer("piece", window=window, counters=i == 0)
        reducer.add(table.to_batches()[0])
        pieces.append(reducer.finish())
    merged = merge_partials(pieces)
    assert merged.responders == expected.responders
    assert merged.error_targets == expected.error_targets
    assert merged.app_responders == expected.app_responders
    assert (merged.class_rows == expected.class_rows).all()
    assert (merged.error_rows == expected.error_rows).all()
    assert (merged.app_rows == expected.app_rows).all()
