"""``liveness sql``: DuckDB over reply files, the same answer whatever the file's format."""

from __future__ import annotations

import ipaddress
import json
import os
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "analysis"))
from analysis_replies import reply_table
from handmade_rows import ROWS

from cli_runner import run_cli
from liveness.output import journal_path, open_writer
from liveness.output.schema import REPLY_SCHEMA

V6 = ipaddress.IPv6Address("2001:db8::7")
QUERIES = [
    "SELECT probe, count(DISTINCT target_ip) AS alive FROM replies"
    " WHERE reply IN ('echo_reply', 'synack', 'udp') GROUP BY probe ORDER BY probe",
    "SELECT probe, count(*) FILTER (WHERE reply = 'synack') AS synack,"
    " count(*) FILTER (WHERE reply = 'rst') AS rst FROM replies"
    " WHERE probe LIKE 'tcp_syn:%' GROUP BY probe ORDER BY probe",
    "SELECT icmp_type, icmp_code, count(DISTINCT target_ip) AS targets FROM replies"
    " WHERE reply LIKE 'icmp_%' GROUP BY ALL ORDER BY ALL",
    "SELECT af, target_ip, responder_ip, target6 FROM replies WHERE af = 6",
]


def replies() -> pa.Table:
    """The hand-made scan plus one IPv6 echo reply."""
    row = reply_table(ROWS).slice(0, 1).to_pylist()[0]
    row |= {"target": 0, "responder": 0, "af": 6, "target6": V6.packed, "responder6": V6.packed}
    extra = pa.Table.from_pylist([row], schema=REPLY_SCHEMA)
    return pa.concat_tables([reply_table(ROWS), extra])


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The same replies as Parquet, CSV, JSON lines and a running scan's journal."""
    directory = tmp_path_factory.mktemp("sql")
    table = replies()
    paths = {}
    parquet = directory / "scan.parquet"
    pq.write_table(table, parquet)
    paths["parquet"] = str(parquet)
    for extension in ("csv", "jsonl"):
        path = directory / f"scan.{extension}"
        with open_writer(str(path)) as writer:
            writer.write(table)
        paths[extension] = str(path)
    running = directory / "running.parquet"
    writer = open_writer(str(running))
    writer.write(table)
    writer.flush()  # left open: the rows are in the journal only, as after a crash
    assert not running.exists() and os.path.exists(journal_path(str(running)))
    paths["journal"] = str(running)
    paths["_writer"] = writer  # type: ignore[assignment]  # kept alive until the module ends
    return paths


def query_json(
    query: str, path: str, capsys: pytest.CaptureFixture[str], *extra: str
) -> dict[str, object]:
    code, out, err = run_cli(["sql", "--json", query, path, *extra], capsys)
    assert code == 0, err
    result = json.loads(out)
    assert isinstance(result, dict)
    return result


@pytest.mark.parametrize("query", QUERIES)
def test_every_format_gives_the_same_answer(
    query: str, files: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    answers = {
        kind: query_json(query, files[kind], capsys)
        for kind in ("parquet", "csv", "jsonl", "journal")
    }
    assert answers["parquet"]["row_count"]
    for kind, answer in answers.items():
        assert answer == answers["parquet"], kind


def test_answers(files: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    alive = query_json(QUERIES[0], files["parquet"], capsys)
    assert dict(alive["rows"])["icmp_echo"] == 4  # A G H and the IPv6 host  # type: ignore[arg-type]
    ports = query_json(QUERIES[1], files["parquet"], capsys)
    assert ports["columns"] == ["probe", "synack", "rst"]
    assert ["tcp_syn:22", 1, 2] in ports["rows"]  # type: ignore[operator]
    v6 = query_json(QUERIES[3], files["csv"], capsys)
    assert v6["rows"] == [[6, str(V6), str(V6), str(V6)]]


def test_text_and_csv_output(files: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["sql", QUERIES[1], files["parquet"]], capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["probe", "synack", "rst"] and lines[-1] == "(6 rows)"
    code, out, err = run_cli(["sql", "--csv", QUERIES[1], files["jsonl"]], capsys)
    assert code == 0, err
    rows = pcsv.read_csv(pa.py_buffer(out.encode())).to_pylist()
    assert rows[0] == {"probe": "tcp_syn:22", "synack": 1, "rst": 2}


def test_several_files_and_truth(
    files: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    truth = pa.table(
        {
            "target": pa.array([int(ipaddress.IPv4Address("198.18.0.1"))] * 2, pa.uint32()),
            "probe": ["icmp_echo", "tcp_syn:80"],
            "vp": ["vp0", "vp0"],
            "reply": ["echo_reply", "synack"],
            "responder": pa.array([int(ipaddress.IPv4Address("198.18.0.1"))] * 2, pa.uint32()),
            "icmp_code": pa.array([-1, -1], pa.int16()),
            "app_valid": [False, False],
            "loss": [0.0, 0.0],
        }
    )
    path = tmp_path / "truth.parquet"
    pq.write_table(truth, path)
    query = (
        "SELECT t.probe, count(r.target_ip) AS seen FROM truth t LEFT JOIN replies r"
        " ON r.target_ip = t.target_ip AND r.probe = t.probe GROUP BY t.probe ORDER BY 1"
    )
    result = query_json(query, files["parquet"], capsys, "--truth", str(path))
    assert result["rows"] == [["icmp_echo", 1], ["tcp_syn:80", 1]]
    both = query_json(
        "SELECT count(*), count(DISTINCT file) FROM replies", files["csv"], capsys, files["journal"]
    )
    assert both["rows"] == [[2 * (len(ROWS) + 1), 2]]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["SELEC 1"], "sql: Parser Error"),
        (["SELECT nope FROM replies"], "sql: Binder Error"),
        (["SELECT * FROM truth"], "sql: Catalog Error"),
        (["SELECT 1", "{missing}"], "no such file"),
        (["SELECT 1", "{bad}"], "bad.csv"),
        (["SELECT 1", "{parquet}", "--truth", "{missing}"], "--truth"),
    ],
)
def test_errors_are_one_line_exit_2(
    args: list[str],
    message: str,
    files: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("not,a,reply,table\n1,2,3,4\n")
    names = {"missing": str(tmp_path / "gone.parquet"), "bad": str(bad), **files}
    argv = [a.format(**names) for a in args]
    if len(argv) == 1:
        argv.append(files["parquet"])
    code, out, err = run_cli(["sql", *argv], capsys)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and message in err, err
