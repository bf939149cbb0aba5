"""A small hand-made ``--app-layer`` scan (both families) for the application-layer tests,
whose answers are worked out by hand in ``test_analysis_app_layer.py``.

IPv4 hosts (198.18.0.x):
  .1   SYN-ACK on 80, HTTP data (valid); RST on 22; a valid DNS answer (UDP app_valid)
  .2   SYN-ACK on 22, SSH banner (valid); echo reply
  .3   SYN-ACK on 443, TLS data (valid)
  .4   SYN-ACK on 7547 and 22: HTTP on 7547 (valid) and HTTP on 22 (unexpected, not valid)
  .5   SYN-ACK on 443: ACKs our ClientHello, then an SSH banner (unexpected, not valid)
  .6   SYN-ACK on 80, then resets the connection after our GET (app_rst)
  .7   SYN-ACK on 23, ACKs (the banner profile sends nothing: a pure ACK), no data
  .8   SYN-ACK on 80, no answer to the follow-up at all
  .9   tarpit (SYN-ACK on the five ports and the random port), no service: app_rst on 80
  .10  tarpit-like, but serves HTTP on 80 (valid): not a tarpit
  .11  tarpit-like, ACKs our GET on the random port, data nowhere
  .12  SYN-ACK on 23, Telnet negotiation (valid)
  .13  SYN-ACK on 8080 (outside the default ports), HTTP (valid; unexpected there)
IPv6 hosts (2001:2::x):
  ::1  SYN-ACK on 80, HTTP (valid)
  ::2  SYN-ACK on 22 and 443: SSH banner on 22 (valid), nothing on 443
  ::9  tarpit with no service (no application row at all)
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from liveness.output.schema import APP_CATEGORIES, REPLY_SCHEMA

#: (probe, address, reply, app_valid, app_proto); the address is the target and responder
AppRow = tuple[str, str, str, bool, str]

_FLAGS = {"synack": 0x12, "rst": 0x14, "app_data": 0x18, "app_ack": 0x10, "app_rst": 0x04}
_BANNERS = {
    "http": b"HTTP/1.1 200 OK\r\nServer: test\r\n",
    "tls": b"\x16\x03\x03\x00\x5d\x02\x00\x00\x59\x03\x03",
    "ssh": b"SSH-2.0-OpenSSH_9.6\r\n",
    "telnet": b"\xff\xfb\x01\xff\xfb\x03",
}
_PORTS = ("22", "23", "80", "443", "7547", "random")
N = "198.18.0."
S = "2001:2::"

ROWS4: list[AppRow] = [
    ("tcp_syn:80", N + "1", "synack", False, ""),
    ("tcp_syn:80", N + "1", "app_data", True, "http"),
    ("tcp_syn:22", N + "1", "rst", False, ""),
    ("udp_dns", N + "1", "udp", True, ""),
    ("tcp_syn:22", N + "2", "synack", False, ""),
    ("tcp_syn:22", N + "2", "app_data", True, "ssh"),
    ("icmp_echo", N + "2", "echo_reply", False, ""),
    ("tcp_syn:443", N + "3", "synack", False, ""),
    ("tcp_syn:443", N + "3", "app_data", True, "tls"),
    ("tcp_syn:7547", N + "4", "synack", False, ""),
    ("tcp_syn:7547", N + "4", "app_data", True, "http"),
    ("tcp_syn:22", N + "4", "synack", False, ""),
    ("tcp_syn:22", N + "4", "app_data", False, "http"),
    ("tcp_syn:443", N + "5", "synack", False, ""),
    ("tcp_syn:443", N + "5", "app_ack", False, ""),
    ("tcp_syn:443", N + "5", "app_data", False, "ssh"),
    ("tcp_syn:80", N + "6", "synack", False, ""),
    ("tcp_syn:80", N + "6", "app_rst", False, ""),
    ("tcp_syn:23", N + "7", "synack", False, ""),
    ("tcp_syn:23", N + "7", "app_ack", False, ""),
    ("tcp_syn:80", N + "8", "synack", False, ""),
    *[(f"tcp_syn:{p}", N + "9", "synack", False, "") for p in _PORTS],
    ("tcp_syn:80", N + "9", "app_rst", False, ""),
    *[(f"tcp_syn:{p}", N + "10", "synack", False, "") for p in _PORTS],
    ("tcp_syn:80", N + "10", "app_data", True, "http"),
    *[(f"tcp_syn:{p}", N + "11", "synack", False, "") for p in _PORTS],
    ("tcp_syn:random", N + "11", "app_ack", False, ""),
    ("tcp_syn:23", N + "12", "synack", False, ""),
    ("tcp_syn:23", N + "12", "app_data", True, "telnet"),
    ("tcp_syn:8080", N + "13", "synack", False, ""),
    ("tcp_syn:8080", N + "13", "app_data", True, "http"),
]
ROWS6: list[AppRow] = [
    ("tcp_syn:80", S + "1", "synack", False, ""),
    ("tcp_syn:80", S + "1", "app_data", True, "http"),
    ("tcp_syn:22", S + "2", "synack", False, ""),
    ("tcp_syn:443", S + "2", "synack", False, ""),
    ("tcp_syn:22", S + "2", "app_data", True, "ssh"),
    *[(f"tcp_syn:{p}", S + "9", "synack", False, "") for p in _PORTS],
]
#: Both families, interleaved as a dual-stack scan writes them.
ROWS: list[AppRow] = [
    *[row for pair in zip(ROWS4[: len(ROWS6)], ROWS6, strict=True) for row in pair],
    *ROWS4[len(ROWS6) :],
]


def without_app_rows(rows: Sequence[AppRow]) -> list[AppRow]:
    """The rows a scan without ``--app-layer`` would have written (the SYNs' answers)."""
    return [row for row in rows if row[2] not in APP_CATEGORIES]


def app_table(rows: Sequence[AppRow]) -> pa.Table:
    """A full-schema reply table of ``rows`` (IPv6 rows where the address has a colon)."""
    columns: dict[str, list[Any]] = {name: [] for name in REPLY_SCHEMA.names}
    for i, (probe, address, reply, app_valid, app_proto) in enumerate(rows):
        ipv6 = ":" in address
        port = probe.split(":")[1] if ":" in probe else "0"
        app = reply in APP_CATEGORIES
        columns["ts"].append(1_000_000 * i)
        columns["probe"].append(probe)
        columns["target"].append(0 if ipv6 else int(ipaddress.IPv4Address(address)))
        columns["responder"].append(0 if ipv6 else int(ipaddress.IPv4Address(address)))
        columns["reply"].append(reply)
        columns["icmp_type"].append((129 if ipv6 else 0) if reply == "echo_reply" else -1)
        columns["icmp_code"].append(0 if reply == "echo_reply" else -1)
        columns["tcp_flags"].append(_FLAGS.get(reply, 0))
        columns["ttl"].append(64)
        columns["ipid"].append(0 if ipv6 else i)
        columns["sport"].append(40000 if port == "random" else int(port))
        columns["dport"].append(50000)
        columns["attempt"].append(0)
        columns["repeat"].append(False)
        columns["app_valid"].append(app_valid)
        columns["vp"].append("vp0")
        columns["af"].append(6 if ipv6 else 4)
        columns["target6"].append(ipaddress.IPv6Address(address).packed if ipv6 else None)
        columns["responder6"].append(ipaddress.IPv6Address(address).packed if ipv6 else None)
        columns["app_active"].append(reply in ("app_data", "app_ack"))
        columns["app_proto"].append(app_proto if app else "")
        columns["banner"].append(_BANNERS.get(app_proto) if reply == "app_data" else None)
    return pa.Table.from_pydict(columns, schema=REPLY_SCHEMA)
