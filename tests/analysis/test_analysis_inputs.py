"""Bad inputs name their file and never lose the other files' analyses; Dask equals local."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from analysis_replies import Row, WriteReplies, reply_table

from liveness.analysis import ANALYSES, summarize
from liveness.errors import InputError

GOOD: list[Row] = [
    ("icmp_echo", "198.18.0.1", "198.18.0.1", "echo_reply", -1, 0, False),
    ("tcp_syn:443", "198.18.0.2", "198.18.0.2", "synack", -1, 0, False),
    ("tcp_syn:443", "198.18.0.3", "198.18.0.3", "rst", -1, 1, False),
    ("udp_dns", "198.18.0.4", "198.18.0.4", "udp", -1, 0, True),
    ("udp_ntp", "198.18.9.9", "198.18.0.254", "icmp_unreach", 13, 0, False),
]


def _bad_files(tmp_path: Path) -> dict[str, str]:
    """One file per kind of bad input, keyed by a word its error message must contain."""
    other = tmp_path / "other.parquet"
    pq.write_table(pa.table({"a": [1, 2], "b": ["x", "y"]}), other)
    missing = tmp_path / "missing_column.parquet"
    pq.write_table(reply_table(GOOD).drop_columns(["attempt"]), missing)
    empty = tmp_path / "empty.parquet"
    pq.write_table(reply_table([]), empty)
    truncated = tmp_path / "truncated.parquet"
    pq.write_table(reply_table(GOOD * 50), truncated)
    data = truncated.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    text = tmp_path / "notes.parquet"
    text.write_text("not parquet at all\n")
    return {
        "not a reply table": str(other),
        "attempt": str(missing),
        "empty scan": str(empty),
        "truncated": str(truncated),
        "Parquet": str(text),
        "no such file": str(tmp_path / "absent.parquet"),
    }


def test_each_bad_input_is_one_error_naming_the_file(tmp_path: Path) -> None:
    for word, path in _bad_files(tmp_path).items():
        with pytest.raises(InputError) as caught:
            summarize([path])
        message = str(caught.value)
        assert path in message and word in message, message
        assert "\n" not in message


def test_good_file_analyses_survive_bad_files(tmp_path: Path, write_replies: WriteReplies) -> None:
    good = write_replies(GOOD, "good.parquet")
    bad = _bad_files(tmp_path)
    alone = summarize([good])
    mixed = summarize([*bad.values(), good])
    files = mixed["inputs"]["files"]
    assert mixed["inputs"]["errors"] == len(bad)
    assert [f["path"] for f in files] == [*bad.values(), good]
    assert files[-1] == {"path": good, "rows": len(GOOD), "error": None}
    assert all(f["error"] and f["path"] in f["error"] for f in files[:-1])
    for key in ANALYSES:
        assert mixed[key] == alone[key], key


def test_unknown_reply_category_is_an_input_error(tmp_path: Path) -> None:
    table = reply_table(GOOD)
    replies = pa.array(["echo_reply", "synack", "rst", "udp", "bogus"]).dictionary_encode()
    table = table.set_column(table.schema.get_field_index("reply"), "reply", replies)
    path = tmp_path / "bogus.parquet"
    pq.write_table(table, path)
    with pytest.raises(InputError, match="bogus"):
        summarize([str(path)])


def test_unknown_probe_counts_for_all_only(write_replies: WriteReplies) -> None:
    rows: list[Row] = [
        *GOOD,
        ("tcp_syn:8080", "198.18.0.77", "198.18.0.77", "synack", -1, 0, False),
    ]
    summary = summarize([write_replies(rows, "extra.parquet")])
    assert summary["unknown_probes"] == ["tcp_syn:8080"]
    assert summary["coverage"]["all"] == 6 and summary["coverage"]["outside_families"] == 1
    assert summary["transport"]["active"] == 2


@pytest.mark.slow
def test_dask_local_cluster_equals_local_run(tmp_path: Path, write_replies: WriteReplies) -> None:
    distributed = pytest.importorskip("dask.distributed")
    paths = [write_replies(GOOD[i::2], f"part{i}.parquet") for i in range(2)]
    paths.append(str(tmp_path / "absent.parquet"))
    local = summarize(paths)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
    ):
        remote = summarize(paths, dask_address=cluster.scheduler_address)
    assert remote == local
    assert local["inputs"]["errors"] == 1 and local["coverage"]["all"] == 5


def test_csv_input_gives_the_same_analyses(tmp_path: Path, write_replies: WriteReplies) -> None:
    table = reply_table(GOOD)
    plain = table.cast(
        pa.schema(
            [
                pa.field(f.name, pa.string()) if pa.types.is_dictionary(f.type) else f
                for f in table.schema
            ]
        )
    )
    for name in ("target", "responder"):  # dotted quads, as the CSV writer writes them
        dotted = [str(ipaddress.IPv4Address(a)) for a in plain.column(name).to_pylist()]
        plain = plain.set_column(plain.schema.get_field_index(name), name, pa.array(dotted))
    csv_path = tmp_path / "scan.csv"
    body = pa.BufferOutputStream()
    pacsv.write_csv(plain, body, pacsv.WriteOptions(include_header=False, quoting_style="none"))
    csv_path.write_bytes(
        ",".join(plain.column_names).encode() + b"\n" + body.getvalue().to_pybytes()
    )
    from_csv = summarize([str(csv_path)])
    from_parquet = summarize([write_replies(GOOD, "scan.parquet")])
    for key in ANALYSES:
        assert from_csv[key] == from_parquet[key], key


@pytest.mark.slow
def test_workers_local_process_cluster_equals_local_run(write_replies: WriteReplies) -> None:
    pytest.importorskip("dask.distributed")
    paths = [write_replies(GOOD[i::3], f"part{i}.parquet") for i in range(3)]
    assert summarize(paths, workers=2) == summarize(paths)


def test_null_probe_is_an_input_error(tmp_path: Path) -> None:
    table = reply_table(GOOD)
    probes = pa.array(["icmp_echo", None, "tcp_syn:443", "udp_dns", "udp_ntp"]).dictionary_encode()
    table = table.set_column(
        table.schema.get_field_index("probe"),
        pa.field("probe", probes.type, nullable=True),
        probes,
    )
    path = tmp_path / "nulls.parquet"
    pq.write_table(table, path)
    with pytest.raises(InputError, match="null"):
        summarize([str(path)])


def test_analyze_in_two_passes_gives_the_same_summary(
    tmp_path: Path, write_replies: WriteReplies
) -> None:
    """``liveness analyze --passes 2`` (half the memory) writes the summary one pass gives."""
    import json
    import subprocess
    import sys

    good = write_replies(GOOD, "good.parquet")
    outputs = {}
    for passes in ("1", "2"):
        out = tmp_path / f"summary-{passes}.json"
        argv = [sys.executable, "-m", "liveness.cli.main", "analyze", good, "--passes", passes]
        done = subprocess.run([*argv, "-o", str(out)], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        outputs[passes] = json.loads(out.read_text())
    for key in ANALYSES:
        assert outputs["2"][key] == outputs["1"][key], key
