"""ZMap's own CSV and JSON output (one file per probe, ``FILE:PROBE``) analysed as reply files.

The hand-made scan of ``handmade_rows.py`` is written in ZMap 4.3.4's exact formats (field names,
classification strings and the ``saddr``/``icmp_responder`` semantics of ``icmp_echoscan``,
``tcp_synscan``, ``dns``, ``ntp`` and ``udp``; CSV bools as 0/1 and nulls empty, JSON nulls left
out and ``success`` a number for echo replies) and must give the figures of the same rows as a
liveness reply file. ZMap records no retransmission, so the rows are compared with attempt 0.
"""

from __future__ import annotations

import csv
import ipaddress
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from analysis_replies import Row, WriteReplies
from handmade_rows import ROWS

from cli_runner import run_cli
from liveness.analysis import ANALYSES, summarize
from liveness.analysis.source import iter_reply_batches
from liveness.analysis.zmap_files import (
    ZmapSource,
    missing_fields_note,
    parse_zmap_spec,
    read_zmap,
)
from liveness.errors import InputError

SCANNER = "198.18.0.100"
_ZMAP_CLASS = {
    "icmp_unreach": "unreach",
    "icmp_time_exceeded": "timxceed",
    "icmp_param_problem": "other",  # icmp_echoscan's "other"; the others say "icmp"
}
_ICMP_TYPE = {"icmp_unreach": 3, "icmp_time_exceeded": 11, "icmp_param_problem": 12}
ICMP_FIELDS = "saddr,daddr,ipid,ttl,type,code,icmp_id,seq,classification,success,repeat,cooldown"
TCP_FIELDS = (
    "saddr,daddr,ipid,ttl,sport,dport,seqnum,acknum,window,classification,success,repeat,"
    "cooldown,icmp_responder,icmp_type,icmp_code,icmp_unreach_str"
)
UDP_FIELDS = (
    "saddr,daddr,ipid,ttl,classification,success,app_success,sport,dport,icmp_responder,"
    "icmp_type,icmp_code,icmp_unreach_str,udp_len"
)


def _quoted_data(target: str) -> str:
    """icmp_echoscan's ``data`` of an error: 4 unused bytes, the quoted IPv4 header, 8 bytes."""
    header = bytes([0x45, 0, 0, 28, 0, 1, 0, 0, 64, 1, 0, 0])
    header += ipaddress.IPv4Address(SCANNER).packed + ipaddress.IPv4Address(target).packed
    return (bytes(4) + header + bytes([8, 0, 0, 0, 0, 1, 0, 1])).hex()


def zmap_record(row: Row, seen: set[str]) -> dict[str, Any]:
    """One hand-made row as ZMap's modules write it (None values are ZMap's nulls)."""
    probe, target, responder, reply, code, _attempt, app_valid = row
    kind, _, port = probe.partition(":")
    saddr = responder if kind == "icmp_echo" else target
    record: dict[str, Any] = {
        "saddr": saddr,
        "daddr": SCANNER,
        "ipid": 7,
        "ttl": 61,
        "repeat": int(saddr in seen),
        "cooldown": 0,
    }
    seen.add(saddr)
    is_error = reply.startswith("icmp_")
    if kind == "icmp_echo":
        record |= {
            "type": 0 if reply == "echo_reply" else _ICMP_TYPE[reply],
            "code": 0 if reply == "echo_reply" else code,
            "icmp_id": 1,
            "seq": 1,
            "classification": "echoreply" if reply == "echo_reply" else _ZMAP_CLASS[reply],
            "success": int(reply == "echo_reply"),
            "data": _quoted_data(target) if is_error else None,
        }
        return record
    icmp = {
        "icmp_responder": responder if is_error else None,
        "icmp_type": _ICMP_TYPE.get(reply),
        "icmp_code": code if is_error else None,
        "icmp_unreach_str": "host unreachable" if is_error else None,
    }
    tport = 40000 if port == "random" else int(port or 53)
    if kind == "tcp_syn":
        record |= {
            "sport": None if is_error else tport,
            "dport": None if is_error else 50000,
            "seqnum": None if is_error else 1,
            "acknum": None if is_error else 2,
            "window": None if is_error else 65535,
            "classification": "icmp" if is_error else reply,
            "success": int(reply == "synack"),
        }
        return record | icmp
    classification = {"udp_dns": "dns", "udp_ntp": "ntp"}[kind]
    record |= {
        "classification": "icmp" if is_error else classification,
        "success": int(not is_error),
        "app_success": int(app_valid),
        "sport": None if is_error else tport,
        "dport": None if is_error else 50000,
    }
    return record | icmp | {"udp_len": None if is_error else 48}


