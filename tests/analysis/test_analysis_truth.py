"""The analyses of a real scan of the testbed's ``paper`` spec, checked against its ground truth.

``liveness demo`` brings the testbed up, scans it with the default probe set, analyses the replies
and writes ``truth.parquet`` beside ``summary.json``. Every expected number here is computed from
the truth table alone, independently of the analysis code. The spec injects loss on a few
addresses, so counts must lie between "truth without the lossy addresses" and "truth".
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

pytestmark = [pytest.mark.root, pytest.mark.slow]

TCP_PORTS = (22, 23, 80, 443, 7547)
FAMILIES = {
    "icmp": ("icmp_echo",),
    "tcp": tuple(f"tcp_syn:{port}" for port in TCP_PORTS),
    "udp": ("udp_dns", "udp_ntp"),
}


@pytest.fixture(scope="module")
def demo(paper_demo: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    out = paper_demo["dir"]
    assert paper_demo["seconds"] < 180  # the bound for the main job
    summary = json.loads((out / "summary.json").read_text())
    truth = pq.read_table(out / "truth.parquet").to_pylist()
    assert Path(paper_demo["report"]).stat().st_size > 10_000
    return summary, truth


def _responders(rows: Iterable[dict[str, Any]], probes: Iterable[str]) -> set[int]:
    wanted = set(probes)
    return {row["responder"] for row in rows if row["probe"] in wanted}


def _lossy(truth: list[dict[str, Any]]) -> set[int]:
    return {row["target"] for row in truth if row["loss"] > 0}


def _within(found: int, expected: set[int], lossy: set[int]) -> None:
    """``found`` can miss lossy addresses only, and never finds more than the truth holds."""
    assert len(expected - lossy) <= found <= len(expected), (found, len(expected))


def test_network_coverage_per_family_matches_truth(
    demo: tuple[dict[str, Any], list[dict[str, Any]]],
) -> None:
    summary, truth = demo
    lossy = _lossy(truth)
    everything: set[int] = set()
    for family, probes in FAMILIES.items():
        expected = _responders(truth, probes)
        everything |= expected
        _within(summary["coverage"]["families"][family]["alive"], expected, lossy)
    _within(summary["coverage"]["all"], everything | _responders(truth, ["tcp_syn:random"]), lossy)
    # Router-sourced errors make the router alive, not the targets they answer for.
    routers = {row["responder"] for row in truth if row["responder"] != row["target"]}
    assert routers and summary["probes"]["icmp_echo"]["icmp_error_from_router"] >= 1


def test_transport_tarpits_and_application_match_truth(
    demo: tuple[dict[str, Any], list[dict[str, Any]]],
) -> None:
    summary, truth = demo
    lossy = _lossy(truth)
    tcp = [
        row
        for row in truth
        if row["probe"].startswith("tcp_syn:") and row["probe"] != "tcp_syn:random"
    ]
    active = {
        r["target"]
        for r in tcp
        if r["reply"] in ("synack", "rst") and r["responder"] == r["target"]
    }
    _within(summary["transport"]["active"], active, lossy)
    synack_ports: dict[int, set[str]] = {}
    for row in truth:
        if row["reply"] == "synack":
            synack_ports.setdefault(row["target"], set()).add(row["probe"])
    all_ports = {f"tcp_syn:{port}" for port in TCP_PORTS} | {"tcp_syn:random"}
    tarpits = {target for target, ports in synack_ports.items() if ports >= all_ports}
    assert tarpits, "the paper spec has tarpits"
    _within(summary["tarpits"]["tarpits"], tarpits, lossy)
    for port in TCP_PORTS:
        alive = {
            r["target"] for r in tcp if r["probe"] == f"tcp_syn:{port}" and r["reply"] == "synack"
        }
        _within(summary["transport"]["ports"][str(port)]["alive"], alive, lossy)
        # Loss can take a tarpit's answer on one port, so it is not recognised as a tarpit and
        # stays counted: found lies between what loss can take from the non-tarpits and what
        # it can leave of the lossy tarpits.
        found = summary["tarpits"]["ports"][str(port)]["alive_without_tarpits"]
        assert len(alive - lossy - tarpits) <= found <= len(alive - (tarpits - lossy)), found
    for probe in ("udp_dns", "udp_ntp"):
        valid = {r["target"] for r in truth if r["probe"] == probe and r["app_valid"]}
        assert valid, f"the paper spec runs {probe} servers"
        _within(summary["application"][probe]["alive"], valid, lossy)


def test_icmp_errors_and_codes_match_truth(
    demo: tuple[dict[str, Any], list[dict[str, Any]]],
) -> None:
    summary, truth = demo
    lossy = _lossy(truth)
    for family, probes in FAMILIES.items():
        rows = [r for r in truth if r["probe"] in probes and r["reply"].startswith("icmp_")]
        from_router = {r["target"] for r in rows if r["responder"] != r["target"]}
        errors = summary["icmp_errors"]["families"][family]
        _within(errors["from_other_address"]["targets"], from_router, lossy)
        prohibited = {
            r["target"] for r in rows if r["reply"] == "icmp_unreach" and r["icmp_code"] == 13
        }
        by_code = errors["other_unreachable"].get("targets_by_code", {})
        _within(int(by_code.get("13", 0)), prohibited, lossy)


def test_retransmission_gains_only_where_the_spec_injects_loss(
    demo: tuple[dict[str, Any], list[dict[str, Any]]],
) -> None:
    summary, truth = demo
    lossy = _lossy(truth)
    for probe, figures in summary["retransmission"]["probes"].items():
        answering_lossy = {r["target"] for r in truth if r["probe"] == probe} & lossy
        assert figures["gain"] <= len(answering_lossy), probe
    assert summary["retransmission"]["overall"]["gain"] <= len(lossy)
