"""Every command against hostile inputs: exit 2, one line on stderr, nothing else touched.

Each case runs the CLI in a process of its own, in a scratch directory of its own, with a
pre-existing output file (``precious``) where the command writes one, and a file outside the
scratch directory that a symlink points to. After the run: the exit status is 2, stderr is one
short line (no traceback, no 2 MB echo of a bad line), the output and the outside file are
byte-for-byte what they were, nothing new appeared beside the output, and ``TMPDIR`` is empty.
Inputs a command legitimately accepts are listed in ``ACCEPTED`` with the documented result.

Speed (about 250 cases in well under a minute on two CPUs): a runner process imports the CLI
once and forks one child per case; each child is a separate process with its own cwd,
environment, stdin/stdout/stderr files and exit status, and ends through the interpreter's
normal exit (so a failed final flush shows up as it would). The read-only-output cases, which
need a private read-only bind mount, exec ``python -m liveness.cli.main`` under ``unshare -m``.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from pyroaring import BitMap

from liveness.analysis import ipset, summarize
from liveness.net.pcap import write_pcap
from liveness.output.schema import REPLY_SCHEMA
from liveness.output.writers import open_writer

HERE = Path(__file__).parent
PRECIOUS = b"precious: an earlier result that must survive a failed run\n"
OUTSIDE = b"outside the scratch directory: must never change\n"
HUGE = 2_000_000
MAX_STDERR = 1000  # bytes: one line, with at most a short excerpt of a bad value
IS_ROOT = os.geteuid() == 0

# -- good inputs, one per format ------------------------------------------------------------


def _replies() -> pa.Table:
    rows = [
        ("icmp_echo", "198.18.0.1", "198.18.0.1", "echo_reply", 0, 0),
        ("tcp_syn:443", "198.18.0.2", "198.18.0.2", "synack", -1, 0),
        ("tcp_syn:443", "198.18.0.3", "198.18.0.3", "rst", -1, 1),
        ("udp_ntp", "198.18.9.9", "198.18.0.254", "icmp_unreach", 13, 0),
    ]
    columns: dict[str, list[Any]] = {name: [] for name in REPLY_SCHEMA.names}
    for i, (probe, target, responder, reply, code, attempt) in enumerate(rows):
        values = {
            "ts": 1_700_000_000 * 10**9 + i,
            "probe": probe,
            "target": int(ipaddress.IPv4Address(target)),
            "responder": int(ipaddress.IPv4Address(responder)),
            "reply": reply,
            "icmp_type": {"echo_reply": 0, "icmp_unreach": 3}.get(reply, -1),
            "icmp_code": code,
            "tcp_flags": {"synack": 0x12, "rst": 0x14}.get(reply, 0),
            "ttl": 64,
            "ipid": i,
            "sport": 443 if probe.startswith("tcp") else 0,
            "dport": 50000,
            "attempt": attempt,
            "repeat": False,
            "app_valid": False,
            "vp": "vp0",
            "af": 4,
            "target6": None,
            "responder6": None,
            "app_active": False,
            "app_proto": "",
            "banner": None,
        }
        for name in REPLY_SCHEMA.names:
            columns[name].append(values[name])
    return pa.Table.from_pydict(columns, schema=REPLY_SCHEMA)


ATLAS_RESULT = {
    "type": "dns",
    "fw": 4790,
    "prb_id": 7,
    "msm_id": 5001,
    "timestamp": 1_700_000_000,
    "af": 4,
    "dst_addr": "193.0.14.129",
    "proto": "UDP",
    "result": {"ANCOUNT": 1, "ARCOUNT": 0, "ID": 1, "NSCOUNT": 0, "QDCOUNT": 1, "rt": 9.5},
}
RIR_TEXT = textwrap.dedent(
    """\
    2|test|20260101|2|00000000|20260101|00000
    test|*|ipv4|*|2|summary
    test|ZA|ipv4|198.18.0.0|256|20200101|allocated|A1
    test|KE|ipv4|198.18.1.0|256|20200101|allocated|B2
    """
)


def _write_goods(folder: Path) -> dict[str, Path]:
    """One valid file per input format the commands read."""
    folder.mkdir()
    goods = {name: folder / name for name in GOOD_NAMES}
    table = _replies()
    for name in ("replies.parquet", "replies.csv", "replies.jsonl"):
        writer = open_writer(str(goods[name]))
        writer.write(table)
        writer.close()
    goods["summary.json"].write_text(json.dumps(summarize([str(goods["replies.parquet"])])))
    goods["metadata.json"].write_text(json.dumps({"seed": 1, "probes": ["icmp_echo"]}) + "\n")
    goods["addresses.txt"].write_text("# addresses\n198.18.0.1\n198.18.0.0/30\n198.18.1.7\n")
    goods["allow.txt"].write_text("198.18.0.0/30\n")
    goods["allow6.txt"].write_text("198.18.0.0/30\n2001:2::/48\n")
    goods["census.txt"].write_text(
        "".join(f"198.18.{b}.{h}\n" for b in range(3) for h in range(1, 40))
    )
    ipset.save_set(
        BitMap([int(ipaddress.IPv4Address("198.18.0.1")), 3_000_000_000]), str(goods["set.set"])
    )
    goods["addresses6.txt"].write_text("2001:2::1:1\n2001:2::/120\n198.18.0.1\n")
    ipset.save_set(ipset.from_text(str(goods["addresses6.txt"])), str(goods["set6.set"]))
    frames = np.random.default_rng(1).integers(0, 256, (4, 60), dtype=np.uint8)
    write_pcap(goods["capture.pcap"], frames, ts_ns=1_700_000_000 * 10**9)
    goods["atlas.jsonl"].write_text(
        "".join(
            json.dumps({**ATLAS_RESULT, "timestamp": 1_700_000_000 + 1800 * i}) + "\n"
            for i in range(5)
        )
    )
    goods["relation.csv"].write_text("src_group,dst_group,reachable\na,b,1\nb,a,1\nb,c,0\n")
    goods["weights.csv"].write_text("group,weight\na,10\nb,5\nc,1\n")
    goods["rir.txt"].write_text(RIR_TEXT)
    shutil.copy(HERE / "data" / "reach" / "w-a_long.fsdb", goods["blocks.fsdb"])
    spec = (resources.files("liveness.testbed") / "specs" / "small.toml").read_text()
    goods["spec.toml"].write_text(spec)
    return goods


GOOD_NAMES = (
    "replies.parquet",
    "replies.csv",
    "replies.jsonl",
    "summary.json",
    "metadata.json",
    "addresses.txt",
    "allow.txt",
    "allow6.txt",
    "census.txt",
    "set.set",
    "addresses6.txt",
    "set6.set",
    "capture.pcap",
    "atlas.jsonl",
    "relation.csv",
    "weights.csv",
    "rir.txt",
    "blocks.fsdb",
    "spec.toml",
)
TEXT_GOODS = {name for name in GOOD_NAMES if not name.endswith((".parquet", ".set", ".pcap"))}

# -- the commands: argv with {in} (the hostile input), {out} (an output), {good:NAME} -------


@dataclass(frozen=True)
class Command:
    """One way to call the CLI: ``argv`` with placeholders; ``good`` the input's valid form."""

    name: str
    argv: tuple[str, ...]
    good: str
    out: str | None = None  # the output's file name (a directory for monitor), if any


