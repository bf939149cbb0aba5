"""Building sets from reply files with a filter, and the ``liveness ipset`` command end to end."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from liveness.analysis import ipset
from liveness.cli.main import cli, main
from liveness.errors import InputError
from liveness.output.schema import REPLY_SCHEMA


def ip(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


# (probe, target, responder, reply, icmp_type): a small hand-made scan.
ROWS = [
    ("tcp_syn:443", "198.18.1.1", "198.18.1.1", "synack", -1),
    ("tcp_syn:443", "198.18.1.2", "198.18.1.2", "rst", -1),
    ("tcp_syn:443", "198.18.1.3", "198.18.0.254", "icmp_unreach", 3),
    ("tcp_syn:80", "198.18.1.4", "198.18.1.4", "synack", -1),
    ("icmp_echo", "198.18.1.1", "198.18.1.1", "echo_reply", 0),
    ("icmp_echo", "198.18.2.9", "198.18.0.254", "icmp_time_exceeded", 11),
]


def write_scan(path: Path, rows: list[tuple[str, str, str, str, int]]) -> None:
    n = len(rows)
    columns: dict[str, list[Any]] = {
        "ts": [10**18 + i for i in range(n)],
        "probe": [r[0] for r in rows],
        "target": [ip(r[1]) for r in rows],
        "responder": [ip(r[2]) for r in rows],
        "reply": [r[3] for r in rows],
        "icmp_type": [r[4] for r in rows],
        "icmp_code": [3 if r[4] == 3 else (0 if r[4] >= 0 else -1) for r in rows],
        "tcp_flags": [18 if r[3] == "synack" else 4 if r[3] == "rst" else 0 for r in rows],
        "ttl": [64] * n,
        "ipid": [0] * n,
        "sport": [0] * n,
        "dport": [0] * n,
        "attempt": [0] * n,
        "repeat": [False] * n,
        "app_valid": [False] * n,
        "vp": ["test"] * n,
        "af": [4] * n,
        "target6": pa.nulls(n, pa.binary(16)),
        "responder6": pa.nulls(n, pa.binary(16)),
        "app_active": [False] * n,
        "app_proto": [""] * n,
        "banner": [None] * n,
    }
    table = pa.table({f.name: pa.array(columns[f.name]).cast(f.type) for f in REPLY_SCHEMA})
    pq.write_table(table.cast(REPLY_SCHEMA), path)


@pytest.fixture
def scans(tmp_path: Path) -> list[str]:
    first, second = tmp_path / "a.parquet", tmp_path / "b.parquet"
    write_scan(first, ROWS[:3])
    write_scan(second, ROWS[3:])
    return [str(first), str(second)]


def addresses(result: ipset.IPSet) -> set[str]:
    assert not result.v6
    return {str(ipaddress.IPv4Address(a)) for a in result.v4}


def test_build_with_filter_and_column(scans: list[str]) -> None:
    assert addresses(ipset.from_replies(scans, "probe = tcp_syn:443 and reply = synack")) == {
        "198.18.1.1"
    }
    assert addresses(ipset.from_replies(scans, "reply = synack or reply = rst")) == {
        "198.18.1.1",
        "198.18.1.2",
        "198.18.1.4",
    }
    every_target = {r[1] for r in ROWS}
    assert addresses(ipset.from_replies(scans)) == every_target
    routers = ipset.from_replies(scans, "icmp_type > 0", column="responder")
    assert addresses(routers) == {"198.18.0.254"}
    assert addresses(ipset.from_replies(scans, column="icmp_responder")) == {
        "198.18.0.254",
        "198.18.1.1",
    }


def test_build_errors(scans: list[str], tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--filter"):
        ipset.from_replies(scans, "probe = ")
    with pytest.raises(InputError, match="not an address field"):
        ipset.from_replies(scans, column="ttl")
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 not really")
    with pytest.raises(InputError, match=r"bad\.parquet"):
        ipset.from_replies([*scans, str(bad)])


def run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_cli_end_to_end(scans: list[str], tmp_path: Path) -> None:
    https = str(tmp_path / "https.roar")
    alive = str(tmp_path / "alive.roar")
    listed = str(tmp_path / "listed.roar")
    out = run(
        "ipset",
        "build",
        *scans,
        "--filter",
        "probe = tcp_syn:443 and reply = synack",
        "-o",
        https,
        "--json",
    )
    assert json.loads(out) == {"output": https, "count": 1, "count_ipv4": 1, "count_ipv6": 0}
    run("ipset", "build", *scans, "--filter", "reply = synack || reply = echo_reply", "-o", alive)
    (tmp_path / "list.txt").write_text("198.18.1.0/30\n")
    run("ipset", "from-text", str(tmp_path / "list.txt"), "-o", listed)

    for verb, expected in (
        ("union", {"198.18.1.0", "198.18.1.1", "198.18.1.2", "198.18.1.3", "198.18.1.4"}),
        ("intersect", {"198.18.1.1"}),
        ("difference", {"198.18.1.0", "198.18.1.2", "198.18.1.3"}),
        ("symdiff", {"198.18.1.0", "198.18.1.2", "198.18.1.3", "198.18.1.4"}),
    ):
        target = str(tmp_path / f"{verb}.roar")
        run("ipset", verb, listed, alive, "-o", target)
        assert set(run("ipset", "list", target).split()) == expected
        assert json.loads(run("ipset", "count", target, "--json"))["count"] == len(expected)

    masked = str(tmp_path / "masked.roar")
    run("ipset", "mask", "24", alive, "-o", masked)
    assert json.loads(run("ipset", "list", masked, "--json"))["addresses"] == ["198.18.1.0"]
    assert run("ipset", "list", listed, "--cidr").split() == ["198.18.1.0/30"]
    assert run("ipset", "count", listed).split("\n")[:3] == ["4", "ipv4 4", "ipv6 0"]


def test_cli_bad_set_file_is_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.roar"
    bad.write_bytes(b"nope")
    with pytest.raises(SystemExit) as exit_info:
        main(["ipset", "count", str(bad)])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert error.strip() == (
        f"liveness: error: {bad}: not an IP set file (liveness or roaring format), or truncated"
    )


def test_build_from_a_csv_with_only_some_fields(scans: list[str], tmp_path: Path) -> None:
    from liveness.output import open_writer, read_replies

    path = tmp_path / "partial.csv"
    with open_writer(str(path), fields=["target", "probe", "reply"]) as writer:
        for scan in scans:
            for batch in read_replies(scan):
                writer.write(batch)
    found = ipset.from_replies([str(path)], "reply = synack")
    assert addresses(found) == {"198.18.1.1", "198.18.1.4"}
    with pytest.raises(InputError, match=r"missing column\(s\) responder"):
        ipset.from_replies([str(path)], column="responder")
