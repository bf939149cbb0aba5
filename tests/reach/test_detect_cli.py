"""``liveness reach detect`` end to end on Trinocular-format files, and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from cli_runner import run_cli
from liveness.reach.detect import EVENT_SCHEMA
from liveness.reach.trinocular import write_trinocular

# ../shared/data beside the repository (as on CI and the developers' machines).
SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"

ROUND = 660
T0 = 1_700_000_000 - 1_700_000_000 % ROUND
BLOCKS = np.array([0x0A000000, 0x0A000100, 0x0A000200], np.uint32)  # 10.0.0.0/24 .. 10.0.2.0/24


def write_vp(path: Path, down: dict[int, range], offset: int = 0) -> None:
    """20 rounds of 3 blocks, all up except block i in rounds ``down[i]``."""
    rounds = np.arange(20)
    block = np.repeat(BLOCKS, len(rounds))
    round_no = np.tile(rounds, len(BLOCKS))
    status = np.ones(len(block), np.int8)
    for i, where in down.items():
        status[(block == BLOCKS[i]) & np.isin(round_no, list(where))] = 0
    write_trinocular(path, block, round_no, T0 + offset + round_no * ROUND, status)


@pytest.fixture
def vp_files(tmp_path: Path) -> list[str]:
    # Block 0: down for every VP in rounds 5-8 (outage). Block 1: down for w only, rounds 10-14.
    write_vp(tmp_path / "e.fsdb", {0: range(5, 9)}, offset=13)
    write_vp(tmp_path / "j.fsdb.gz", {0: range(5, 9)}, offset=200)
    write_vp(tmp_path / "w.fsdb", {0: range(5, 9), 1: range(10, 15)}, offset=41)
    return [str(tmp_path / n) for n in ("e.fsdb", "j.fsdb.gz", "w.fsdb")]


def test_detect_json_and_parquet(
    vp_files: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_path = tmp_path / "events.parquet"
    code, out, err = run_cli(
        ["reach", "detect", *vp_files, "--min-blocks", "1", "-o", str(out_path), "--json"], capsys
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["detector"] == "blocks"
    events = {(e["kind"], e["scope"]): e for e in result["events_list"]}
    outage = events["outage", "10.0.0.0/24"]
    assert outage["duration"] == 4 * ROUND and sorted(outage["vps_down"]) == ["e", "j", "w"]
    assert abs(outage["start"] - (T0 + 5 * ROUND)) < ROUND
    peninsula = events["peninsula", "10.0.1.0/24"]
    assert peninsula["vps_down"] == ["w"] and peninsula["duration"] == 5 * ROUND
    assert set(events) == {("outage", "10.0.0.0/24"), ("peninsula", "10.0.1.0/24")}
    table = pq.read_table(out_path)
    assert table.schema.equals(EVENT_SCHEMA) and table.num_rows == 2


def test_detect_terminal_table_and_filters(
    vp_files: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(["reach", "detect", *vp_files], capsys)
    assert code == 0
    assert "outage" in out and "10.0.0.0/24" in out and "2 events" in out
    code, out, _ = run_cli(
        ["reach", "detect", *vp_files, "--min-duration", str(5 * ROUND), "--json"], capsys
    )
    assert [e["kind"] for e in json.loads(out)["events_list"]] == ["peninsula"]


def test_detect_json_output_file(
    vp_files: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_path = tmp_path / "events.json"
    code, _, _ = run_cli(["reach", "detect", *vp_files, "-o", str(out_path)], capsys)
    assert code == 0
    document = json.loads(out_path.read_text())
    assert len(document["rows"]) == 2 and {r["vp"] for r in document["vp_summary"]} == {
        "e",
        "j",
        "w",
    }


def test_detect_errors(
    vp_files: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(["reach", "detect", *vp_files, "-o", str(tmp_path / "x.txt")], capsys)
    assert code == 2 and "use a .parquet, .json or .jsonl" in err
    code, _, err = run_cli(["reach", "detect", *vp_files, "--vp-blocks", "e"], capsys)
    assert code == 2 and "--vp-blocks: expected vp=cidr" in err
    bad = tmp_path / "bad.fsdb"
    header = (
        "block round_no round_start_epoch a_short a_oper status belief n_pos n_neg probe_log rtt_us"
    )
    bad.write_text(f"#fsdb -F t {header}\nzz\t1\n")
    code, _, err = run_cli(["reach", "detect", str(bad)], capsys)
    assert code == 2 and "bad.fsdb" in err and "Traceback" not in err


def test_detect_atlas_sample(capsys: pytest.CaptureFixture[str]) -> None:
    sample = str(SHARED_DATA / "atlas" / "dns-results-sample.jsonl")
    if not Path(sample).exists():
        pytest.skip("shared Atlas sample not present")
    code, out, _ = run_cli(
        ["reach", "detect", sample, "--json", "--all-targets", "--min-letters", "1"], capsys
    )
    assert code == 0
    result = json.loads(out)
    assert result["detector"] == "atlas"
    assert all(e["kind"] in ("island", "peninsula") for e in result["events_list"])
    assert all(e["duration"] % 86_400 == 0 for e in result["events_list"])
