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


def format_headline(summary: dict[str, Any]) -> str:
    """The study's headline figures and per-family coverage as a terminal table."""
    inputs, coverage, head = summary["inputs"], summary["coverage"], summary["headline"]
    transport, retrans = summary["transport"], summary["retransmission"]["overall"]
    every = coverage["all"]
    ok_files = len(inputs["files"]) - inputs["errors"]
    lines = [
        f"{every} alive addresses in {coverage['all_blocks']} /24 blocks, from {inputs['rows']}"
        f" replies in {ok_files} file(s)"
        + (f" ({inputs['errors']} unreadable)" if inputs["errors"] else ""),
        "",
    ]
    rows = [
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
    lines.append(format_table(("family", "alive", "only this", "/24s", "of all"), rows))
    lines.append("")
    facts = [
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
            f"{summary['reply_kinds']['errors_only_all']}"
            f" ({percent(summary['reply_kinds']['errors_only_share_of_all'])} of alive)",
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
        ("tarpits", str(summary["tarpits"]["tarpits"])),
        ("found only by retransmission", f"{retrans['gain']} ({percent(retrans['share'])})"),
    ]
    lines.append(format_table(("headline", "addresses"), facts))
    return "\n".join(lines)


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None
