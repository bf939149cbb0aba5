"""RIPE Atlas DNS results: the real sample (errors and timeouts included) checked against an
independent count made here with plain ``json``; built-in measurement ids; interval merging."""

from __future__ import annotations

import bz2
import gzip
import json
from collections import Counter
from pathlib import Path

import pytest

from liveness.errors import InputError
from liveness.reach.atlas import read_atlas, read_atlas_queries
from liveness.reach.observation import OBSERVATION_SCHEMA
from liveness.reach.readers import read_observations
from liveness.reach.roots import LETTERS, ROOT_ADDRESSES, builtin_measurement, letter_from_address

# ../shared/data beside the repository (as on CI and the developers' machines).
SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"

SAMPLE = SHARED_DATA / "atlas" / "dns-results-sample.jsonl"
pytestmark = pytest.mark.skipif(not SAMPLE.exists(), reason="real Atlas sample not present")

# Written out here, independently of liveness.reach.roots: the roots' current addresses.
ROOTS_BY_ADDRESS = {
    "198.41.0.4": "a", "170.247.170.2": "b", "192.33.4.12": "c", "199.7.91.13": "d",
    "192.203.230.10": "e", "192.5.5.241": "f", "192.112.36.4": "g", "198.97.190.53": "h",
    "192.36.148.17": "i", "192.58.128.30": "j", "193.0.14.129": "k", "199.7.83.42": "l",
    "202.12.27.33": "m", "2001:503:ba3e::2:30": "a", "2801:1b8:10::b": "b",
    "2001:500:2::c": "c", "2001:500:2d::d": "d", "2001:500:a8::e": "e", "2001:500:2f::f": "f",
    "2001:500:12::d0d": "g", "2001:500:1::53": "h", "2001:7fe::53": "i",
    "2001:503:c27::2:30": "j", "2001:7fd::1": "k", "2001:500:9f::42": "l", "2001:dc3::35": "m",
}  # fmt: skip


def _independent_count() -> tuple[int, int, int, Counter[str], Counter[tuple[str, str]]]:
    """Results, queries, failed queries, queries per letter, (probe, target) pairs; by hand."""
    results = [json.loads(line) for line in SAMPLE.read_text().splitlines() if line.strip()]
    queries = failed = 0
    letters: Counter[str] = Counter()
    pairs: Counter[tuple[str, str]] = Counter()
    for result in results:
        entries = result.get("resultset", [result])
        for entry in entries:
            queries += 1
            if "error" in entry or "result" not in entry:
                failed += 1
            destination = entry.get("dst_addr", result.get("dst_addr"))
            letter = ROOTS_BY_ADDRESS.get(destination)
            if letter:
                letters[letter] += 1
            target = f"{letter}.root" if letter else destination
            pairs[(str(result["prb_id"]), target)] += 1
    return len(results), queries, failed, letters, pairs


def test_real_sample_matches_an_independent_count() -> None:
    results, queries, failed, letters, pairs = _independent_count()
    assert results == 42
    table = read_atlas_queries(SAMPLE)
    assert table.num_rows == queries
    ok = table["ok"].to_pylist()
    assert ok.count(False) == failed
    assert failed >= 2  # the sample holds timeouts
    targets = table["target"].to_pylist()
    found_letters = Counter(t[0] for t in targets if t.endswith(".root"))
    assert found_letters == letters
    assert Counter(zip(table["vp"].to_pylist(), targets, strict=True)) == pairs


def test_failed_queries_are_the_timeouts() -> None:
    table = read_atlas_queries(SAMPLE).to_pylist()
    failed = [(row["vp"], row["target"], row["af"], row["proto"]) for row in table if not row["ok"]]
    assert failed == [
        ("2793", "2001:4860:4860::8888", 6, "UDP"),
        ("18394", "2a02:3a8:100::100", 6, "TCP"),
    ]


def test_observations_from_the_sample() -> None:
    table = read_atlas(SAMPLE)
    assert table.schema.equals(OBSERVATION_SCHEMA)
    queries = read_atlas_queries(SAMPLE).to_pylist()
    distinct = {(q["vp"], q["target"], q["af"], q["ts"]) for q in queries}
    assert table.num_rows <= len(distinct)  # duplicates at one second count once
    rows = table.to_pylist()
    assert all(row["t1"] > row["t0"] for row in rows)
    down = {(row["vp"], row["target"]) for row in rows if row["status"] == "down"}
    assert down == {("2793", "2001:4860:4860::8888"), ("18394", "2a02:3a8:100::100")}
    # the duplicated line of probe 4232 (A-root) is one observation
    assert [r["target"] for r in rows if r["vp"] == "4232"] == ["a.root"]


