"""The study's published figures (Bano et al., "Scanning the Internet for Liveness", CCR 2018)
and the comparison of a scan's summary, and of a testbed's truth, with them.

Each :class:`Figure` is one number of the paper with a function computing the same number from
a summary (:func:`liveness.analysis.summarize`); shares are of all network-alive addresses
unless the label says otherwise. Each :class:`Ordering` is an order the paper states (a
boolean: ``study`` is True). :func:`compare` gives ``summary.json``'s ``study_comparison``:
figure name -> {study, scan, truth}. :func:`truth_replies` turns a testbed truth table into
reply rows (one first-attempt reply per row), so the truth is summarised by the same analyses.

Tolerance (issue 17): a share is on target within 2 percentage points of the study's value,
or within a quarter of it where that is tighter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "FIGURES",
    "ORDERINGS",
    "Figure",
    "Ordering",
    "compare",
    "comparison_rows",
    "format_comparison",
    "retransmission_expected",
    "tolerance",
    "truth_replies",
]

Summary = dict[str, Any]
TCP_PORTS = ("22", "23", "80", "443", "7547")
_TCP_CONDITIONAL = tuple(f"tcp_syn:{p}" for p in TCP_PORTS)
_UDP_CONDITIONAL = ("udp_dns", "udp_ntp")


def _ratio(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def tolerance(study: float) -> float:
    """How far a share may be from the study's: 2 points, or a quarter of it if tighter."""
    return min(0.02, study / 4)


@dataclass(frozen=True)
class Figure:
    """One published share and how to compute it from a summary."""

    name: str
    label: str
    study: float
    compute: Callable[[Summary], float | None]
    at_least: bool = False  # the paper says "more than": the share must also reach it

    def on_target(self, value: float | None) -> bool:
        """``value`` is within :func:`tolerance` of the study (and not below an "at least")."""
        if value is None:
            return False
        if self.at_least and value < self.study:
            return False
        return abs(value - self.study) <= tolerance(self.study) + 1e-12


@dataclass(frozen=True)
class Ordering:
    """An order the paper states, checked on a summary."""

    name: str
    label: str
    holds: Callable[[Summary], bool]


def _all(s: Summary) -> int:
    return int(s["coverage"]["all"])


def _of_all(get: Callable[[Summary], float]) -> Callable[[Summary], float | None]:
    return lambda s: _ratio(get(s), _all(s))


def _ta(s: Summary) -> int:
    return int(s["transport"]["active"])


def _port(s: Summary, port: str) -> dict[str, Any]:
    return s["transport"]["ports"][port]  # type: ignore[no-any-return]


def _of_transport(get: Callable[[Summary], float]) -> Callable[[Summary], float | None]:
    return lambda s: _ratio(get(s), _ta(s))


def _errors_only_revealed(family: str) -> Callable[[Summary], float | None]:
    def compute(s: Summary) -> float | None:
        rk = s["reply_kinds"]
        return _ratio(rk["errors_only_revealed_by_family"][family], rk["errors_only_all"])

    return compute


def _other_unreach_codes(codes: tuple[str, ...]) -> Callable[[Summary], float | None]:
    """Share of the "other unreachable" errors to TCP and UDP probes with one of ``codes``
    (per family and target, the two families added)."""

    def compute(s: Summary) -> float | None:
        fams = s["icmp_errors"]["families"]
        other = [fams[f]["other_unreachable"] for f in ("tcp", "udp")]
        part = sum(int(o.get("targets_by_code", {}).get(c, 0)) for o in other for c in codes)
        return _ratio(part, sum(int(o["targets"]) for o in other))

    return compute


def _inflation(port: str) -> Callable[[Summary], float | None]:
    return lambda s: s["tarpits"]["ports"][port]["inflation"]


def _conditional(s: Summary, given: str, then: str) -> float | None:
    cond = s["conditional"]
    probes = cond["probes"]
    value = cond["matrix"][probes.index(given)][probes.index(then)]
    return None if value is None else float(value)


def _not_echo(probes: tuple[str, ...]) -> Callable[[Summary], float | None]:
    """Mean over ``probes`` of P(not echo-alive | active for the probe)."""

    def compute(s: Summary) -> float | None:
        values = [_conditional(s, p, "icmp_echo") for p in probes]
        if any(v is None for v in values):
            return None
        return sum(1.0 - float(v or 0.0) for v in values) / len(values)

    return compute


def _retransmission(s: Summary) -> float | None:
    value = s["retransmission"]["probes"]["icmp_echo"]["share"]
    return None if value is None else float(value)


def _probed(s: Summary) -> float | None:
    """Needs the number of probed addresses, which a summary does not hold (see compare)."""
    return None


