"""``reach`` readers against hostile Atlas results (issue 18): ``"result": null`` is a query
without an answer; another wrong type is a malformed line, named."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from liveness.errors import InputError
from liveness.reach.atlas import read_atlas_queries

RESULT: dict[str, Any] = {
    "type": "dns",
    "fw": 4790,
    "prb_id": 7,
    "msm_id": 5001,
    "timestamp": 1_700_000_000,
    "af": 4,
    "dst_addr": "193.0.14.129",  # k.root
    "proto": "UDP",
    "result": {"ANCOUNT": 1, "ARCOUNT": 0, "ID": 1, "NSCOUNT": 0, "QDCOUNT": 1, "rt": 9.5},
}


def _write(tmp_path: Path, *results: dict[str, Any]) -> Path:
    path = tmp_path / "atlas.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in results))
    return path


def test_null_result_is_a_failed_query(tmp_path: Path) -> None:
    path = _write(tmp_path, RESULT, {**RESULT, "timestamp": 1_700_001_800, "result": None})
    queries = read_atlas_queries(str(path))
    assert queries.column("ok").to_pylist() == [True, False]
    assert queries.column("target").to_pylist() == ["k.root", "k.root"]


def test_null_result_in_a_result_set_is_a_failed_query(tmp_path: Path) -> None:
    entry = {"af": 4, "dst_addr": "193.0.14.129", "proto": "UDP", "time": 1_700_000_000}
    resultset = [{**entry, "result": RESULT["result"]}, {**entry, "result": None}]
    raw = {k: v for k, v in RESULT.items() if k != "result"} | {"resultset": resultset}
    queries = read_atlas_queries(str(_write(tmp_path, raw)))
    assert queries.column("ok").to_pylist() == [True, False]


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"result": [1, 2]}, [":1:", '"result" is an array']),
        ({"result": "x"}, [":1:", '"result" is a string']),
        ({"resultset": None}, [":1:", '"resultset" is a number']),
        ({"resultset": [None]}, [":1:", "resultset[0]"]),
        ({"type": "x" * 100_000}, [":1:", "not a DNS result"]),
    ],
)
def test_wrong_types_name_file_and_line(
    tmp_path: Path, change: dict[str, Any], words: list[str]
) -> None:
    path = _write(tmp_path, {**RESULT, **change})
    with pytest.raises(InputError) as caught:
        read_atlas_queries(str(path))
    message = str(caught.value)
    assert message.startswith(str(path)) and len(message) < 400
    for word in words:
        assert word in message, message


def test_dnsmon_cli_counts_a_null_result_as_lost(tmp_path: Path) -> None:
    path = _write(tmp_path, RESULT, {**RESULT, "timestamp": 1_700_001_800, "result": None})
    done = subprocess.run(
        [sys.executable, "-m", "liveness.cli.main", "reach", "dnsmon", str(path), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)["loss"]
    assert (row["target"], row["queries_all"], row["lost_all"]) == ("k.root", 2, 1)