def _probe_file(kind: str) -> str:
    return {"icmp_echo": "icmp", "udp_dns": "dns", "udp_ntp": "ntp"}.get(kind, "tcp")


def write_zmap(rows: Sequence[Row], directory: Path, fmt: str) -> list[str]:
    """The rows as one ZMap file per probe; the ``FILE:PROBE`` arguments naming them."""
    by_probe: dict[str, list[Row]] = {}
    for row in rows:
        by_probe.setdefault(row[0], []).append(row)
    specs = []
    for probe, probe_rows in by_probe.items():
        kind = probe.partition(":")[0]
        fields = {"icmp": ICMP_FIELDS + ",data", "tcp": TCP_FIELDS}.get(
            _probe_file(kind), UDP_FIELDS
        ).split(",")
        seen: set[str] = set()
        records = [zmap_record(row, seen) for row in probe_rows]
        path = directory / f"{probe.replace(':', '_')}.{fmt}"
        with open(path, "w", newline="") as out:
            if fmt == "csv":
                writer = csv.writer(out, lineterminator="\n")
                writer.writerow(fields)
                for record in records:
                    writer.writerow(["" if record[f] is None else record[f] for f in fields])
            else:
                for record in records:
                    obj = {f: record[f] for f in fields if record[f] is not None}
                    for name in ("repeat", "cooldown", "app_success"):
                        if name in obj:
                            obj[name] = bool(obj[name])
                    if not (kind == "icmp_echo" and obj["success"]):  # echoreply: uint64 1
                        obj["success"] = bool(obj["success"])
                    out.write(json.dumps(obj, separators=(",", ":")) + "\n")
        specs.append(f"{path}:{probe}")
    return specs


def _attempt0(rows: Sequence[Row]) -> list[Row]:
    return [(p, t, r, reply, c, 0, a) for p, t, r, reply, c, _, a in rows]


def _figures(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: summary[k] for k in (*ANALYSES, "probes", "address_map", "ipv6")}


@pytest.fixture
def liveness_summary(write_replies: WriteReplies) -> dict[str, Any]:
    return summarize([write_replies(_attempt0(ROWS), "scan.parquet")])


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_zmap_files_give_the_figures_of_the_reply_file(
    fmt: str, tmp_path: Path, liveness_summary: dict[str, Any]
) -> None:
    specs = write_zmap(ROWS, tmp_path, fmt)
    summary = summarize(specs)
    assert summary["inputs"]["errors"] == 0
    assert summary["inputs"]["rows"] == len(ROWS)
    assert _figures(summary) == _figures(liveness_summary)
    assert summary["coverage"]["all"] == 12  # the router, not 198.18.1.5


def test_the_reply_rows(tmp_path: Path) -> None:
    """Router errors: icmp_echoscan's target from ``data``, the others' from ``saddr``."""
    specs = write_zmap(ROWS, tmp_path, "csv")
    by_probe = {}
    for spec in specs:
        source = parse_zmap_spec(spec)
        assert source is not None
        by_probe[source.probe] = pa.Table.from_batches(list(read_zmap(source))).to_pylist()
    echo_error = next(r for r in by_probe["icmp_echo"] if r["reply"] != "echo_reply")
    assert echo_error["target"] == int(ipaddress.IPv4Address("198.18.1.5"))
    assert echo_error["responder"] == int(ipaddress.IPv4Address("198.18.0.254"))
    assert (echo_error["icmp_type"], echo_error["icmp_code"]) == (3, 1)
    tcp443 = {r["reply"]: r for r in by_probe["tcp_syn:443"]}
    assert tcp443["icmp_unreach"]["target"] == int(ipaddress.IPv4Address("198.18.2.9"))
    assert tcp443["icmp_unreach"]["responder"] == int(ipaddress.IPv4Address("198.18.0.253"))
    assert tcp443["rst"]["tcp_flags"] == 0x04 and tcp443["rst"]["sport"] == 443
    assert {r["reply"] for r in by_probe["tcp_syn:23"]} == {"rst", "synack", "icmp_param_problem"}
    assert [r["app_valid"] for r in by_probe["udp_ntp"]] == [True, False]
    repeats = [r["repeat"] for r in by_probe["icmp_echo"]]
    assert repeats == [False, False, False, False, True]  # H answered twice
    assert all(r["attempt"] == 0 and r["af"] == 4 for r in by_probe["icmp_echo"])