FIGURES: tuple[Figure, ...] = (
    Figure("alive_share_of_probed", "network-alive, share of probed", 0.135, _probed),
    Figure(
        "echo_share",
        "found by ICMP echo",
        0.79,
        _of_all(lambda s: s["headline"]["echo_reply_alive"]),
    ),
    Figure(
        "tcp_only_share",
        "found only by TCP probes",
        0.16,
        _of_all(lambda s: s["coverage"]["families"]["tcp"]["only_this_family"]),
    ),
    Figure(
        "udp_only_share",
        "found only by UDP probes",
        0.02,
        _of_all(lambda s: s["coverage"]["families"]["udp"]["only_this_family"]),
    ),
    Figure(
        "tcp_udp_added_over_icmp",
        "added by TCP and UDP over ICMP",
        0.18,
        _of_all(lambda s: s["headline"]["tcp_udp_added_over_icmp"]),
    ),
    Figure(
        "negative_only_added",
        "added by negative replies (more than 13%)",
        0.13,
        _of_all(lambda s: s["headline"]["negative_only_added"]),
        at_least=True,
    ),
    Figure(
        "errors_only_share",
        "found only through ICMP errors",
        0.023,
        _of_all(lambda s: s["reply_kinds"]["errors_only_all"]),
    ),
    Figure(
        "errors_only_by_icmp", "errors-only: revealed by ICMP", 0.20, _errors_only_revealed("icmp")
    ),
    Figure(
        "errors_only_by_tcp", "errors-only: revealed by TCP", 0.76, _errors_only_revealed("tcp")
    ),
    Figure(
        "errors_only_by_udp", "errors-only: revealed by UDP", 0.35, _errors_only_revealed("udp")
    ),
    Figure(
        "code13_share_of_other_unreach",
        "code 13 among other unreachables (TCP, UDP)",
        0.80,
        _other_unreach_codes(("13",)),
    ),
    Figure(
        "code0_10_share_of_other_unreach",
        "codes 0 and 10 among other unreachables",
        0.15,
        _other_unreach_codes(("0", "10")),
    ),
    Figure(
        "transport_active_share",
        "transport-active",
        0.538,
        _of_all(_ta),
    ),
    Figure(
        "all_five_ports_share",
        "all five ports, share of transport-active",
        0.24,
        _of_transport(lambda s: s["headline"]["transport_active_all_five_ports"]),
    ),
    Figure(
        "https_active_share",
        "HTTPS-active, share of transport-active",
        180 / 262,
        _of_transport(lambda s: _port(s, "443")["active"]),
    ),
    Figure(
        "cwmp_active_share",
        "CWMP-active, share of transport-active",
        159 / 262,
        _of_transport(lambda s: _port(s, "7547")["active"]),
    ),
    *(
        Figure(
            f"only_port_{port}_share",
            f"only port {port}, share of transport-active",
            study,
            _of_transport(lambda s, port=port: _port(s, port)["only_this_port"]),  # type: ignore[misc]
        )
        for port, study in (
            ("7547", 0.115),
            ("22", 0.045),
            ("80", 0.045),
            ("443", 0.045),
            ("23", 0.008),
        )
    ),
    Figure(
        "tarpit_share",
        "tarpits, share of transport-active",
        1.9 / 262,
        _of_transport(lambda s: s["tarpits"]["tarpits"]),
    ),
    *(
        Figure(
            f"tarpit_inflation_{port}", f"tarpit inflation, port {port}", study, _inflation(port)
        )
        for port, study in (
            ("80", 0.035),
            ("443", 0.035),
            ("7547", 0.035),
            ("22", 0.10),
            ("23", 0.23),
        )
    ),
    Figure(
        "retransmission_gain_echo",
        "retransmission gain, ICMP echo",
        0.022,
        _retransmission,
    ),
    Figure(
        "http_given_cwmp",
        "P(HTTP-active | CWMP-active)",
        0.56,
        lambda s: _conditional(s, "tcp_syn:7547", "tcp_syn:80"),
    ),
    Figure(
        "tcp_not_echo",
        "TCP service active, not echo-alive (mean)",
        0.26,
        _not_echo(_TCP_CONDITIONAL),
    ),
    Figure(
        "udp_not_echo",
        "UDP service active, not echo-alive (mean)",
        0.12,
        _not_echo(_UDP_CONDITIONAL),
    ),
)


def _port_order(s: Summary) -> bool:
    active = {p: _port(s, p)["active"] for p in TCP_PORTS}
    return (
        active["443"] > active["7547"]
        and all(active["7547"] > active[p] for p in ("22", "80", "23"))
        and active["80"] < active["443"]
        and all(active["23"] < active[p] for p in TCP_PORTS if p != "23")
    )


def _rst_dominates(s: Summary) -> bool:
    """Every port but HTTP: RST-only hosts outnumber SYN-ACK hosts; HTTP: the reverse."""
    ports = {p: _port(s, p) for p in TCP_PORTS}
    rst = all(ports[p]["rst_only"] > ports[p]["alive"] for p in TCP_PORTS if p != "80")
    return rst and ports["80"]["alive"] >= ports["80"]["rst_only"]