COMMANDS = (
    Command("analyze", ("analyze", "{in}", "-o", "{out}"), "replies.parquet", "summary.json"),
    Command("analyze-csv", ("analyze", "{in}", "-o", "{out}"), "replies.csv", "summary.json"),
    Command("analyze-jsonl", ("analyze", "{in}", "--json"), "replies.jsonl"),
    Command("report", ("report", "{in}", "-o", "{out}"), "replies.parquet", "report.html"),
    Command(
        "report-summary",
        ("report", "--summary", "{in}", "-o", "{out}"),
        "summary.json",
        "report.html",
    ),
    Command(
        "report-metadata",
        ("report", "-m", "{in}", "--summary", "{good:summary.json}", "-o", "{out}"),
        "metadata.json",
        "report.html",
    ),
    Command(
        "ipset-from-text", ("ipset", "from-text", "{in}", "-o", "{out}"), "addresses.txt", "out.set"
    ),
    Command("ipset-build", ("ipset", "build", "{in}", "-o", "{out}"), "replies.parquet", "out.set"),
    Command(
        "ipset-union",
        ("ipset", "union", "{in}", "{good:set.set}", "-o", "{out}"),
        "set.set",
        "out.set",
    ),
    Command("ipset-mask", ("ipset", "mask", "24", "{in}", "-o", "{out}"), "set.set", "out.set"),
    Command("ipset-count", ("ipset", "count", "{in}"), "set.set"),
    Command("ipset-list", ("ipset", "list", "--cidr", "{in}"), "set.set"),
    Command(
        "ipset-from-text6",
        ("ipset", "from-text", "{in}", "-o", "{out}"),
        "addresses6.txt",
        "out.set",
    ),
    Command("ipset-count6", ("ipset", "count", "{in}"), "set6.set"),
    Command(
        "ipset-mask6",
        ("ipset", "mask", "24", "--v6", "64", "{in}", "-o", "{out}"),
        "set6.set",
        "out.set",
    ),
    Command(
        "decode",
        ("decode", "{in}", "-S", "198.18.0.1", "-e", "1", "-o", "{out}"),
        "capture.pcap",
        "decoded.parquet",
    ),
    Command(
        "reach-detect", ("reach", "detect", "{in}", "-o", "{out}"), "blocks.fsdb", "events.json"
    ),
    Command("reach-dnsmon", ("reach", "dnsmon", "{in}", "-o", "{out}"), "atlas.jsonl", "loss.json"),
    Command(
        "reach-core", ("reach", "core", "{in}", "--weights", "{good:weights.csv}"), "relation.csv"
    ),
    Command(
        "reach-core-weights",
        ("reach", "core", "{good:relation.csv}", "--weights", "{in}"),
        "weights.csv",
    ),
    Command("reach-rir", ("reach", "rir", "{in}", "-o", "{out}"), "rir.txt", "rir.json"),
    Command(
        "reach-report", ("reach", "report", "{in}", "-o", "{out}"), "blocks.fsdb", "reach.html"
    ),
    Command(
        "monitor",
        ("monitor", "--model", "--vp", "v", "--census", "{in}", "--rounds", "2", "-o", "{out}"),
        "census.txt",
        "monitor-out",
    ),
    Command("testbed-up", ("testbed", "up", "{in}", "--id", "{id}"), "spec.toml"),
    Command("scan-allowlist", ("scan", "-d", "-w", "{in}", "198.18.0.0/30"), "allow.txt"),
    Command(
        "scan-blocklist",
        ("scan", "-d", "-w", "{good:allow.txt}", "-b", "{in}", "198.18.0.0/30"),
        "allow.txt",
    ),
    Command(
        "scan-list-of-ips", ("scan", "-d", "-w", "{good:allow.txt}", "-I", "{in}"), "addresses.txt"
    ),
)
BY_NAME = {command.name: command for command in COMMANDS}

