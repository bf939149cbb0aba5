"""The application-layer analysis through files: every writer's format, files without the
application columns, shards, ``--passes`` windows, address slices and Dask all give the
summary of the whole hand-made ``--app-layer`` scan (``app_rows.py``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from app_rows import ROWS, app_table, without_app_rows

from liveness.analysis import summarize
from liveness.analysis import summary as summary_module
from liveness.analysis.partial import reduce_file
from liveness.analysis.summary import analyze
from liveness.output.schema import APP_COLUMNS, BASE_COLUMNS, REPLY_COLUMNS
from liveness.output.writers import open_writer


def _without_inputs(summary: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in summary.items() if k != "inputs"}, sort_keys=True)


@pytest.fixture(scope="module")
def parquet(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("app") / "direct.parquet"
    pq.write_table(app_table(ROWS), path)
    return str(path)


@pytest.fixture(scope="module")
def expected(parquet: str) -> dict[str, Any]:
    summary = summarize([parquet])
    assert summary["app_layer"]["scanned"] and summary["ipv6"]["app_layer"]["scanned"]
    return summary


@pytest.mark.parametrize("extension", ["parquet", "csv", "jsonl"])
def test_every_writer_round_trips_the_app_layer(
    tmp_path: Path, expected: dict[str, Any], extension: str
) -> None:
    path = tmp_path / f"scan.{extension}"
    with open_writer(str(path), fields=list(REPLY_COLUMNS)) as writer:
        writer.write(app_table(ROWS))
    got = summarize([str(path)])
    assert _without_inputs(got) == _without_inputs(expected)
    assert got["inputs"]["rows"] == len(ROWS)


@pytest.mark.parametrize("extension", ["parquet", "csv", "jsonl"])
def test_a_scan_without_app_layer_columns_is_not_measured(tmp_path: Path, extension: str) -> None:
    path = tmp_path / f"plain.{extension}"
    with open_writer(str(path), fields=list(BASE_COLUMNS)) as writer:
        writer.write(app_table(without_app_rows(ROWS)).select(list(BASE_COLUMNS)))
    got = summarize([str(path)])
    assert got["app_layer"] == {"scanned": False}
    assert got["ipv6"]["app_layer"] == {"scanned": False}
    assert (got["tarpits"]["tarpits"], got["ipv6"]["tarpits"]["tarpits"]) == (3, 1)
    if extension == "parquet":
        assert "app_active" not in pq.read_schema(path).names


def test_app_rows_of_a_narrow_file_still_count(tmp_path: Path, expected: dict[str, Any]) -> None:
    """A file that kept the reply categories but not the application columns: ``app_data`` and
    ``app_ack`` rows are app-active all the same; the protocol is then unknown (``other``)."""
    path = tmp_path / "narrow.parquet"
    pq.write_table(app_table(ROWS).drop_columns(list(APP_COLUMNS)), path)
    got = summarize([str(path)])["app_layer"]
    want = expected["app_layer"]
    assert got["headline"] == want["headline"] and got["tarpits"] == want["tarpits"]
    for port, entry in got["ports"].items():
        assert entry["app_active"] == want["ports"][port]["app_active"], port
        assert entry["app_alive"] == want["ports"][port]["app_alive"], port
        assert entry["protocols"]["other"] == entry["sent_data"], port
        assert entry["unexpected_addresses"] == 0


def test_shards_merge_to_the_same_summary(tmp_path: Path, expected: dict[str, Any]) -> None:
    paths = []
    for i in range(3):  # a host's SYN-ACK and its application rows in different shards
        path = tmp_path / f"shard{i}.parquet"
        pq.write_table(app_table(ROWS[i::3]), path)
        paths.append(str(path))
    assert _without_inputs(summarize(paths)) == _without_inputs(expected)


@pytest.mark.parametrize("passes", [2, 5])
def test_passes_give_the_same_summary(
    tmp_path: Path, expected: dict[str, Any], passes: int
) -> None:
    paths = []
    for i in range(2):
        path = tmp_path / f"part{i}.parquet"
        pq.write_table(app_table(ROWS[i::2]), path)
        paths.append(str(path))
    got = summarize(paths, passes=passes)
    assert _without_inputs(got) == _without_inputs(expected)


def test_address_slices_add_up_to_the_whole(
    tmp_path: Path, expected: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each IPv4 host moved to a /16 of its own (198.18.0.x -> 198.x.0.0), and the partial
    analysed in many address slices: the same figures as in one piece."""
    spread = app_table(ROWS)
    target = spread.column("target").to_numpy()
    moved = ((target & 0xFF000000) | ((target & 0xFF) << 16)).astype("uint32")
    for name in ("target", "responder"):
        spread = spread.set_column(spread.schema.get_field_index(name), name, pa.array(moved))
    path = tmp_path / "spread.parquet"
    pq.write_table(spread, path)
    reduction = reduce_file(str(path))
    whole = analyze(reduction, expected["inputs"])
    monkeypatch.setattr(summary_module, "SLICE_BYTES", 1)
    assert len(list(summary_module._slices(reduction.ipv4))) > 5
    sliced = analyze(reduction, expected["inputs"])
    assert json.dumps(sliced["app_layer"]) == json.dumps(whole["app_layer"])
    assert sliced["app_layer"]["ports"] == expected["app_layer"]["ports"]
    assert sliced["app_layer"]["headline"] == expected["app_layer"]["headline"]
    assert sliced["app_layer"]["tarpits"]["no_service"] == 1


@pytest.mark.slow
def test_dask_workers_give_the_same_summary(tmp_path: Path, expected: dict[str, Any]) -> None:
    pytest.importorskip("dask.distributed")
    paths = []
    for i in range(3):
        path = tmp_path / f"part{i}.parquet"
        pq.write_table(app_table(ROWS[i::3]), path)
        paths.append(str(path))
    got = summarize(paths, workers=2)
    assert _without_inputs(got) == _without_inputs(expected)
