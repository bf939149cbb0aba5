"""``write_report``: one self-contained HTML file of a summary (inline PNG figures, tables).

With IPv6 rows the report opens with the families side by side, then gives each family the
same sections (the TCP application layer of ``--app-layer`` scans among them, or a line saying
the input had none); IPv6 has the prefix picture (:mod:`.prefixes6`) where IPv4 has its address map.

Nothing is fetched at view time: figures are base64 PNG, the style is inline, and the summary
itself is embedded as JSON (in a collapsed section) so the numbers travel with the report.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from liveness import __version__
from liveness.analysis import figures
from liveness.analysis.study import comparison_rows
from liveness.analysis.tables import APP_LAYER_HEADERS, app_layer_rows, percent
from liveness.analysis.taxonomy import APP_PROTOS
from liveness.errors import RunError
from liveness.output.html import html_table, page_start, png_figure

__all__ = ["render_report", "write_report"]


_table = html_table


def _figure(draw: Callable[[dict[str, Any]], bytes], summary: dict[str, Any], caption: str) -> str:
    return png_figure(draw(summary), caption)


_DEFINITIONS = """
<h2>Definitions</h2><ul>
<li><b>Alive</b> (network layer): the address sent an IP packet in reply: echo reply, SYN-ACK,
RST, UDP payload, or an ICMP error it sourced itself. An ICMP error from a router makes the
router alive, not the probed address. <b>All</b>: alive for any probe.</li>
<li><b>Positive</b> replies: in the probe's own protocol (echo reply, SYN-ACK, RST, UDP);
<b>negative</b> replies: RST and ICMP errors.</li>
<li><b>Transport-active</b>: SYN-ACK or RST from one of the five probed TCP ports;
<b>transport-alive</b> on a port: SYN-ACK from it. <b>Tarpit</b>: SYN-ACK on all five ports
and on a random high port.</li>
<li><b>Application-active</b>: any UDP payload to the DNS or NTP probe;
<b>application-alive</b>: a valid DNS response or NTP server reply.</li>
<li><b>Application layer on TCP</b> (<code>--app-layer</code>): after a SYN-ACK the scan
completes the handshake statelessly with the port profile's payload (an HTTP GET, a TLS
ClientHello, or nothing: wait for a banner). <b>App-active</b> on a port: answered with data or
an ACK of our payload; <b>app-alive</b>: data in the profile's protocol (HTTP, TLS, or an SSH,
Telnet or text banner). <b>Shrink</b>: 1 - app-alive (or app-active) / SYN-ACK addresses, how
much a port's service population shrinks once a SYN-ACK is no longer taken as a service.
<b>No-service tarpit</b>: a tarpit app-active on no port (a tarpit or an ACKing middlebox);
a tarpit that sent data on some port serves data and is no tarpit. <b>Unexpected
services</b>: HTTP, TLS, SSH or Telnet where the port expects another (22 SSH, 23 Telnet,
80 and 7547 HTTP, 443 TLS; the random port expects none).</li>
<li><b>Active</b> in the conditional matrix: echo reply (ICMP), SYN-ACK or RST (TCP port),
any UDP payload (DNS, NTP).</li>
<li><b>Found only by retransmission</b>: replied to a probe's retransmissions but never to its
first attempt.</li>
<li>Address map layers, highest first: application-alive; transport-alive (SYN-ACK, or a UDP
payload); transport-active (also RST); network-alive; silent.</li>
</ul>
"""


def _metadata_section(summary: dict[str, Any], metadata: dict[str, Any] | None) -> str:
    rows: list[tuple[str, Any]] = [
        ("generated", datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")),
        ("liveness version", __version__),
    ]
    for key, value in (metadata or {}).items():
        shown = value if isinstance(value, str | int | float) else json.dumps(value, default=str)
        rows.append((str(key), shown))
    inputs = summary["inputs"]
    files = [(f["path"], f["rows"], f["error"] or "ok") for f in inputs["files"]]
    return (
        "<h2>Scan metadata</h2>"
        + _table(("field", "value"), rows)
        + _table(("input file", "rows", "status"), files)
    )


def _headline_section(summary: dict[str, Any]) -> str:
    head, rk = summary["headline"], summary["reply_kinds"]
    rows = [
        ("alive addresses (all probes)", head["all_alive"], ""),
        ("alive by ICMP echo", head["icmp_alive"], ""),
        (
            "added by TCP+UDP over ICMP alone",
            head["tcp_udp_added_over_icmp"],
            percent(head["tcp_udp_gain_over_icmp"]),
        ),
        (
            "added by negative replies (RST, ICMP errors)",
            head["negative_only_added"],
            percent(head["negative_gain_over_positive"]),
        ),
        (
            "revealed only by ICMP errors",
            rk["errors_only_all"],
            percent(rk["errors_only_share_of_all"]),
        ),
        ("transport-active", head["transport_active"], ""),
        (
            "transport-active on all five ports",
            head["transport_active_all_five_ports"],
            percent(head["all_five_ports_share_of_transport_active"]),
        ),
        ("tarpits", summary["tarpits"]["tarpits"], ""),
    ]
    app = summary.get("app_layer")
    if isinstance(app, dict) and app.get("scanned"):
        rows.append(
            (
                "SYN-ACK without a service (of the SYN-ACKing)",
                app["headline"]["synack_without_service"],
                percent(app["headline"]["synack_without_service_share"]),
            )
        )
    return "<h2>Headline</h2>" + _table(("figure", "addresses", "share"), rows)


def _study_section(summary: dict[str, Any]) -> str:
    """The study's figures beside this scan's and the testbed truth's (``study_comparison``,
    written by ``liveness demo``); empty when the summary has none."""
    comparison = summary.get("study_comparison")
    if not isinstance(comparison, dict) or not comparison:
        return ""
    rows = comparison_rows({k: v for k, v in comparison.items() if isinstance(v, dict)})
    return (
        "<h2>Compared with the study</h2><p>Bano et al., CCR 2018: each figure as published, "
        "as this scan found it, and as the testbed's ground truth has it (shares of all "
        "network-alive addresses unless the figure says otherwise).</p>"
        + _table(("figure", "study", "this scan", "testbed truth"), rows)
    )


def _family_overview(summary: dict[str, Any]) -> str:
    """The families side by side: rows, alive addresses and blocks, the main layers."""
    rows = []
    for name, section in (("IPv4", summary), ("IPv6", summary["ipv6"])):
        family = summary["families"][name.lower()]
        head = section["headline"]
        rows.append(
            (
                name,
                family["rows"],
                section["coverage"]["all"],
                f"{section['coverage']['all_blocks']} {family['block']}",
                head["icmp_alive"],
                head["transport_active"],
                section["tarpits"]["tarpits"],
            )
        )
    return "<h2>Address families</h2>" + _table(
        ("family", "replies", "alive", "blocks", "ICMP alive", "transport-active", "tarpits"),
        rows,
    )


def _coverage_tables(summary: dict[str, Any], block: str = "/24") -> str:
    cov = summary["coverage"]
    rows = [
        (f.upper(), v["alive"], v["only_this_family"], v["blocks"], v["blocks_only_this_family"])
        for f, v in cov["families"].items()
    ]
    rows.append(("union of families", cov["union"], "", cov["union_blocks"], ""))
    rows.append(("all probes", cov["all"], "", cov["all_blocks"], ""))
    probes = [
        (
            probe,
            v["alive"],
            v["echo_reply"],
            v["synack"],
            v["rst"],
            v["udp_valid"],
            v["udp_invalid"],
            v["icmp_error_from_target"],
            v["icmp_error_from_router"],
            v["targets_with_router_error"],
        )
        for probe, v in summary["probes"].items()
    ]
    return _table(
        ("family", "alive", "only this family", f"{block}s", f"{block}s only this family"), rows
    ) + _table(
        (
            "probe",
            "alive",
            "echo reply",
            "SYN-ACK",
            "RST",
            "UDP valid",
            "UDP other",
            "error from target",
            "error sources (routers)",
            "targets with router error",
        ),
        probes,
    )


def _icmp_table(summary: dict[str, Any]) -> str:
    rows = []
    for f, v in summary["icmp_errors"]["families"].items():
        other = v["other_unreachable"]
        codes = ", ".join(f"{c}: {n}" for c, n in other["targets_by_code"].items()) or "-"
        rows.append(
            (
                f.upper(),
                v["port_unreachable"]["targets"],
                v["host_unreachable"]["targets"],
                other["targets"],
                codes,
                percent(other["admin_prohibited_share_of_other"]),
                sum(e["targets"] for e in v["other_errors"].values()),
                v["from_target"]["targets"],
                v["from_other_address"]["targets"],
            )
        )
    return _table(
        (
            "family",
            "port unreach.",
            "host unreach.",
            "other unreach.",
            "other unreach. by code",
            "code 13 share",
            "other errors",
            "from target",
            "from other address",
        ),
        rows,
    )


def _layer_tables(summary: dict[str, Any]) -> str:
    app = [
        (p, v["active"], v["alive"], v["active_not_alive"], percent(v["alive_share_of_active"]))
        for p, v in summary["application"].items()
    ]
    retrans = summary["retransmission"]
    rt_rows = [
        (p, v["found"], v["gain"], percent(v["share"])) for p, v in retrans["probes"].items()
    ]
    overall = retrans["overall"]
    rt_rows.append(("overall", overall["found"], overall["gain"], percent(overall["share"])))
    pits = [
        (
            f"TCP/{p}",
            v["alive_with_tarpits"],
            v["alive_without_tarpits"],
            percent(v["inflation"]),
        )
        for p, v in summary["tarpits"]["ports"].items()
    ]
    return (
        "<h2>Tarpits</h2>"
        + _table(("port", "alive with tarpits", "without tarpits", "inflation"), pits)
        + "<h2>Application layer</h2>"
        + _table(("probe", "active", "alive", "active, not alive", "alive share"), app)
        + "<h2>Retransmission gain</h2>"
        + "<p>Addresses found by a probe only through its retransmissions.</p>"
        + _table(("probe", "found", "only by retransmission", "share"), rt_rows)
    )


def _app_layer_parts(section: dict[str, Any], title: str) -> list[str]:
    """The TCP application layer (analysis 10) of one family: per-port figure and tables, the
    protocols found per port, tarpits and the headline; a line when it was not measured (none
    for a summary written before it)."""
    app = section.get("app_layer")
    if not isinstance(app, dict):
        return []
    heading = f"<h2>Application layer on TCP{title}</h2>"
    if not app.get("scanned"):
        return [
            heading,
            "<p>Not measured: the input has no answers to <code>--app-layer</code>'s "
            "follow-up, so a SYN-ACK is not told apart from a service here.</p>",
        ]
    ports = app["ports"]
    detail = [
        (
            port,
            v["transport_alive"],
            v["app_active"],
            v["app_alive"],
            v["sent_data"],
            v["ack_only"],
            v["reset_only"],
            v["no_answer"],
            percent(v["shrink_active"]),
            percent(v["shrink_alive"]),
            v["without_no_service_tarpits"]["transport_alive"],
            percent(v["without_no_service_tarpits"]["shrink_alive"]),
        )
        for port, v in ports.items()
    ]
    protocols = [
        (
            port,
            v["expected_protocol"] or "-",
            *(v["protocols"][p] for p in APP_PROTOS),
            v["unexpected_addresses"],
        )
        for port, v in ports.items()
    ]
    head, pits = app["headline"], app["tarpits"]
    facts = [
        ("SYN-ACK on some TCP port", head["synack_any_port"], ""),
        ("app-active on some port", head["app_active_any_port"], ""),
        ("app-alive on some port", head["app_alive_any_port"], ""),
        (
            "SYN-ACK without a service (app-active on no port)",
            head["synack_without_service"],
            percent(head["synack_without_service_share"]),
        ),
        ("  of them not tarpits", head["synack_without_service_not_tarpits"], ""),
        ("tarpits (analysis 5)", pits["tarpits"], ""),
        ("  no service: tarpit or ACKing middlebox", pits["no_service"], ""),
        ("  ACK our payload, send no data", pits["ack_only"], ""),
        ("  serve data on some port: not a tarpit", pits["serves_data"], ""),
    ]
    replies = ", ".join(f"{n} {k}" for k, n in app["replies"].items())
    return [
        heading,
        f"<p>Answers to the follow-up of a SYN-ACK: {html.escape(replies)} rows. "
        "&ldquo;Without no-service tarpits&rdquo; removes the tarpits that were app-active on "
        "no port.</p>",
        _figure(
            figures.app_layer_figure,
            section,
            "Per TCP port: SYN-ACK vs application-active vs application-alive addresses.",
        ),
        _table(APP_LAYER_HEADERS, app_layer_rows(app)),
        _table(
            (
                "TCP port",
                "SYN-ACK",
                "app-active",
                "app-alive",
                "sent data",
                "ACK only",
                "reset after payload",
                "no answer",
                "shrink (active)",
                "shrink (alive)",
                "SYN-ACK w/o no-service tarpits",
                "shrink (alive) w/o them",
            ),
            detail,
        ),
        _table(("TCP port", "expects", *APP_PROTOS, "unexpected services"), protocols),
        _table(("application layer", "addresses", "share"), facts),
    ]


def _prefix_tables(section: dict[str, Any]) -> str:
    tables = []
    for length, entry in section["prefixes"].items():
        rows = [(top["prefix"], top["alive"]) for top in entry["top"]]
        tables.append(_table((f"fullest {length} prefixes", "alive"), rows))
    return "".join(tables)


def _family_parts(section: dict[str, Any], block: str, family: str) -> list[str]:
    """The sections of one family's analyses (``family`` names it in headings, or "")."""
    title = f" ({family})" if family else ""
    return [
        _headline_section(section).replace("<h2>Headline</h2>", f"<h2>Headline{title}</h2>"),
        f"<h2>Network-layer coverage{title}</h2>",
        _figure(
            figures.coverage_figure,
            section,
            "Alive addresses per probe family; the dark part is found by that family only.",
        ),
        _coverage_tables(section, block),
        f"<h2>Reply kinds and ICMP errors{title}</h2>",
        _figure(figures.reply_kinds_figure, section, "Found by positive replies, errors, both."),
        _figure(figures.icmp_errors_figure, section, "ICMP errors by kind and by source."),
        _icmp_table(section),
        f"<h2>Transport layer{title}</h2>",
        _figure(figures.port_count_figure, section, "Ports answered per transport-active address."),
        _figure(figures.ports_figure, section, "Per-port counts, with and without tarpits."),
        *_app_layer_parts(section, title),
        f"<h2>Cross-protocol activity{title}</h2>",
        _figure(figures.conditional_figure, section, "P(active for B | active for A)."),
    ]