def _telnet_implies(s: Summary) -> bool:
    return all(
        (_conditional(s, "tcp_syn:23", then) or 0.0) >= 0.9
        for then in ("tcp_syn:22", "tcp_syn:443")
    )


ORDERINGS: tuple[Ordering, ...] = (
    Ordering("port_activity_order", "port activity: 443 > 7547 > 22, 80 > 23", _port_order),
    Ordering("rst_dominates_but_http", "SYN-ACK < RST-only per port, except HTTP", _rst_dominates),
    Ordering(
        "cwmp_synack_over_ssh",
        "CWMP SYN-ACK > SSH SYN-ACK",
        lambda s: _port(s, "7547")["alive"] > _port(s, "22")["alive"],
    ),
    Ordering("telnet_implies_ssh_https", "P(SSH, HTTPS | Telnet) >= 0.9", _telnet_implies),
)


def _safe(compute: Callable[[Summary], Any], summary: Summary | None) -> Any:
    if summary is None:
        return None
    try:
        return compute(summary)
    except (KeyError, IndexError, TypeError, ValueError):
        return None


def compare(
    scan: Summary | None,
    truth: Summary | None,
    *,
    probed: int | None = None,
    truth_retransmission: float | None = None,
) -> dict[str, dict[str, Any]]:
    """Figure name -> {study, scan, truth} (``summary.json``'s ``study_comparison``).

    Shares are fractions (None where a summary lacks the figure); orderings are booleans.
    ``probed`` is the number of probed addresses (a summary does not know it). The truth holds
    no retransmissions, so its retransmission gain is ``truth_retransmission`` (the expectation
    from the spec's loss, :func:`retransmission_expected`).
    """
    out: dict[str, dict[str, Any]] = {}
    for fig in FIGURES:
        scan_value, truth_value = _safe(fig.compute, scan), _safe(fig.compute, truth)
        if fig.name == "alive_share_of_probed" and probed:
            scan_value = None if scan is None else _all(scan) / probed
            truth_value = None if truth is None else _all(truth) / probed
        if fig.name == "retransmission_gain_echo":
            truth_value = truth_retransmission
        out[fig.name] = {"study": fig.study, "scan": scan_value, "truth": truth_value}
    for order in ORDERINGS:
        out[order.name] = {
            "study": True,
            "scan": _safe(order.holds, scan),
            "truth": _safe(order.holds, truth),
        }
    return out


def format_comparison(comparison: dict[str, dict[str, Any]]) -> str:
    """The comparison as a terminal table: figure, study, this scan, the testbed's truth."""
    rows = [("compared with the study", "study", "scan", "truth"), *comparison_rows(comparison)]
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{r[0]:<{width}}  {r[1]:>7}  {r[2]:>7}  {r[3]:>7}" for r in rows)


def comparison_rows(comparison: dict[str, dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    """(label, study, scan, truth) as text for each known figure of a comparison."""
    labels = {f.name: f.label for f in FIGURES} | {o.name: o.label for o in ORDERINGS}

    def text(value: Any) -> str:
        if value is None:
            return "-"
        if isinstance(value, bool):
            return "holds" if value else "fails"
        return f"{100 * float(value):.2f}%"

    return [
        (
            labels.get(name, name),
            text(row.get("study")),
            text(row.get("scan")),
            text(row.get("truth")),
        )
        for name, row in comparison.items()
    ]


def truth_replies(truth: pa.Table, vp: str | None = None) -> pa.Table:
    """The truth rows of one VP (the first when None) as first-attempt reply rows."""
    if truth.num_rows and vp is None:
        vp = str(truth.column("vp")[0].as_py())
    rows = truth if vp is None else truth.filter(pc.equal(truth.column("vp"), pa.scalar(vp)))
    return rows.append_column("attempt", pa.array([0] * rows.num_rows, pa.uint8()))


def retransmission_expected(
    truth: pa.Table, vp: str | None = None, attempts: int = 2
) -> float | None:
    """The expected share of IPv4 echo-alive addresses found only by retransmission, when each
    of ``attempts`` probes is lost independently with the truth's ``loss``."""
    rows = truth_replies(truth, vp)
    echo = pc.equal(rows.column("reply"), pa.scalar("echo_reply"))
    if "af" in rows.column_names:
        echo = pc.and_(echo, pc.equal(rows.column("af"), pa.scalar(4, pa.uint8())))
    loss = [float(p or 0.0) for p in rows.filter(echo).column("loss").to_pylist()]
    found = sum(1.0 - p**attempts for p in loss)
    gain = sum(p - p**attempts for p in loss)  # the first attempt lost, a later one answered
    return _ratio(gain, found)
