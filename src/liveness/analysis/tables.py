"""The headline table for the terminal, from a summary dict; the application layer on TCP
(``--app-layer``) in a table of its own per family."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "APP_LAYER_HEADERS",
    "app_layer_rows",
    "format_app_layer",
    "format_headline",
    "format_table",
    "percent",
]

#: The columns of :func:`app_layer_rows`.
APP_LAYER_HEADERS: tuple[str, ...] = (
    "TCP port",
    "expects",
    "SYN-ACK",
    "app-active",
    "app-alive",
    "shrink",
    "shrink w/o no-service tarpits",
    "unexpected services",
)


def percent(value: float | None) -> str:
    """A share as a percentage, ``-`` when undefined."""
    return "-" if value is None else f"{100 * value:.1f}%"


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Plain-text columns: the first left-aligned, the others right-aligned."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        parts = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(parts).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _coverage_rows(section: dict[str, Any]) -> list[tuple[Any, ...]]:
    coverage = section["coverage"]
    every = coverage["all"]
    rows: list[tuple[Any, ...]] = [
        (
            f,
            fam["alive"],
            fam["only_this_family"],
            fam["blocks"],
            percent(_share(fam["alive"], every)),
        )
        for f, fam in coverage["families"].items()
    ]
    rows.append(("union", coverage["union"], "", coverage["union_blocks"], ""))
    return rows


def _facts(section: dict[str, Any]) -> list[tuple[str, str]]:
    head, transport = section["headline"], section["transport"]
    retrans = section["retransmission"]["overall"]
    return [
        (
            "TCP+UDP add over ICMP alone",
            f"{head['tcp_udp_added_over_icmp']} ({percent(head['tcp_udp_gain_over_icmp'])})",
        ),
        (
            "negative replies add (RST, ICMP errors)",
            f"{head['negative_only_added']} ({percent(head['negative_gain_over_positive'])})",
        ),
        (
            "revealed only by ICMP errors",
            f"{section['reply_kinds']['errors_only_all']}"
            f" ({percent(section['reply_kinds']['errors_only_share_of_all'])} of alive)",
        ),
        (
            "transport-active (SYN-ACK or RST)",
            f"{transport['active']} ({percent(transport['active_share_of_all'])} of alive)",
        ),
        (
            "  answering on all five ports",
            f"{head['transport_active_all_five_ports']}"
            f" ({percent(head['all_five_ports_share_of_transport_active'])})",
        ),
        ("tarpits", str(section["tarpits"]["tarpits"])),
        ("found only by retransmission", f"{retrans['gain']} ({percent(retrans['share'])})"),
        *_no_service_fact(section),
    ]


def _no_service_fact(section: dict[str, Any]) -> list[tuple[str, str]]:
    """ "SYN-ACK without a service", when the scan measured the application layer."""
    app = section.get("app_layer")
    if not isinstance(app, dict) or not app.get("scanned"):
        return []
    head = app["headline"]
    return [
        (
            "SYN-ACK without a service",
            f"{head['synack_without_service']}"
            f" ({percent(head['synack_without_service_share'])} of SYN-ACKing)",
        )
    ]


def format_headline(summary: dict[str, Any]) -> str:
    """The study's headline figures and per-family coverage as a terminal table; with IPv6
    rows, the IPv6 figures stand beside the IPv4 ones."""
    inputs = summary["inputs"]
    ipv6 = summary.get("ipv6")
    families = summary.get("families", {})
    block6 = families.get("ipv6", {}).get("block", "/48")
    ok_files = len(inputs["files"]) - inputs["errors"]
    coverage = summary["coverage"]
    found = f"{coverage['all']} alive addresses in {coverage['all_blocks']} /24 blocks"
    if ipv6 is not None:
        coverage6 = ipv6["coverage"]
        found = (
            f"{coverage['all']} alive IPv4 addresses in {coverage['all_blocks']} /24 blocks and"
            f" {coverage6['all']} alive IPv6 addresses in {coverage6['all_blocks']} {block6}s"
        )
    lines = [
        f"{found}, from {inputs['rows']} replies in {ok_files} file(s)"
        + (f" ({inputs['errors']} unreadable)" if inputs["errors"] else ""),
        "",
    ]
    headers: tuple[str, ...] = ("family", "alive", "only this", "/24s", "of all")
    rows = _coverage_rows(summary)
    facts: list[tuple[str, ...]] = list(_facts(summary))
    fact_headers: tuple[str, ...] = ("headline", "addresses")
    if ipv6 is not None:
        headers = (
            "family",
            "IPv4 alive",
            "only this",
            "/24s",
            "of all",
            "IPv6 alive",
            "only this",
            f"{block6}s",
            "of all",
        )
        rows = [(*a, *b[1:]) for a, b in zip(rows, _coverage_rows(ipv6), strict=True)]
        facts = [(*a, b[1]) for a, b in zip(facts, _facts(ipv6), strict=True)]
        fact_headers = ("headline", "IPv4", "IPv6")
    lines.append(format_table(headers, rows))
    lines.append("")
    lines.append(format_table(fact_headers, facts))
    app = format_app_layer(summary, "IPv4" if ipv6 is not None else "")
    if ipv6 is not None and "app_layer" in ipv6:
        app += "\n\n" + format_app_layer(ipv6, "IPv6")
    if app:
        lines += ["", app]
    return "\n".join(lines)


def app_layer_rows(app: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Per TCP port of a scanned ``app_layer`` result: SYN-ACK, app-active, app-alive and how
    much the service population shrinks (by app-alive), also without the no-service tarpits,
    and the services found where another protocol was expected."""
    rows = []
    for port, entry in app["ports"].items():
        unexpected = ", ".join(f"{p} {n}" for p, n in entry["unexpected"].items() if n) or "-"
        rows.append(
            (
                port,
                entry["expected_protocol"] or "-",
                entry["transport_alive"],
                entry["app_active"],
                entry["app_alive"],
                percent(entry["shrink_alive"]),
                percent(entry["without_no_service_tarpits"]["shrink_alive"]),
                unexpected,
            )
        )
    return rows


def _app_facts(app: dict[str, Any]) -> list[tuple[str, str]]:
    head, pits = app["headline"], app["tarpits"]
    return [
        (
            "SYN-ACK without a service (app-active on no port)",
            f"{head['synack_without_service']} of {head['synack_any_port']}"
            f" ({percent(head['synack_without_service_share'])})",
        ),
        ("  of them not tarpits", str(head["synack_without_service_not_tarpits"])),
        ("tarpits: no service (tarpit or ACKing middlebox)", str(pits["no_service"])),
        ("tarpits: ACK our payload, send no data", str(pits["ack_only"])),
        ("tarpits: serve data (not a tarpit)", str(pits["serves_data"])),
    ]


def format_app_layer(section: dict[str, Any], family: str = "") -> str:
    """The application layer on TCP of one family's section ("" when the summary predates
    it; one line when the input had no ``--app-layer`` answers)."""
    app = section.get("app_layer")
    if not isinstance(app, dict):
        return ""
    title = f"application layer on TCP{f' ({family})' if family else ''}"
    if not app.get("scanned"):
        return f"{title}: not measured (no --app-layer answers in the input)"
    return "\n".join(
        [
            f"{title}; shrink = 1 - app-alive / SYN-ACK",
            format_table(APP_LAYER_HEADERS, app_layer_rows(app)),
            "",
            format_table(("application layer", "addresses"), _app_facts(app)),
        ]
    )


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None