INPUT_KINDS = (
    "missing",
    "empty",
    "binary",
    "truncated",
    "directory",
    "dev-null",
    "device",
    "symlink",
    "huge-line",
)
OUTPUT_KINDS = ("out-read-only", "out-directory", "out-no-parent")

# (command, kind) -> what the documented behaviour is when a hostile-looking input is valid
ACCEPTED: dict[tuple[str, str], Callable[[Result], None]] = {}


def accepted(
    *keys: tuple[str, str],
) -> Callable[[Callable[[Result], None]], Callable[[Result], None]]:
    def register(check: Callable[[Result], None]) -> Callable[[Result], None]:
        for key in keys:
            ACCEPTED[key] = check
        return check

    return register


@accepted(("ipset-from-text", "empty"), ("ipset-from-text6", "empty"))
def _empty_text_is_an_empty_set(result: Result) -> None:
    # `ipset from-text`: blank lines are skipped, so an empty file is the empty set.
    assert result.code == 0, result.stderr
    assert result.out_path is not None and len(ipset.load_set(str(result.out_path))) == 0


@accepted(("analyze-csv", "truncated"), ("analyze-jsonl", "truncated"))
def _torn_last_line_is_dropped(result: Result) -> None:
    # output/readers.py documents it: a torn last line (no newline) of CSV or JSON lines is
    # dropped (a scan still writing, or killed); the complete lines before it are analysed.
    assert result.code == 0, result.stderr


@accepted(("monitor", "truncated"))
def _cut_address_list_is_a_shorter_list(result: Result) -> None:
    # A census text file has no end marker: cut after "198.18.1.2" (of "198.18.1.20") it is a
    # valid, shorter census, and the monitor runs on it (and replaces its outputs).
    assert result.code == 0, result.stderr
    assert result.out_path is not None and (result.out_path / "v.fsdb").read_bytes() != PRECIOUS


@accepted(("reach-dnsmon", "empty"))
def _no_atlas_results_is_no_loss(result: Result) -> None:
    # An empty JSON-lines file holds no Atlas result: zero queries, an empty loss table.
    assert result.code == 0, result.stderr
    assert result.out_path is not None
    assert json.loads(result.out_path.read_text()) == {"rows": []}


@accepted(("decode", "truncated"))
def _truncated_pcap_decodes_to_the_cut(result: Result) -> None:
    # `decode` documents it: a truncated pcap is decoded up to the cut, with a warning.
    assert result.code == 0, result.stderr
    assert "warning" in result.stderr and "truncated" in result.stderr


@accepted(("scan-blocklist", "empty"), ("scan-blocklist", "truncated"))
def _empty_blocklist_blocks_nothing_more(result: Result) -> None:
    # An empty blocklist file adds no block (the default blocklist still applies); a cut
    # "198.18.0.0/" line is refused below, but half of "198.18.0.0/30\n" is "198.18.0".
    if result.code == 0:
        assert "dry run" in result.stderr
    else:
        assert result.code == 2 and len(result.stderr.strip().splitlines()) == 1


# -- hostile inputs ----------------------------------------------------------------------------