def test_ipv6_rows(tmp_path: Path) -> None:
    path = tmp_path / "icmp6.csv"
    path.write_text(
        "saddr,daddr,type,code,classification,success,repeat\n"
        "2001:db8::1,2001:db8::ff,129,0,echoreply,1,0\n"
        "198.18.0.1,198.18.0.100,0,0,echoreply,1,0\n"
    )
    batches = list(iter_reply_batches(f"{path}:icmp_echo"))
    ipv6 = pa.Table.from_batches([b.ipv6 for b in batches if b.ipv6 is not None])
    assert ipv6.column("target6").to_pylist() == [ipaddress.IPv6Address("2001:db8::1").packed]
    assert sum(b.ipv4.num_rows for b in batches) == 1
    summary = summarize([f"{path}:icmp_echo"])
    assert summary["ipv6"]["coverage"]["all"] == 1 and summary["coverage"]["all"] == 1


def test_default_output_is_positive_replies(tmp_path: Path) -> None:
    """ZMap's default output (saddr only, success = 1): every row is a positive reply."""
    path = tmp_path / "syn.csv"
    path.write_text("saddr\n198.18.0.1\n198.18.0.2\n")
    source = ZmapSource(str(path), "tcp_syn:80")
    rows = pa.Table.from_batches(list(read_zmap(source))).to_pylist()
    assert [r["reply"] for r in rows] == ["synack", "synack"]
    note = missing_fields_note(source)
    assert note is not None and "\n" not in note
    assert "classification" in note and "icmp_responder" in note and "RST" in note
    success = tmp_path / "success.csv"
    success.write_text("saddr,success\n198.18.0.1,1\n198.18.0.2,0\n")
    rows = pa.Table.from_batches(list(read_zmap(ZmapSource(str(success), "icmp_echo")))).to_pylist()
    assert [r["reply"] for r in rows] == ["echo_reply"]


def test_complete_file_has_no_note(tmp_path: Path) -> None:
    specs = write_zmap(ROWS, tmp_path, "csv")
    notes = [missing_fields_note(s) for s in map(parse_zmap_spec, specs) if s is not None]
    assert notes == [None] * len(specs)


def test_spec_parsing(tmp_path: Path) -> None:
    plain = tmp_path / "a:b.csv"
    plain.write_text("x\n")
    assert parse_zmap_spec(str(plain)) is None  # an existing file is a liveness file
    zmap = tmp_path / "tcp.json"
    zmap.write_text("{}\n")
    assert parse_zmap_spec(f"{zmap}:tcp_syn:443") == ZmapSource(str(zmap), "tcp_syn:443")
    assert parse_zmap_spec(f"{tmp_path}/gone.csv:icmp_echo") == ZmapSource(
        f"{tmp_path}/gone.csv", "icmp_echo"
    )
    assert parse_zmap_spec(f"{tmp_path}/scan.parquet") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("daddr,classification\n198.18.0.100,synack\n", "header row naming saddr"),
        ("saddr,classification\n198.18.0.1,weird\n", "classification 'weird'"),
        ("saddr,classification\n1.2.3.400,synack\n", "not an IPv4 address"),
        ("", "empty file"),
    ],
)
def test_bad_files_are_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=message) as caught:
        list(iter_reply_batches(f"{path}:tcp_syn:80"))
    assert "\n" not in str(caught.value)


