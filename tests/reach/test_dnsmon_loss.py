"""DNSmon view: root query loss three ways, on a small query table with known answers."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from liveness.errors import InputError
from liveness.reach.atlas_islands import AtlasParams
from liveness.reach.dnsmon import DNSMON_SCHEMA, dnsmon_loss

# ../shared/data beside the repository (as on CI and the developers' machines).
SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"

LETTERS = [f"{c}.root" for c in "abcdefghijklm"]


def queries(
    rows: list[tuple[str, str, int, int, bool]], ts_type: pa.DataType | None = None
) -> pa.Table:
    vp, target, af, ts, ok = (list(c) for c in zip(*rows, strict=True))
    return pa.table(
        {
            "vp": pa.array(vp).dictionary_encode(),
            "target": pa.array(target).dictionary_encode(),
            "af": pa.array(af, pa.uint8()),
            "ts": pa.array(ts, pa.int64()).cast(ts_type or pa.int64()),
            "ok": pa.array(ok),
        }
    )


def sample() -> list[tuple[str, str, int, int, bool]]:
    rows = []
    for letter in LETTERS:
        rows.append(("good", letter, 4, 1000, True))
        rows.append(("good", letter, 4, 2000, letter != "a.root"))  # one real loss at A
        rows.append(("island", letter, 4, 1000, False))
        rows.append(("pen", letter, 4, 1000, letter < "g"))
        rows.append(("v6", letter, 6, 1000, True))
    rows += [("few", letter, 4, 1000, False) for letter in LETTERS[:3]]
    rows.append(("good", "192.0.2.1", 4, 1000, False))  # not a root: ignored by default
    return rows


def by_cell(table: pa.Table) -> dict[tuple[str, int], dict[str, object]]:
    return {(r["target"], r["af"]): r for r in table.to_pylist()}


def test_loss_three_ways() -> None:
    table = dnsmon_loss(queries(sample()))
    assert table.schema.equals(DNSMON_SCHEMA)
    cells = by_cell(table)
    assert len(cells) == 26
    a4 = cells["a.root", 4]
    # all: good 2 (1 lost), island 1 lost, pen 1 ok, few 1 lost -> 5 queries, 3 lost
    assert (a4["queries_all"], a4["lost_all"]) == (5, 3)
    assert (a4["queries_no_islands"], a4["lost_no_islands"]) == (4, 2)
    assert (a4["queries_no_islands_peninsulas"], a4["lost_no_islands_peninsulas"]) == (3, 2)
    m4 = cells["m.root", 4]
    # pen loses M; good answers; island loses: all 4 queries, 2 lost; cleaned: 2, 0
    assert m4["loss_all"] == pytest.approx(2 / 4)
    assert m4["loss_no_islands_peninsulas"] == 0.0
    assert cells["k.root", 6]["loss_all"] == 0.0


def test_timestamp_column_and_all_targets() -> None:
    with_ts = dnsmon_loss(queries(sample(), pa.timestamp("s", tz="UTC")))
    assert by_cell(with_ts) == by_cell(dnsmon_loss(queries(sample())))
    everything = dnsmon_loss(queries(sample()), AtlasParams(roots_only=False))
    assert ("192.0.2.1", 4) in by_cell(everything)


def test_missing_column_is_an_input_error() -> None:
    with pytest.raises(InputError, match="ok"):
        dnsmon_loss(queries(sample()).drop_columns(["ok"]))


def test_empty_input() -> None:
    assert dnsmon_loss(queries([("p", "x", 4, 0, True)])).num_rows == 0


def test_cli_on_real_atlas_sample(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from liveness.cli.main import main
    from liveness.reach.atlas import read_atlas_queries

    sample = SHARED_DATA / "atlas" / "dns-results-sample.jsonl"
    if not sample.exists():
        pytest.skip("shared Atlas sample not present")
    main(["reach", "dnsmon", str(sample), "--json"])
    result = json.loads(capsys.readouterr().out)
    rows = result["loss"]
    assert rows and all(r["target"].endswith(".root") for r in rows)
    queries = read_atlas_queries([str(sample)]).to_pylist()
    for row in rows:
        mine = [q for q in queries if q["target"] == row["target"] and q["af"] == row["af"]]
        assert row["queries_all"] == len(mine)
        assert row["lost_all"] == sum(not q["ok"] for q in mine)