def _hostile_input(kind: str, good: Path, work: Path, outside: Path) -> str:
    """A hostile stand-in for ``good`` in ``work`` (the path to pass)."""
    suffix = good.suffix
    path = work / f"input{suffix}"
    if kind == "missing":
        return str(path)
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "binary":
        path.write_bytes(np.random.default_rng(7).bytes(4096))
    elif kind == "truncated":
        data = good.read_bytes()
        path.write_bytes(data[: max(1, len(data) // 2)])
    elif kind == "directory":
        path.mkdir()
        (path / "inside.txt").write_text("a file in a directory\n")
    elif kind == "dev-null":
        return os.devnull
    elif kind == "device":
        if not IS_ROOT:
            return "/dev/zero"  # mknod needs root; the same device (it never ends)
        os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 5))  # /dev/zero: it never ends
    elif kind == "symlink":
        target = outside / f"target{suffix}"
        target.write_bytes(np.random.default_rng(8).bytes(2048))
        path.symlink_to(target)
    elif kind == "huge-line":
        first = good.read_text().splitlines()[0] if good.name in TEXT_GOODS else ""
        path.write_text(f"{first}\n" + "9" * HUGE + "\n")
    else:
        raise AssertionError(kind)
    return str(path)


def _snapshot(folder: Path) -> dict[str, tuple[int, str]]:
    """Every entry under ``folder``: mode and content digest (links by their target)."""
    found: dict[str, tuple[int, str]] = {}
    for path in sorted(folder.rglob("*")):
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode):
            digest = os.readlink(path)
        elif stat.S_ISREG(info.st_mode):
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            digest = ""
        found[str(path.relative_to(folder))] = (info.st_mode, digest)
    return found


# -- cases ---------------------------------------------------------------------------------------


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str
    out_path: Path | None


@dataclass
class Case:
    id: str
    command: Command
    kind: str
    argv: list[str] = field(default_factory=list)
    work: Path = Path()
    outside: Path = Path()
    out_path: Path | None = None
    out_dir: Path | None = None  # the directory holding the output (checked for leftovers)
    read_only: Path | None = None
    testbed_id: str | None = None
    before_outside: dict[str, tuple[int, str]] = field(default_factory=dict)
    before_out_dir: dict[str, tuple[int, str]] = field(default_factory=dict)
    result: Result | None = None

    def env(self) -> dict[str, str]:
        return {
            "TMPDIR": str(self.work / "tmp"),
            "LIVENESS_TESTBED_STATE": str(self.work / "testbed-state"),
            "COLUMNS": "80",
        }


