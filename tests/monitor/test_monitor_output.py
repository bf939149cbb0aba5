"""Streamed outputs: the FSDB file reads back with the reach reader, observations agree."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from liveness.monitor import (
    FsdbStream,
    ModelProber,
    Monitor,
    ObservationStream,
    RoundResult,
)
from liveness.monitor.fsdb import hex_blocks
from liveness.reach.observation import OBSERVATION_SCHEMA
from liveness.reach.trinocular import COLUMNS, read_trinocular, read_trinocular_rows

BASE = (198 << 24) | (18 << 16)
START = 1_700_000_000


def run(tmp_path: Path, rounds: int = 10) -> tuple[list[RoundResult], Path, Path, Path]:
    rng = np.random.default_rng(7)
    bases = (BASE + 256 * np.arange(30)).astype(np.uint32)
    members = {int(b): int(b) + rng.choice(254, 20, replace=False) + 1 for b in bases}
    monitor = Monitor(bases, members, vp="vp1", availability=0.9)
    model = ModelProber(bases, 0.9, seed=2)
    results = []
    full, changes, obs = tmp_path / "f.fsdb", tmp_path / "c.fsdb", tmp_path / "o.parquet"
    with (
        FsdbStream(full) as fsdb,
        FsdbStream(changes, changes_only=True) as sparse_fsdb,
        ObservationStream(obs, vp="vp1", round_s=660) as observations,
    ):
        for round_no in range(rounds):
            model.set_up(bases[4:6], not 3 <= round_no < 6)
            result = monitor.run_round(model, round_no, START + 660 * round_no)
            results.append(result)
            fsdb.write(result)
            sparse_fsdb.write(result)
            observations.write(result)
            # streamed: this round's rows are on disk before the next round starts
            assert read_trinocular_rows(full).round_no.max() == round_no
        fsdb.close(comment="test")
    return results, full, changes, obs


def test_fsdb_reads_back_row_for_row(tmp_path: Path) -> None:
    results, full, _, _ = run(tmp_path)
    rows = read_trinocular_rows(full)
    assert rows.block.size == sum(r.block.size for r in results)
    assert np.array_equal(rows.block, np.concatenate([r.block for r in results]))
    assert np.array_equal(rows.status, np.concatenate([r.status for r in results]))
    assert np.array_equal(rows.round_start, np.repeat(START + 660 * np.arange(10), 30))
    text = full.read_text().splitlines()
    assert text[0] == "#fsdb -F t " + " ".join(COLUMNS)
    assert text[-1] == "# | test"
    table = pacsv.read_csv(
        full,
        read_options=pacsv.ReadOptions(column_names=list(COLUMNS), skip_rows=1),
        parse_options=pacsv.ParseOptions(delimiter="\t", invalid_row_handler=lambda _: "skip"),
        convert_options=pacsv.ConvertOptions(column_types={"probe_log": pa.string()}),
    )
    log = [str(entry) for entry in table["probe_log"].to_pylist()]
    n_pos, n_neg = table["n_pos"].to_numpy(), table["n_neg"].to_numpy()
    assert [s.count("p") for s in log] == n_pos.tolist()
    assert [s.count("n") for s in log] == n_neg.tolist()
    assert np.allclose(table["belief"].to_numpy(), np.concatenate([r.belief for r in results]))


def test_outage_rows_show_in_fsdb(tmp_path: Path) -> None:
    _, full, _, _ = run(tmp_path)
    rows = read_trinocular_rows(full)
    victim = rows.block == BASE + 256 * 4
    assert rows.status[victim].tolist() == [1, 1, 1, 0, 0, 0, 1, 1, 1, 1]


def test_observations_match_the_reader_for_both_fsdb_forms(tmp_path: Path) -> None:
    _, full, changes, obs = run(tmp_path)
    streamed = pq.read_table(obs)
    assert streamed.schema.equals(OBSERVATION_SCHEMA, check_metadata=False)

    def rows(table: pa.Table) -> list[tuple[object, ...]]:
        return sorted(
            zip(*(table[c].cast(pa.string()).to_pylist() for c in ("vp", "target", "status")),
                table["t0"].to_pylist(), table["t1"].to_pylist(), strict=True)
        )  # fmt: skip

    expected = rows(read_trinocular(full, vp_names=["vp1"]))
    assert rows(streamed) == expected
    assert rows(read_trinocular(changes, vp_names=["vp1"])) == expected
    victim = [r for r in expected if r[1] == "198.18.4.0/24"]
    assert sorted((r[3], r[4], r[2]) for r in victim) == [
        (START, START + 3 * 660, "up"),
        (START + 3 * 660, START + 6 * 660, "down"),
        (START + 6 * 660, START + 10 * 660, "up"),
    ]
    assert changes.stat().st_size < full.stat().st_size / 3


def test_hex_blocks() -> None:
    blocks = np.array([0xC0A80100, 0x0A000000, 0xFFFFFF00], dtype=np.uint32)
    assert hex_blocks(blocks).to_pylist() == ["c0a80100", "0a000000", "ffffff00"]