def render_report(summary: dict[str, Any], metadata: dict[str, Any] | None = None) -> str:
    """The report as one HTML string."""
    title = "Liveness scan report"
    ipv6 = summary.get("ipv6")
    parts = [page_start(title)]
    if ipv6 is not None:
        parts.append(_family_overview(summary))
    parts.append(_study_section(summary))
    parts += _family_parts(summary, "/24", "IPv4" if ipv6 is not None else "")
    parts += [
        f"<h2>Address map{' (IPv4)' if ipv6 is not None else ''}</h2>",
        _figure(
            figures.address_map_figure,
            summary,
            "Scanned range on a Hilbert curve, coloured by the highest layer alive per block.",
        ),
        _layer_tables(summary),
    ]
    if ipv6 is not None:
        block6 = summary["families"]["ipv6"]["block"]
        parts += _family_parts(ipv6, block6, "IPv6")
        parts += [
            "<h2>Where the IPv6 addresses are</h2>",
            _figure(
                figures.prefix_figure,
                ipv6,
                "Alive IPv6 addresses per prefix: how many prefixes hold 1, 2-3, 4-7, ...",
            ),
            _prefix_tables(ipv6),
            _layer_tables(ipv6).replace("<h2>", "<h2>IPv6: "),
        ]
    parts += [
        _DEFINITIONS,
        _metadata_section(summary, metadata),
        "<h2>Summary data</h2><details><summary>summary.json</summary><pre>",
        html.escape(json.dumps(summary, indent=1, default=str)),
        "</pre></details></body></html>",
    ]
    return "\n".join(parts)


def write_report(
    summary: dict[str, Any], out_path: str, metadata: dict[str, Any] | None = None
) -> None:
    """Write the self-contained HTML report of ``summary`` to ``out_path``."""
    text = render_report(summary, metadata)
    tmp = f"{out_path}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, out_path)
    except OSError as exc:
        raise RunError(f"{out_path}: cannot write the report: {exc}") from exc