NUMBER_CASES: dict[str, tuple[str, ...]] = {
    "monitor-round-s-nan": ("monitor", "--model", "--vp", "v", "--census", "{good:census.txt}",
                            "--rounds", "2", "-o", "{out}", "--round-s", "nan"),
    "monitor-round-s-inf": ("monitor", "--model", "--vp", "v", "--census", "{good:census.txt}",
                            "--rounds", "2", "-o", "{out}", "--round-s", "inf"),
    "monitor-availability-nan": ("monitor", "--model", "--vp", "v", "--census",
                                 "{good:census.txt}", "--rounds", "2", "-o", "{out}",
                                 "--model-availability", "nan"),
    "monitor-rounds-negative": ("monitor", "--model", "--vp", "v", "--census",
                                "{good:census.txt}", "--rounds", "-3", "-o", "{out}"),
    "monitor-seed-negative": ("monitor", "--model", "--vp", "v", "--census", "{good:census.txt}",
                              "--rounds", "2", "-o", "{out}", "--model-seed", "-1"),
    "monitor-param-nan": ("monitor", "--model", "--vp", "v", "--census", "{good:census.txt}",
                          "--rounds", "2", "-o", "{out}", "--param", "loss_rate=nan"),
    "monitor-param-huge": ("monitor", "--model", "--vp", "v", "--census", "{good:census.txt}",
                           "--rounds", "2", "-o", "{out}", "--param", "max_probes_per_round=1e12"),
    "monitor-param-negative": ("monitor", "--model", "--vp", "v", "--census",
                               "{good:census.txt}", "--rounds", "2", "-o", "{out}", "--param",
                               "availability_decay=-0.5"),
    "monitor-outage-backwards": ("monitor", "--model", "--vp", "v", "--census",
                                 "{good:census.txt}", "--rounds", "9", "-o", "{out}",
                                 "--model-outage", "198.18.0.0/24@5-2"),
    "reach-detect-share-nan": ("reach", "detect", "{good:blocks.fsdb}", "--island-share", "nan"),
    "reach-detect-gap-negative": ("reach", "detect", "{good:blocks.fsdb}", "--gap", "-5"),
    "reach-core-threshold-inf": ("reach", "core", "{good:relation.csv}", "--weights",
                                 "{good:weights.csv}", "--threshold", "inf"),
    "reach-dnsmon-window-negative": ("reach", "dnsmon", "{good:atlas.jsonl}", "--window", "-1"),
    "ipset-mask-negative": ("ipset", "mask", "-1", "{good:set.set}", "-o", "{out}"),
    "ipset-mask-33": ("ipset", "mask", "33", "{good:set.set}", "-o", "{out}"),
    "ipset-mask-200-ipv6": ("ipset", "mask", "200", "{good:set6.set}", "-o", "{out}"),
    "ipset-mask-v6-200": ("ipset", "mask", "24", "--v6", "200", "{good:set6.set}", "-o",
                          "{out}"),
    "ipset-mask-mixed-without-v6": ("ipset", "mask", "24", "{good:set6.set}", "-o", "{out}"),
    "ipset-mask-ipv4-64-mixed": ("ipset", "mask", "64", "--v6", "64", "{good:set6.set}", "-o",
                                 "{out}"),
    "analyze-workers-negative": ("analyze", "{good:replies.parquet}", "--workers", "-1"),
    "analyze-dask-garbage": ("analyze", "{good:replies.parquet}", "--dask", "garbage"),
    "analyze-prefix6-65": ("analyze", "{good:replies.parquet}", "--prefix6", "65"),
    "analyze-prefix6-zero": ("analyze", "{good:replies.parquet}", "--prefix6", "0"),
    "report-prefix6-text": ("report", "{good:replies.parquet}", "-o", "{out}", "--prefix6", "x"),
    "decode-attempts-negative": ("decode", "{good:capture.pcap}", "-S", "198.18.0.1", "-e", "1",
                                 "--max-attempts", "-1"),
    "decode-seed-nan": ("decode", "{good:capture.pcap}", "-S", "198.18.0.1", "-e", "nan"),
    "scan-rate-nan": ("scan", "-d", "-w", "{good:allow.txt}", "-r", "nan", "198.18.0.0/30"),
    "scan-output-module-unknown": ("scan", "-d", "-w", "{good:allow.txt}", "-O", "xml",
                                   "198.18.0.0/30"),
    "scan-output-module-parquet-stdout": ("scan", "-d", "-w", "{good:allow.txt}", "-o", "-",
                                          "-O", "parquet", "198.18.0.0/30"),
    "scan-max-results-negative": ("scan", "-d", "-w", "{good:allow.txt}", "-N", "-1",
                                  "198.18.0.0/30"),
    "scan-max-results-text": ("scan", "-d", "-w", "{good:allow.txt}", "-N", "ten",
                              "198.18.0.0/30"),
    "scan-min-hitrate-above-100": ("scan", "-d", "-w", "{good:allow.txt}", "--min-hitrate",
                                   "101", "198.18.0.0/30"),
    "scan-min-hitrate-negative": ("scan", "-d", "-w", "{good:allow.txt}", "--min-hitrate",
                                  "-0.5", "198.18.0.0/30"),
    "scan-min-hitrate-nan": ("scan", "-d", "-w", "{good:allow.txt}", "--min-hitrate", "nan",
                             "198.18.0.0/30"),
    "scan-rate-inf": ("scan", "-d", "-w", "{good:allow.txt}", "-r", "inf", "198.18.0.0/30"),
    "scan-bandwidth-nan": ("scan", "-d", "-w", "{good:allow.txt}", "-B", "nan", "198.18.0.0/30"),
    "scan-cooldown-negative": ("scan", "-d", "-w", "{good:allow.txt}", "-c", "-1",
                               "198.18.0.0/30"),
    "scan-source6-garbage": ("scan", "-d", "-w", "{good:allow6.txt}", "--source-ip6", "2001:zz::1",
                             "2001:2::/120"),
    "scan-source6-is-ipv4": ("scan", "-d", "-w", "{good:allow6.txt}", "--source-ip6",
                             "198.18.0.1", "2001:2::/120"),
    "scan-two-ipv6-sources": ("scan", "-d", "-w", "{good:allow6.txt}", "-S", "2001:2::1",
                              "--source-ip6", "2001:2::2", "2001:2::/120"),
    "scan-ipv6-too-many": ("scan", "-d", "-w", "{good:allow6.txt}", "2001:2::/48"),
    "scan-ipv6-blocked": ("scan", "-d", "2001:2::/120"),
    "scan-iid-garbage": ("scan", "-d", "-w", "{good:allow6.txt}", "--iid", "fixed:xyz",
                         "2001:2::/56-64"),
    "scan-iid-unknown": ("scan", "-d", "-w", "{good:allow6.txt}", "--iid", "middle",
                         "2001:2::/56-64"),
    "scan-iid-too-wide": ("scan", "-d", "-w", "{good:allow6.txt}", "--iid",
                          "fixed:1ffffffffffffffff", "2001:2::/56-64"),
    "scan-walk-backwards": ("scan", "-d", "-w", "{good:allow6.txt}", "2001:2::/64-56"),
    "scan-timestamp-ipv6": ("scan", "-d", "-w", "{good:allow6.txt}", "--probes", "icmp_timestamp",
                            "2001:2::/120"),
    "scan-udp-payload-unknown": ("scan", "-d", "-w", "{good:allow.txt}", "-M", "udp", "-p", "161",
                                 "--probe-args", "nosuch", "198.18.0.0/30"),
    "scan-udp-hex-bad": ("scan", "-d", "-w", "{good:allow.txt}", "-M", "udp", "-p", "161",
                         "--probe-args", "hex:0g", "198.18.0.0/30"),
    "scan-udp-file-missing": ("scan", "-d", "-w", "{good:allow.txt}", "-M", "udp", "-p", "161",
                              "--probe-args", "file:/nonexistent/x.pkt", "198.18.0.0/30"),
    "scan-udp-file-is-dir": ("scan", "-d", "-w", "{good:allow.txt}", "-M", "udp", "-p", "161",
                             "--probe-args", "file:/", "198.18.0.0/30"),
    "scan-udp-port-too-big": ("scan", "-d", "-w", "{good:allow.txt}", "--probes", "udp:65536",
                              "198.18.0.0/30"),
    "scan-udp-port-zero": ("scan", "-d", "-w", "{good:allow.txt}", "-M", "udp", "-p", "0",
                           "--probe-args", "snmp", "198.18.0.0/30"),
    "scan-udp-no-default": ("scan", "-d", "-w", "{good:allow.txt}", "--probes", "udp:7777",
                            "198.18.0.0/30"),
    "scan-udp-template": ("scan", "-d", "-w", "{good:allow.txt}", "-M", "udp", "-p", "5060",
                          "--probe-args", "template:/etc/hostname", "198.18.0.0/30"),
    "scan-udp-too-long": ("scan", "-d", "-w", "{good:allow.txt}", "--probes",
                          "udp:9:hex:" + "00" * 1500, "198.18.0.0/30"),
    "scan-udp-clash": ("scan", "-d", "-w", "{good:allow.txt}", "--probes", "udp_dns,udp:53",
                       "198.18.0.0/30"),
    "decode-source-garbage": ("decode", "{good:capture.pcap}", "-S", "2001:2::zz", "-e", "1"),
    "decode-two-ipv6-sources": ("decode", "{good:capture.pcap}", "-S", "2001:2::1", "-S",
                                "2001:2::2", "-e", "1"),
}  # fmt: skip
NUMBER_OUT = {"monitor": "monitor-out", "ipset": "out.set"}

