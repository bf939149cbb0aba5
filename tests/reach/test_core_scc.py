"""The Internet core: strongly connected components on small graphs with known answers."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli_runner import run_cli
from liveness.errors import InputError
from liveness.reach.core import Reachability


def graph(edges: list[tuple[str, str, bool]], weights: dict[str, float]) -> Reachability:
    src, dst, ok = (list(c) for c in zip(*edges, strict=True))
    return Reachability.build(src, dst, ok, weights)


CYCLE = [("A", "B", True), ("B", "C", True), ("C", "A", True), ("A", "D", True)]


def test_cycle_is_the_core_and_a_sink_is_an_island() -> None:
    result = graph(CYCLE, {"A": 40, "B": 30, "C": 20, "D": 10}).core()
    assert result.has_core and result.core == ["A", "B", "C"]
    assert result.largest_share == pytest.approx(0.9)
    assert result.islands == ["D"]  # A reaches D, but D reaches no one back
    assert result.components[0] == ["A", "B", "C"] and ["D"] in result.components


def test_exactly_half_is_no_core() -> None:
    edges = [("A", "B", True), ("B", "A", True), ("C", "D", True), ("D", "C", True)]
    result = graph(edges, {"A": 25, "B": 25, "C": 30, "D": 20}).core()
    assert not result.has_core and result.core == []
    assert result.largest_share == pytest.approx(0.5)
    assert sorted(result.islands) == ["A", "B", "C", "D"]
    heavier = graph(edges, {"A": 25, "B": 25.5, "C": 30, "D": 19.5}).core()
    assert heavier.has_core and heavier.core == ["A", "B"]


def test_peninsulas_are_measured_unreachable_pairs_inside_the_core() -> None:
    edges = [*CYCLE, ("A", "C", False), ("B", "A", False), ("D", "A", False), ("C", "B", False)]
    edges.append(("C", "B", True))  # measured both ways: reachable at least once -> not a peninsula
    result = graph(edges, {"A": 40, "B": 30, "C": 20, "D": 10}).core()
    assert sorted(result.peninsulas) == [("A", "C"), ("B", "A")]  # D->A: D is not in the core


def test_core_without_answers_secession() -> None:
    g = graph(CYCLE, {"A": 40, "B": 30, "C": 20, "D": 10})
    without_d = g.core_without(["D"])
    assert without_d.has_core and without_d.core == ["A", "B", "C"]
    without_a = g.core_without(["A"])  # B and C no longer form a cycle
    assert not without_a.has_core and without_a.cut == ["A"]
    ring = [("A", "B", True), ("B", "A", True), ("B", "C", True), ("C", "B", True)]
    assert graph(ring, {"A": 40, "B": 30, "C": 30}).core_without(["A"]).core == ["B", "C"]
    assert not graph(ring, {"A": 50, "B": 30, "C": 20}).core_without(["A"]).has_core  # 50%
    with pytest.raises(InputError, match="unknown group"):
        g.core_without(["Z"])


def test_missing_weight_is_an_input_error() -> None:
    with pytest.raises(InputError, match="no weight for group"):
        graph(CYCLE, {"A": 1, "B": 1, "C": 1})


def test_cli_core(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    relation = tmp_path / "rel.csv"
    relation.write_text(
        "src_group,dst_group,reachable\n"
        + "".join(f"{a},{b},{'true' if ok else '0'}\n" for a, b, ok in CYCLE)
    )
    weights = tmp_path / "w.csv"
    weights.write_text("group,weight\nA,40\nB,30\nC,20\nD,10\n")
    code, out, _ = run_cli(
        ["reach", "core", str(relation), "--weights", str(weights), "--without", "A", "--json"],
        capsys,
    )
    assert code == 0
    result = json.loads(out)
    assert result["core"]["core"] == ["A", "B", "C"] and result["without"]["has_core"] is False
    code, out, _ = run_cli(["reach", "core", str(relation), "--weights", str(weights)], capsys)
    assert code == 0 and "core of 3 group(s), 90.0% of weight" in out
    relation.write_text("src_group,dst_group,reachable\nA,B,maybe\n")
    code, _, err = run_cli(["reach", "core", str(relation), "--weights", str(weights)], capsys)
    assert code == 2 and f"{relation}:2: reachable is 'maybe'" in err
    relation.write_text("src_group,dst_group,reachable\nA,B,1\n")
    weights.write_text("group,wrong\nA,1\n")
    code, _, err = run_cli(["reach", "core", str(relation), "--weights", str(weights)], capsys)
    assert code == 2 and "header lacks column(s) weight" in err
