"""ZMap's flags where the idea is the same: -M with its module names, --probe-args for dns,
--probe-ttl, -s/--source-port, --notes/--user-metadata (on a live scan in
tests/scan/test_scan_dualstack.py), and the listings. Checked through dry runs, with the frames
read back by tshark (an independent decoder) where bytes matter."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

LIVENESS = [sys.executable, "-m", "liveness.cli.main"]
needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark missing")


def run(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LIVENESS, *argv], capture_output=True, text=True, cwd=cwd, check=False)


@pytest.fixture
def allow(tmp_path: Path) -> Path:
    path = tmp_path / "allow.txt"
    path.write_text("198.18.0.0/15\n2001:2::/48\n")
    return path


def dry_json(tmp_path: Path, allow: Path, *argv: str) -> dict[str, object]:
    done = run("scan", "-d", "-w", str(allow), "--json", "--retransmit-delay", "0", *argv,
               cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


@pytest.mark.parametrize(
    ("module", "extra", "probes"),
    [
        ("icmp_echoscan", [], ["icmp_echo"]),
        ("tcp_synscan", ["-p", "22,443"], ["tcp_syn:22", "tcp_syn:443"]),
        ("ntp", [], ["udp_ntp"]),
        ("dns", [], ["udp_dns"]),
        ("dns", ["--probe-args", "AAAA,example.com"], ["udp_dns"]),
        ("udp", ["-p", "161,1900"], ["udp:161:snmp", "udp:1900:ssdp"]),
        ("udp", ["-p", "9", "--probe-args", "text:hi"], ["udp:9"]),
    ],
)
def test_zmap_module_names_map_onto_probes(
    tmp_path: Path, allow: Path, module: str, extra: list[str], probes: list[str]
) -> None:
    result = dry_json(tmp_path, allow, "-M", module, *extra, "198.18.0.0/30")
    assert result["probes"] == probes
    assert result["frames"] == 4 * len(probes)


@needs_tshark
def test_dns_probe_args_and_probe_ttl_are_on_the_wire(tmp_path: Path, allow: Path) -> None:
    pcap = tmp_path / "dns.pcap"
    dry_json(tmp_path, allow, "-M", "dns", "--probe-args", "AAAA,example.com", "--probe-ttl",
             "7", "--pcap-out", str(pcap), "198.18.0.0/30", "2001:2::/127")  # fmt: skip
    fields = ["ip.ttl", "ipv6.hlim", "dns.qry.name", "dns.qry.type"]
    argv = ["tshark", "-n", "-r", str(pcap), "-T", "fields"]
    argv += [arg for name in fields for arg in ("-e", name)]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    rows = [line.split("\t") for line in out.splitlines() if line]
    assert len(rows) == 6
    assert {(ttl or hlim, name, qtype) for ttl, hlim, name, qtype in rows} == {
        ("7", "example.com", "28")
    }


def test_notes_and_user_metadata_reach_the_metadata_settings(tmp_path: Path) -> None:
    from liveness.cli.scan import _describe

    assert _describe("a note", '{"campaign": 3}') == {
        "notes": "a note",
        "user_metadata": {"campaign": 3},
    }
    assert _describe(None, None) == {}


def _refused_in_one_line(tmp_path: Path, allow: Path, argv: list[str], message: str) -> None:
    """A dry run with ``argv`` exits 2 with one line holding ``message``, no traceback."""
    done = run("scan", "-d", "-w", str(allow), *argv, "198.18.0.0/30", cwd=tmp_path)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-M", "udp"], "needs ports"),
        (["-M", "udp", "-p", "161", "--probe-args", "hex:0"], "hex digits"),
        (["-M", "tcp_synscan"], "needs ports"),
        (["-M", "xmas"], "unknown module"),
        (["-M", "dns", "--probe-args", "A"], "TYPE,NAME"),
        (["-M", "ntp", "--probe-args", "x"], "takes no probe arguments"),
        (["--probe-args", "A,x"], "needs -M"),
        (["-M", "ntp", "--probes", "icmp_echo"], "exclude each other"),
        (["--probe-ttl", "0"], "1..255"),
        (["--user-metadata", "{nope"], "not JSON"),
    ],
)
def test_bad_zmap_flags_say_what_is_wrong(
    tmp_path: Path, allow: Path, argv: list[str], message: str
) -> None:
    _refused_in_one_line(tmp_path, allow, argv, message)


def test_the_listings_name_every_probe_module_and_field(tmp_path: Path) -> None:
    done = run("scan", "--list-probe-modules", "--list-output-fields", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    listing = json.loads(done.stdout)
    assert {"icmp_echo", "tcp_syn", "udp_dns", "udp_ntp", "icmp_timestamp"} <= set(
        listing["probes"]
    )
    assert set(listing["zmap_modules"]) == {"icmp_echoscan", "tcp_synscan", "dns", "ntp", "udp"}
    assert {"saddr", "daddr", "classification", "target6", "af"} <= set(listing["fields"])
    assert listing["fields"]["target6"] == "addr6"
    text = run("scan", "--list-output-fields", cwd=tmp_path)
    assert text.returncode == 0 and "saddr (addr)" in text.stdout.splitlines()


@needs_tshark
def test_source_ports_are_kept_and_decode_needs_the_same_range(tmp_path: Path, allow: Path) -> None:
    """``-s 40000-40009``: every probe leaves from that range, and the replies to it validate
    under ``decode -s`` with the same range, not under the default one."""
    from liveness.net.pcap import read_pcap, write_pcap
    from liveness.probes.synth import synthesize

    pcap = tmp_path / "sent.pcap"
    flags = ["-s", "40000-40009", "-e", "9", "-S", "198.18.255.1", "--probes", "tcp_syn:80"]
    result = dry_json(tmp_path, allow, *flags, "--pcap-out", str(pcap), "198.18.0.0/26")
    out = subprocess.run(
        ["tshark", "-n", "-r", str(pcap), "-T", "fields", "-e", "tcp.srcport"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    ports = {int(p) for p in out.split()}
    assert len(out.split()) == result["frames"] == 64 and ports <= set(range(40000, 40010))
    sent, _ = read_pcap(pcap)
    write_pcap(tmp_path / "replies.pcap", synthesize(sent.frames, "synack"))
    common = ["decode", str(tmp_path / "replies.pcap"), "-e", "9", "-S", "198.18.255.1"]
    common += ["--probes", "tcp_syn:80", "--max-attempts", "1", "--json"]
    same = json.loads(run(*common, "-s", "40000-40009", cwd=tmp_path).stdout)
    default = json.loads(run(*common, cwd=tmp_path).stdout)
    assert same["records"] == 64
    assert default["records"] == 0 and default["counters"]["validation_failed"] == 64


@pytest.mark.parametrize(
    ("ports", "message"),
    [("40000", "cannot tell 2 transmissions"), ("9-3", "low end first"), ("x", "not a port")],
)
def test_bad_source_ports(tmp_path: Path, allow: Path, ports: str, message: str) -> None:
    done = run("scan", "-d", "-w", str(allow), "-s", ports, "198.18.0.0/30", cwd=tmp_path)
    assert done.returncode == 2 and message in done.stderr


# -- -O, -N, --min-hitrate, --no-header-row, --help (their effect on a scan: tests/scan/
# test_scan_zmap_limits.py through the in-memory transport, test_scan_zmap_live.py on the
# testbed) -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-O", "xml"], "-O/--output-module: 'xml' is not one of csv, json, parquet"),
        (["-O", "parquet", "-o", "-"], "parquet cannot stream to stdout"),
        (["-N", "-1"], "-N/--max-results: -1 must be a count >= 0"),
        (["-N", "ten"], "'ten' is not a valid integer"),
        (["--min-hitrate", "101"], "--min-hitrate: 101.0 must be a percentage within 0..100"),
        (["--min-hitrate", "-1"], "within 0..100"),
        (["--min-hitrate", "nan"], "within 0..100"),
    ],
)
def test_bad_run_limits_say_what_is_wrong(
    tmp_path: Path, allow: Path, argv: list[str], message: str
) -> None:
    _refused_in_one_line(tmp_path, allow, argv, message)


def test_a_dry_run_accepts_the_run_limits(tmp_path: Path, allow: Path) -> None:
    result = dry_json(tmp_path, allow, "-O", "json", "-o", "-", "-N", "5", "--min-hitrate", "2.5",
                      "--no-header-row", "198.18.0.0/30")  # fmt: skip
    assert result["frames"] == 4 * 9


def test_run_limits_reach_the_scan_settings(monkeypatch: pytest.MonkeyPatch, allow: Path) -> None:
    """-O, --no-header-row, -N and --min-hitrate as the scan loop receives them (0 is ZMap's
    "no cap" for -N and "never abort" for --min-hitrate)."""
    from liveness.cli import scan as cli_scan
    from liveness.scan import loop

    seen: list[loop.ScanSettings] = []

    def fake_run_scan(settings: loop.ScanSettings) -> dict[str, object]:
        seen.append(settings)
        return {}

    monkeypatch.setattr(loop, "run_scan", fake_run_scan)
    monkeypatch.setattr(cli_scan, "preflight_outputs", lambda live: None)
    monkeypatch.setattr(os, "geteuid", lambda: 0)  # nothing is sent: run_scan is faked
    options = cli_scan.parse_options(
        ("198.18.0.0/30",), target_ports=None, probes="icmp_echo", allowlist_file=str(allow),
        blocklist_file=None, list_of_ips_file=None, seed=1, shards=1, shard=0, max_targets=None,
        source_ip="198.18.0.9", source_mac="02:00:00:00:00:01", gateway_mac="02:00:00:00:00:02",
        retransmit_delay=0, vp="", batch_size=64, dryrun=True, interface="lo",
    )  # fmt: skip

    def live(**kw: object) -> object:
        return cli_scan.RunOptions(
            output="-", rate_text=None, bandwidth_text=None, max_runtime=None, cooldown=1.0,
            fields=None, output_filter=None, resume=False, quiet=True, status_csv=None,
            metadata=None, copies=1, max_sendto_failures=None, **kw,  # type: ignore[arg-type]
        )  # fmt: skip

    chosen = live(output_module="json", header=False, max_results=7, min_hitrate=2.5)
    off = live(max_results=0, min_hitrate=0.0)
    for run_options in (chosen, off):
        assert isinstance(run_options, cli_scan.RunOptions)
        cli_scan.check_live_options(run_options, options.probes)
        cli_scan.run_live(options, run_options)
    first, second = seen
    assert (first.output_module, first.header, first.max_results, first.min_hitrate) == (
        "json",
        False,
        7,
        2.5,
    )
    assert (second.output_module, second.header, second.max_results, second.min_hitrate) == (
        None,
        True,
        None,
        None,
    )


def test_help_groups_every_option_as_zmaps_man_page(tmp_path: Path) -> None:
    from liveness.cli.scan import HELP_SECTIONS, command

    done = run("scan", "--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    text = done.stdout
    titles = ["Basic options:", "Scan options:", "Network options:", "Probe options:",
              "Output options:", "Advanced options:"]  # fmt: skip
    at = [text.index(f"\n{title}\n") for title in titles]
    assert at == sorted(at)  # in the man page's order
    sections = {
        title: text[start:end]
        for title, start, end in zip(titles, at, [*at[1:], None], strict=True)
    }
    for title, flags in {
        "Basic options:": ["-p, --target-ports", "-o, --output-file", "-w, --allowlist-file"],
        "Scan options:": ["-r, --rate", "-n, --max-targets", "-N, --max-results", "--shards"],
        "Network options:": ["-s, --source-port", "-S, --source-ip", "-i, --interface"],
        "Probe options:": ["-M, --probe-module", "--probe-args", "--probe-ttl"],
        "Output options:": ["-O, --output-module", "--no-header-row", "-f, --output-fields",
                            "-m, --metadata-file", "--notes"],
        "Advanced options:": ["--min-hitrate", "--max-sendto-failures", "--help"],
    }.items():  # fmt: skip
        for flag in flags:
            assert flag in sections[title], (flag, title)
    grouped = [name for names in HELP_SECTIONS.values() for name in names]
    assert len(grouped) == len(set(grouped))
    visible = {p.name for p in command.params if not getattr(p, "hidden", False)}
    visible -= {"targets"}  # the argument, shown in the usage line
    assert visible <= set(grouped) | {"help"}, visible - set(grouped)
    for param in command.params:  # every existing option is still listed
        if not getattr(param, "hidden", False) and param.name != "targets":
            assert param.opts[-1] in text, param.opts