# Defects in code this change does not own (cli/scan.py): kept as strict xfails so that they
# turn into failures to remove once fixed.
SCAN_DEFECTS: dict[str, str] = {}  # case id -> known defect (strict xfail); none left


def _case_ids() -> list[str]:
    ids = [f"{c.name}-{kind}" for c in COMMANDS for kind in INPUT_KINDS]
    ids += [f"{c.name}-{kind}" for c in COMMANDS if c.out for kind in OUTPUT_KINDS]
    ids += ["testbed-truth-" + kind for kind in OUTPUT_KINDS]
    ids += [f"number-{name}" for name in NUMBER_CASES]
    return ids


def _fill(argv: tuple[str, ...], goods: dict[str, Path], values: dict[str, str]) -> list[str]:
    filled = []
    for arg in argv:
        if arg.startswith("{good:"):
            filled.append(str(goods[arg[6:-1]]))
        elif arg in ("{in}", "{out}", "{id}"):
            filled.append(values[arg[1:-1]])
        else:
            filled.append(arg)
    return filled


def _prepare(case_id: str, root: Path, goods: dict[str, Path], number: int) -> Case:
    """The case's scratch directory, its hostile input or output, and its command line."""
    base = root / f"case{number:03d}"
    work, outside = base / "work", base / "outside"
    for folder in (work, outside, work / "tmp", work / "out"):
        folder.mkdir(parents=True)
    (outside / "decoy.txt").write_bytes(OUTSIDE)
    if case_id.startswith("number-"):
        argv = NUMBER_CASES[case_id.removeprefix("number-")]
        command = Command(case_id, argv, "", NUMBER_OUT.get(argv[0]))
        kind = "number"
    elif case_id.startswith("testbed-truth-"):
        kind = case_id.removeprefix("testbed-truth-")
        command = Command(
            "testbed-truth",
            ("testbed", "truth", "--id", "none0", "-o", "{out}"),
            "",
            "truth.parquet",
        )
    else:
        kind = next(k for k in (*OUTPUT_KINDS, *INPUT_KINDS) if case_id.endswith("-" + k))
        command = BY_NAME[case_id.removesuffix("-" + kind)]
    case = Case(case_id, command, kind, work=work, outside=outside)
    values = {"id": f"hz{number:03d}", "in": "", "out": ""}
    case.testbed_id = values["id"]
    if command.good:
        good = goods[command.good]
        values["in"] = str(good)
        if kind in INPUT_KINDS:
            values["in"] = _hostile_input(kind, good, work, outside)
    if command.out:
        case.out_dir = work / "out"
        case.out_path = case.out_dir / command.out
        if command.out == "monitor-out":
            case.out_path.mkdir()
            (case.out_path / "v.fsdb").write_bytes(PRECIOUS)
        else:
            case.out_path.write_bytes(PRECIOUS)
        values["out"] = str(case.out_path)
        if kind == "out-read-only":
            case.read_only = case.out_dir
        elif kind == "out-directory":
            values["out"] = str(case.out_dir)  # an existing directory where a file is due
            if command.out == "monitor-out":
                values["out"] = str(case.out_path / "v.fsdb")  # a file where a directory is due
        elif kind == "out-no-parent":
            values["out"] = str(work / "no" / "such" / "dir" / (command.out or "x"))
            if command.out == "monitor-out":
                (work / "no").write_bytes(b"a file, so no directory can be made under it\n")
    case.argv = _fill(command.argv, goods, values)
    case.before_outside = _snapshot(outside)
    if case.out_dir is not None:
        case.before_out_dir = _snapshot(case.out_dir)
    return case