@pytest.mark.parametrize("form", ["array", "gzip", "bzip2"])
def test_json_array_and_compressed_read_the_same(tmp_path: Path, form: str) -> None:
    lines = [json.loads(line) for line in SAMPLE.read_text().splitlines() if line.strip()]
    if form == "array":
        path = tmp_path / "r.json"
        path.write_text(json.dumps(lines, indent=1))
    elif form == "gzip":
        path = tmp_path / "r.jsonl.gz"
        path.write_bytes(gzip.compress(SAMPLE.read_bytes()))
    else:
        path = tmp_path / "r.jsonl.bz2"
        path.write_bytes(bz2.compress(SAMPLE.read_bytes()))
    assert read_atlas_queries(path).to_pylist() == read_atlas_queries(SAMPLE).to_pylist()


def test_builtin_ids_and_root_addresses() -> None:
    assert builtin_measurement(10001) == ("k", 4, "UDP")
    assert builtin_measurement(10109) == ("a", 4, "TCP")
    assert builtin_measurement(11016) == ("j", 6, "UDP")
    assert builtin_measurement(11106) == ("m", 6, "TCP")
    assert builtin_measurement(10002) is None  # no letter at offset 02
    assert builtin_measurement(1004041) is None
    offsets = {builtin_measurement(10000 + n) for n in range(100)} - {None}
    assert sorted(found.letter for found in offsets if found) == list(LETTERS)
    for address, letter in ROOTS_BY_ADDRESS.items():
        assert letter_from_address(address) == letter
    assert letter_from_address("2001:07fd:0::1") == "k"  # any spelling
    assert letter_from_address("8.8.8.8") is None
    assert all(len(v4) >= 1 and len(v6) >= 1 for v4, v6 in ROOT_ADDRESSES.values())


def _result(msm: int, probe: int, ts: int, answered: bool, **extra: object) -> dict[str, object]:
    result: dict[str, object] = {"msm_id": msm, "prb_id": probe, "timestamp": ts, "type": "dns"}
    result["fw"] = 4790
    result.update(extra)
    if answered:
        result["result"] = {"ANCOUNT": 1, "ID": 1, "rt": 12.5, "size": 60}
    else:
        result["error"] = {"timeout": 5000}
    return result


def test_builtin_results_merge_into_intervals(tmp_path: Path) -> None:
    path = tmp_path / "k.jsonl"
    results = [
        _result(10001, 7, 0, True),
        _result(10001, 7, 1800, True),
        _result(10001, 7, 3600, False),
        _result(10001, 7, 5400, True),
        _result(10001, 7, 20000, True),  # after a gap longer than the window
        _result(11005, 7, 100, False, dst_addr="2001:7fe::53", af=6),  # I-root IPv6 UDP
    ]
    path.write_text("\n".join(json.dumps(result) for result in results) + "\n")
    queries = read_atlas_queries(path).to_pylist()
    assert [(q["target"], q["af"], q["proto"], q["ok"]) for q in queries][-1] == (
        "i.root",
        6,
        "UDP",
        False,
    )
    rows = sorted(
        (r["target"], r["af"], r["t0"], r["t1"], r["status"]) for r in read_atlas(path).to_pylist()
    )
    assert rows == [
        ("i.root", 6, 100, 1900, "down"),
        ("k.root", 4, 0, 3600, "up"),
        ("k.root", 4, 3600, 5400, "down"),
        ("k.root", 4, 5400, 7200, "up"),
        ("k.root", 4, 20000, 21800, "up"),
    ]
    assert read_observations([path]).num_rows == len(rows)


def test_malformed_json_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    lines = SAMPLE.read_text().splitlines()
    lines.insert(3, '{"msm_id": 10001, "prb_id": ')
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"bad.jsonl:4: invalid JSON"):
        read_atlas_queries(path)
    path.write_text(json.dumps({"msm_id": 10001, "prb_id": 1, "type": "dns"}) + "\n")
    with pytest.raises(InputError, match=r"bad.jsonl:1: .*timestamp"):
        read_atlas(path)
    path.write_text(json.dumps({"msm_id": 1, "prb_id": 1, "timestamp": 1, "type": "ping"}) + "\n")
    with pytest.raises(InputError, match=r"bad.jsonl:1: not a DNS result"):
        read_atlas(path)
