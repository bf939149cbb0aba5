"""The headline table for the terminal, from a summary dict."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["format_headline", "format_table", "percent"]


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
    return "\n".join(lines)


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None