def test_cli_analyze_and_report(
    tmp_path: Path, liveness_summary: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    specs = write_zmap(ROWS, tmp_path, "json")
    code, out, err = run_cli(["analyze", "--json", *specs], capsys)
    assert code == 0, err
    assert _figures(json.loads(out)) == _figures(liveness_summary)
    html = tmp_path / "report.html"
    code, out, err = run_cli(["report", "-o", str(html), *specs], capsys)
    assert code == 0, err
    assert html.stat().st_size > 0


def test_cli_notes_missing_fields_and_refuses_bad_specs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "syn.csv"
    path.write_text("saddr\n198.18.0.1\n")
    code, _, err = run_cli(["analyze", f"{path}:tcp_syn:80"], capsys)
    assert code == 0, err
    assert "ZMap file without classification" in err
    assert "records no retransmission attempt" in err  # analysis 8 cannot see them
    code, _, err = run_cli(["analyze", f"{path}:nosuch_probe"], capsys)
    assert code == 2 and "nosuch_probe" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli(["analyze", f"{tmp_path}/gone.csv:icmp_echo"], capsys)
    assert code == 2 and "gone.csv: no such file" in err


# -- real ZMap 4.3.4 on the testbed (root) ----------------------------------------------------
ZMAP = Path.home() / ".cache" / "liveness-peers" / "zmap-4.3.4" / "build" / "src" / "zmap"
ZMAP_MODULES = {  # probe -> (module, port, output module, fields)
    "icmp_echo": ("icmp_echoscan", None, "csv", "saddr,daddr,type,code,classification,"
                  "success,repeat,data"),
    "tcp_syn:80": ("tcp_synscan", "80", "json", "saddr,daddr,sport,dport,classification,"
                   "success,repeat,icmp_responder,icmp_type,icmp_code"),
    "tcp_syn:443": ("tcp_synscan", "443", "csv", "saddr,daddr,sport,dport,classification,"
                    "success,repeat,icmp_responder,icmp_type,icmp_code"),
}  # fmt: skip


@pytest.mark.root
@pytest.mark.slow
def test_real_zmap_output_gives_the_figures_of_liveness_scan(tmp_path: Path) -> None:
    """ZMap's own CSV and JSON from the testbed analyse as ``liveness scan`` of the same
    targets (vp1's paths inject no loss, so the figures must agree exactly)."""
    if not ZMAP.is_file():
        pytest.skip("ZMap 4.3.4 not built (bash ../shared/peers/build-zmap.sh)")
    from liveness.testbed import Testbed, load_spec

    allow = tmp_path / "allow.txt"
    allow.write_text("198.18.0.0/15\n")
    (tmp_path / "empty.conf").write_text("")
    (tmp_path / "empty-block.txt").write_text("")
    with Testbed(load_spec("small")) as tb:
        vp = tb.vps["vp1"]
        targets = tmp_path / "targets.txt"  # ZMap scans its -w list, not only its arguments
        targets.write_text("".join(f"{cidr}\n" for cidr in tb.targets))
        out = tmp_path / "liveness.parquet"
        argv = vp.scan_argv(
            tb.targets, allow, "-o", str(out), "-q", "--probes", ",".join(ZMAP_MODULES),
            "-r", "20000", "--retransmit-delay", "0", "-c", "2",
        )  # fmt: skip
        done = tb.run(vp, argv, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        specs = []
        for probe, (module, port, output, fields) in ZMAP_MODULES.items():
            path = tmp_path / f"{probe.replace(':', '_')}.{output}"
            argv = [
                str(ZMAP), "-M", module, *(["-p", port] if port else []),
                "-C", str(tmp_path / "empty.conf"), "-b", str(tmp_path / "empty-block.txt"),
                "-w", str(targets), "-i", vp.ifname, "-S", vp.src_ip, "--gateway-mac",
                vp.gateway_mac, "-r", "20000", "-c", "2", "-q", "--disable-syslog",
                "-O", output, "-f", fields, "--output-filter", "success = 0 || success = 1",
                "-o", str(path),
            ]  # fmt: skip
            done = tb.run(vp, argv, capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, done.stderr[-2000:]
            specs.append(f"{path}:{probe}")
    ours, theirs = summarize([str(out)]), summarize(specs)
    assert theirs["inputs"]["errors"] == 0 and theirs["inputs"]["rows"] > 0
    for key in ("coverage", "reply_kinds", "icmp_errors", "transport", "address_map"):
        assert theirs[key] == ours[key], key
    for probe in ZMAP_MODULES:
        for count in ("alive", "replies", "synack", "rst", "icmp_error_from_router"):
            assert theirs["probes"][probe].get(count) == ours["probes"][probe].get(count), (
                probe,
                count,
            )


def test_torn_last_line_of_a_running_zmap_is_left_out(tmp_path: Path) -> None:
    for name, text in (
        ("run.csv", "saddr,classification\n198.18.0.1,synack\n198.18.0.2,syn"),
        ("run.json", '{"saddr":"198.18.0.1","classification":"synack"}\n{"saddr":"198.'),
    ):
        path = tmp_path / name
        path.write_text(text)
        rows = pa.Table.from_batches(list(read_zmap(ZmapSource(str(path), "tcp_syn:80"))))
        assert rows.num_rows == 1, name


def test_zmap_file_without_probe_gets_a_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "icmp.csv"
    path.write_text("saddr,classification\n198.18.0.1,echoreply\n")
    code, _, err = run_cli(["analyze", str(path)], capsys)
    assert code == 2 and f"name its probe as {path}:PROBE" in err