# -- running ---------------------------------------------------------------------------------

RUNNER = r"""
import importlib, json, os, sys, traceback
import liveness.cli.main as cli_main
from liveness.cli.reach import REACH_SUBCOMMANDS
for module, _ in (*cli_main.SUBCOMMANDS.values(), *REACH_SUBCOMMANDS.values()):
    importlib.import_module("liveness.cli." + module)  # warm: each child starts imported
cases = json.load(sys.stdin)
import gc
gc.freeze()  # children share the imported modules' pages instead of copying them
running = {}
codes = {}
def reap():
    pid, status = os.wait()
    codes[running.pop(pid)] = os.waitstatus_to_exitcode(status)
for case in cases:
    while len(running) >= int(os.environ.get("HOSTILE_JOBS", "4")):
        reap()
    pid = os.fork()
    if pid:
        running[pid] = case["id"]
        continue
    # the child: a process of its own for one command line
    os.chdir(case["cwd"])
    os.environ.update(case["env"])
    import tempfile
    tempfile.tempdir = None
    for fd, name, flags in ((0, os.devnull, os.O_RDONLY),
                            (1, case["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
                            (2, case["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)):
        opened = os.open(name, flags, 0o644)
        os.dup2(opened, fd)
        os.close(opened)
    import signal
    signal.alarm(60)  # a command that hangs (reading /dev/zero) dies of SIGALRM
    sys.argv = ["liveness", *case["argv"]]
    code = 0
    try:
        cli_main.main(case["argv"])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
        code = 99
    # The interpreter's exit, minus tearing 800 modules down: its last flush of stdout, which
    # reports a failure on stderr and makes the status 120.
    try:
        sys.stdout.flush()
    except Exception as exc:
        print(f"Exception ignored while flushing sys.stdout: {exc!r}", file=sys.stderr)
        code = code or 120
    sys.stderr.flush()
    os._exit(code)
while running:
    reap()
print(json.dumps(codes))
"""


def _run_forked(cases: list[Case]) -> dict[str, int]:
    payload = [
        {
            "id": case.id,
            "argv": case.argv,
            "cwd": str(case.work),
            "env": case.env(),
            "stdout": str(case.work.parent / "stdout"),
            "stderr": str(case.work.parent / "stderr"),
        }
        for case in cases
    ]
    done = subprocess.run(
        [sys.executable, "-c", RUNNER],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    codes: dict[str, int] = json.loads(done.stdout)
    return codes


def _run_read_only(case: Case) -> int:
    """Exec the CLI with ``case.read_only`` bind-mounted read-only in a private mount namespace."""
    assert case.read_only is not None
    cli = [sys.executable, "-m", "liveness.cli.main", *case.argv]
    if IS_ROOT:
        argv = ["unshare", "-m", "sh", "-c",
                'mount --bind -o ro "$0" "$0" && exec "$@"', str(case.read_only), *cli]  # fmt: skip
    else:
        case.read_only.chmod(0o555)
        argv = cli
    with (
        open(case.work.parent / "stdout", "wb") as out,
        open(case.work.parent / "stderr", "wb") as err,
    ):
        done = subprocess.run(
            argv,
            cwd=case.work,
            env={**os.environ, **case.env()},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            timeout=120,
        )
    if not IS_ROOT:
        case.read_only.chmod(0o755)
    return done.returncode


def _read_only_possible() -> bool:
    if not IS_ROOT:
        return True
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    return shutil.which("unshare") is not None and probe.returncode == 0


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Case]:
    """Every case prepared, run, and its result attached."""
    root = tmp_path_factory.mktemp("hostile")
    goods = _write_goods(root / "goods")
    before_goods = _snapshot(root / "goods")
    cases = {cid: _prepare(cid, root, goods, i) for i, cid in enumerate(_case_ids())}
    forked = [c for c in cases.values() if c.read_only is None]
    read_only = [c for c in cases.values() if c.read_only is not None]
    with ThreadPoolExecutor(3) as pool:
        forking = pool.submit(_run_forked, forked)
        execs = list(pool.map(_run_read_only, read_only)) if _read_only_possible() else []
        codes = forking.result()
    for case, code in zip(read_only, execs, strict=False):
        codes[case.id] = code
    for case in cases.values():
        if case.id not in codes:
            continue
        base = case.work.parent
        case.result = Result(
            codes[case.id],
            (base / "stdout").read_text(errors="replace"),
            (base / "stderr").read_text(errors="replace"),
            case.out_path,
        )
    goods_case = Case("goods", COMMANDS[0], "", outside=root / "goods")
    goods_case.before_outside = before_goods
    cases["goods"] = goods_case
    return cases


