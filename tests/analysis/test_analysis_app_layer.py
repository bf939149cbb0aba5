"""Analysis 10, the TCP application layer, on the hand-made ``--app-layer`` scan of
``app_rows.py`` (its hosts are listed there), with every answer worked out by hand below; and
what the application rows must not change: every earlier analysis."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from app_rows import ROWS, ROWS4, app_table, without_app_rows

from liveness.analysis import ANALYSES, summarize, summarize_table
from liveness.analysis.tables import format_headline

KEYS = (*ANALYSES, "probes", "address_map")
KEYS6 = (*ANALYSES, "probes", "prefixes")


@pytest.fixture(scope="module")
def summary(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("app") / "scan.parquet"
    pq.write_table(app_table(ROWS), path)
    return summarize([str(path)])


def test_app_layer_is_in_every_family_section(summary: dict[str, Any]) -> None:
    assert json.loads(json.dumps(summary)) == summary
    assert summary["app_layer"] == summary["ipv4"]["app_layer"]
    assert summary["app_layer"]["scanned"] is True
    assert summary["ipv6"]["app_layer"]["scanned"] is True
    assert summary["app_layer"]["replies"] == {"app_data": 9, "app_ack": 3, "app_rst": 2}
    assert summary["app_layer"]["other_ports"] == ["tcp_syn:8080"]
    assert list(summary["app_layer"]["ports"]) == [
        "22",
        "23",
        "80",
        "443",
        "7547",
        "random",
        "other",
    ]


def _counts(entry: dict[str, Any]) -> tuple[int, ...]:
    keys = ("transport_alive", "app_active", "app_alive", "sent_data", "ack_only")
    return tuple(entry[k] for k in (*keys, "reset_only", "no_answer"))


def test_per_port_transport_vs_application(summary: dict[str, Any]) -> None:
    ports = summary["app_layer"]["ports"]
    # SYN-ACK, app-active, app-alive, sent data, ACK only, reset after payload, no answer
    assert _counts(ports["22"]) == (5, 2, 1, 2, 0, 0, 3)  # .2 .4 .9 .10 .11; SSH .2, HTTP .4
    assert _counts(ports["23"]) == (5, 2, 1, 1, 1, 0, 3)  # ACK .7, Telnet .12
    assert _counts(ports["80"]) == (6, 2, 2, 2, 0, 2, 2)  # HTTP .1 .10; RST .6 .9; .8 .11
    assert _counts(ports["443"]) == (5, 2, 1, 2, 0, 0, 3)  # TLS .3; .5 ACKs, then SSH
    assert _counts(ports["7547"]) == (4, 1, 1, 1, 0, 0, 3)  # HTTP .4
    assert _counts(ports["random"]) == (3, 1, 0, 0, 1, 0, 2)  # .11 ACKs
    assert _counts(ports["other"]) == (1, 1, 1, 1, 0, 0, 0)  # .13 on 8080
    assert ports["22"]["data_not_valid"] == 1 and ports["443"]["data_not_valid"] == 1
    assert ports["80"]["shrink_alive"] == pytest.approx(4 / 6)
    assert ports["22"]["shrink_alive"] == pytest.approx(4 / 5)
    assert ports["22"]["shrink_active"] == pytest.approx(3 / 5)
    assert ports["random"]["shrink_alive"] == 1.0 and ports["other"]["shrink_active"] == 0.0
    assert ports["23"]["app_alive_share"] == pytest.approx(1 / 5)


def test_without_the_no_service_tarpit(summary: dict[str, Any]) -> None:
    ports = summary["app_layer"]["ports"]
    for port, alive in (("22", 4), ("23", 4), ("80", 5), ("443", 4), ("7547", 3), ("random", 2)):
        assert ports[port]["without_no_service_tarpits"]["transport_alive"] == alive, port
    port80 = ports["80"]["without_no_service_tarpits"]
    assert (port80["app_active"], port80["app_alive"]) == (2, 2)
    assert port80["shrink_alive"] == pytest.approx(3 / 5)
    assert ports["other"]["without_no_service_tarpits"]["transport_alive"] == 1


def test_services_on_unexpected_ports(summary: dict[str, Any]) -> None:
    ports = summary["app_layer"]["ports"]
    assert ports["22"]["expected_protocol"] == "ssh"
    assert ports["22"]["unexpected"] == {"http": 1, "tls": 0, "telnet": 0}  # .4's HTTP
    assert ports["443"]["unexpected"] == {"http": 0, "ssh": 1, "telnet": 0}  # .5's SSH
    assert ports["7547"]["unexpected"] == {"tls": 0, "ssh": 0, "telnet": 0}  # HTTP expected
    assert ports["random"]["expected_protocol"] is None
    assert ports["other"]["unexpected"]["http"] == 1  # every known protocol is unexpected
    assert [ports[p]["unexpected_addresses"] for p in ports] == [1, 0, 0, 1, 0, 0, 1]
    assert ports["443"]["protocols"] == {
        "http": 0,
        "tls": 1,
        "ssh": 1,
        "telnet": 0,
        "text": 0,
        "binary": 0,
        "other": 0,
    }
    assert ports["23"]["protocols"]["telnet"] == 1


def test_tarpits_with_and_without_a_service(summary: dict[str, Any]) -> None:
    pits = summary["app_layer"]["tarpits"]
    assert pits["tarpits"] == summary["tarpits"]["tarpits"] == 3  # .9 .10 .11
    assert (pits["no_service"], pits["ack_only"], pits["serves_data"]) == (1, 1, 1)
    assert pits["no_service_blocks"] == 1


def test_headline_synack_without_a_service(summary: dict[str, Any]) -> None:
    head = summary["app_layer"]["headline"]
    assert head["synack_any_port"] == 13  # every host but none: .1 .. .13
    assert head["app_active_any_port"] == 10 and head["app_alive_any_port"] == 7
    assert head["synack_without_service"] == 3  # .6 (reset), .8 (silent), .9 (tarpit)
    assert head["synack_without_service_share"] == pytest.approx(3 / 13)
    assert head["synack_without_service_not_tarpits"] == 2
    assert head["no_service_tarpits"] == 1


def test_ipv6_section(summary: dict[str, Any]) -> None:
    app6 = summary["ipv6"]["app_layer"]
    assert app6["replies"] == {"app_data": 2, "app_ack": 0, "app_rst": 0}
    assert _counts(app6["ports"]["80"]) == (2, 1, 1, 1, 0, 0, 1)  # ::1 HTTP, ::9 tarpit
    assert _counts(app6["ports"]["22"]) == (2, 1, 1, 1, 0, 0, 1)  # ::2 SSH
    assert _counts(app6["ports"]["443"]) == (2, 0, 0, 0, 0, 0, 2)
    assert app6["ports"]["443"]["without_no_service_tarpits"]["transport_alive"] == 1
    assert app6["tarpits"] == {
        "tarpits": 1,
        "no_service": 1,
        "ack_only": 0,
        "serves_data": 0,
        "no_service_blocks": 1,
    }
    assert app6["headline"]["synack_without_service"] == 1  # ::9
    assert app6["headline"]["synack_without_service_not_tarpits"] == 0


def test_app_rows_leave_every_earlier_analysis_as_it_is(summary: dict[str, Any]) -> None:
    """The same scan without ``--app-layer`` (the SYNs' answers only): the same figures; an
    ``app_rst`` is no transport RST, an ``app_data`` row no ICMP error."""
    plain = summarize_table(app_table(without_app_rows(ROWS)), "plain")
    for key in KEYS:
        assert plain[key] == summary[key], key
    for key in KEYS6:
        assert plain["ipv6"][key] == summary["ipv6"][key], key
    assert plain["app_layer"] == {"scanned": False}
    assert plain["ipv6"]["app_layer"] == {"scanned": False}
    transport = summary["transport"]  # .1's RST on 22 only: .6's and .9's app_rst are none
    assert (transport["synack_only"], transport["rst_only"], transport["both"]) == (11, 0, 1)
    assert summary["probes"]["tcp_syn:80"]["rst"] == 0
    assert summary["probes"]["tcp_syn:80"]["replies"] == 6  # the SYN-ACKs only
    assert summary["icmp_errors"]["families"]["tcp"]["any_error"] == {"targets": 0, "replies": 0}
    assert summary["application"]["udp_dns"]["alive"] == 1  # app_valid keeps its UDP meaning


def test_ipv4_only_scan_has_no_ipv6_section(tmp_path: Path) -> None:
    got = summarize_table(app_table(ROWS4), "ipv4")
    assert got["ipv6"] is None
    assert got["app_layer"]["headline"]["synack_without_service"] == 3


def test_terminal_table(summary: dict[str, Any]) -> None:
    text = format_headline(summary)
    assert "application layer on TCP (IPv4)" in text and "application layer on TCP (IPv6)" in text
    lines = text.splitlines()
    row22 = next(line for line in lines if line.startswith("22 "))
    assert row22.split()[:7] == ["22", "ssh", "5", "2", "1", "80.0%", "75.0%"]
    assert row22.endswith("http 1")
    row443 = next(line for line in lines if line.startswith("443 "))
    assert row443.endswith("ssh 1")
    assert any("SYN-ACK without a service" in line and "3 of 13 (23.1%)" in line for line in lines)
    assert any("no service (tarpit or ACKing middlebox)" in line for line in lines)


def test_terminal_says_when_not_measured() -> None:
    plain = summarize_table(app_table(without_app_rows(ROWS4)), "plain")
    text = format_headline(plain)
    assert "application layer on TCP: not measured (no --app-layer answers" in text
    assert "SYN-ACK without a service" not in text
    old = {k: v for k, v in plain.items() if k != "app_layer"}  # a summary from before
    assert "application layer" not in format_headline(old)
