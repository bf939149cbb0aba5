"""The `paper` testbed's ground truth against the study's figures (issue 17), without root.

The figures are computed from the truth rows by ``study_figures`` (plain sets, independent of
the analysis code); the study module's own computation is then checked against them.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest
from study_figures import ORDERINGS, STUDY, allowed, truth_figures

from liveness.analysis import summarize_table
from liveness.analysis.report import render_report
from liveness.analysis.study import (
    FIGURES,
    compare,
    format_comparison,
    retransmission_expected,
    truth_replies,
)
from liveness.testbed import load_spec
from liveness.testbed.plan import Plan, make_plan


@pytest.fixture(scope="module")
def paper() -> tuple[Plan, pa.Table, list[dict[str, Any]]]:
    spec = load_spec("paper")
    assert spec.version >= 2
    plan = make_plan(spec)
    truth = plan.truth()
    rows = [r for r in truth.to_pylist() if r["vp"] == spec.vps[0].name and r["af"] == 4]
    return plan, truth, rows


def test_paper_truth_has_the_study_proportions(
    paper: tuple[Plan, pa.Table, list[dict[str, Any]]],
) -> None:
    plan, _truth, rows = paper
    figures = truth_figures(rows, len(plan.population))
    misses = {
        name: (round(figures[name], 4), study)
        for name, study in STUDY.items()
        if abs(figures[name] - study) > allowed(study)
    }
    assert not misses
    assert figures["negative_only_added"] > 0.13  # "more than 13%"
    assert all(figures[name] is True for name in ORDERINGS), {n: figures[n] for n in ORDERINGS}


def test_study_module_computes_the_same_figures(
    paper: tuple[Plan, pa.Table, list[dict[str, Any]]],
) -> None:
    plan, truth, rows = paper
    expected = truth_figures(rows, len(plan.population))
    assert {f.name: f.study for f in FIGURES} == pytest.approx(STUDY)
    summary = summarize_table(truth_replies(truth), "truth")
    comparison = compare(
        summary,
        summary,
        probed=len(plan.population),
        truth_retransmission=retransmission_expected(truth),
    )
    assert set(comparison) == set(STUDY) | set(ORDERINGS)
    for name, row in comparison.items():
        assert set(row) == {"study", "scan", "truth"}
        assert row["truth"] == pytest.approx(expected[name]), name
        if name != "retransmission_gain_echo":  # the truth holds first attempts only
            assert row["scan"] == pytest.approx(expected[name]), name
    assert comparison["retransmission_gain_echo"]["scan"] == 0.0
    assert all(f.on_target(comparison[f.name]["truth"]) for f in FIGURES)


def test_probe_families_find_different_blocks(
    paper: tuple[Plan, pa.Table, list[dict[str, Any]]],
) -> None:
    plan, _truth, rows = paper
    router = int.from_bytes(bytes(int(x) for x in plan.router_ip.split(".")), "big")
    families = {
        "icmp": ("icmp_echo",),
        "tcp": tuple(f"tcp_syn:{p}" for p in (22, 23, 80, 443, 7547)),
        "udp": ("udp_dns", "udp_ntp"),
    }
    blocks = {
        f: {r["responder"] >> 8 for r in rows if r["probe"] in probes and r["responder"] != router}
        for f, probes in families.items()
    }
    every = {r["responder"] >> 8 for r in rows if r["responder"] != router}
    assert len(set(map(frozenset, blocks.values()))) == 3
    for found in blocks.values():
        assert len(found) < len(every)
    assert len(every) < len(plan.population) // 256  # dark blocks and router blocks


def test_report_and_table_show_the_comparison(
    paper: tuple[Plan, pa.Table, list[dict[str, Any]]],
) -> None:
    plan, truth, _rows = paper
    summary = summarize_table(truth_replies(truth), "truth")
    assert "Compared with the study" not in render_report(summary)
    summary["study_comparison"] = compare(summary, summary, probed=len(plan.population))
    page = render_report(summary)
    assert "Compared with the study" in page
    assert all(f.label.replace("&", "&amp;") in page for f in FIGURES)
    table = format_comparison(summary["study_comparison"]).splitlines()
    assert len(table) == 1 + len(STUDY) + len(ORDERINGS)
    assert table[0].split()[-3:] == ["study", "scan", "truth"]
    https = next(line for line in table if line.startswith("HTTPS-active"))
    assert https.split()[-3] == f"{100 * 180 / 262:.2f}%"