def _params() -> list[Any]:
    return [
        pytest.param(cid, marks=pytest.mark.xfail(strict=True, reason=SCAN_DEFECTS[cid]))
        if cid in SCAN_DEFECTS
        else cid
        for cid in _case_ids()
    ]


@pytest.mark.parametrize("case_id", _params())
def test_hostile_input_is_refused_cleanly(ran: dict[str, Case], case_id: str) -> None:
    case = ran[case_id]
    if case.result is None:
        pytest.skip("read-only mounts are not possible here")
    result = case.result
    check = ACCEPTED.get((case.command.name, case.kind))
    if check is not None:
        check(result)
    else:
        problem = _refused(result)
        assert problem is None, f"{case.argv}: {problem}\nstderr: {result.stderr[:2000]}"
        if case.out_path is not None:
            assert _snapshot(case.out_dir or case.work) == case.before_out_dir, (
                "the earlier output changed, or something was left beside it"
            )
    assert _snapshot(case.outside) == case.before_outside, "a file outside the scratch dir changed"
    assert not any((case.work / "tmp").iterdir()), "temporary files left in TMPDIR"
    if case.command.name == "testbed-up":
        assert not (case.work / "testbed-state").exists() or not any(
            (case.work / "testbed-state").iterdir()
        ), "a bad spec left a testbed record"
        netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert f"lv{case.testbed_id}-" not in netns, "a bad spec built namespaces"


def _refused(result: Result) -> str | None:
    """None when the run is a clean refusal (exit 2, one short line on stderr), else why not."""
    lines = result.stderr.strip().splitlines()
    if "Traceback" in result.stderr:
        return "a traceback"
    if result.code != 2:
        return f"exit status {result.code}, not 2"
    if len(lines) != 1 or not lines[0].startswith("liveness: error: "):
        return f"{len(lines)} lines on stderr, not one error line"
    if len(result.stderr) > MAX_STDERR:
        return f"{len(result.stderr)} bytes on stderr"
    return None


def test_the_good_inputs_are_untouched(ran: dict[str, Case]) -> None:
    """No case wrote into the shared good inputs (they are outside every scratch directory)."""
    goods = ran["goods"]
    assert _snapshot(goods.outside) == goods.before_outside


# -- the one-line contract itself (cli/main.py) ---------------------------------------------


def test_one_line_joins_and_shortens() -> None:
    from liveness.cli.main import ERROR_CHARS, one_line

    assert one_line("a\n  b\r\nc") == "a b c"
    long = one_line("head " + "x" * 10_000 + " tail")
    assert len(long) <= ERROR_CHARS + 3 and long.startswith("head ") and long.endswith(" tail")


def test_usage_errors_and_bugs_are_one_line_and_debug_shows_the_traceback(tmp_path: Path) -> None:
    cli = [sys.executable, "-m", "liveness.cli.main"]
    usage = subprocess.run([*cli, "ipset", "count"], capture_output=True, text=True)
    assert usage.returncode == 2 and len(usage.stderr.strip().splitlines()) == 1
    assert "ipset count" in usage.stderr and "-h" in usage.stderr
    unknown = subprocess.run([*cli, "analyze", "--nosuch"], capture_output=True, text=True)
    assert unknown.returncode == 2 and len(unknown.stderr.strip().splitlines()) == 1
    summary = tmp_path / "s.json"
    summary.write_text("[" * 100_000)  # json's recursion limit: refused as input, not a crash
    deep = subprocess.run(
        [*cli, "report", "--summary", str(summary), "-o", str(tmp_path / "r.html")],
        capture_output=True,
        text=True,
    )
    assert deep.returncode == 2 and len(deep.stderr.strip().splitlines()) == 1
    debug = subprocess.run(
        [*cli, "--debug", "report", "--summary", str(summary), "-o", str(tmp_path / "r.html")],
        capture_output=True,
        text=True,
    )
    assert debug.returncode == 1 and "Traceback" in debug.stderr
