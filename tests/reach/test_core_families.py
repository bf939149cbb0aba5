"""Two Internet cores, one per address family, on a hand-made relation worked out by hand.

Groups A, B, C, D (ASes or VPs) in both families:

- IPv4: A->B->C->A (a cycle) and A->D; active IPv4 addresses A 40, B 30, C 20, D 10. The core
  is {A, B, C} with 90 of 100; D is an island (A reaches it, it reaches no one).
- IPv6: A<->D only; active IPv6 addresses A 10, B 20, C 20, D 50. {A, D} holds 60 of 100:
  the IPv6 core. B and C are IPv6 islands while members of the IPv4 core, and D is an IPv4
  island while in the IPv6 core.

Secession, weights kept in the totals:
- without D: IPv4 keeps {A, B, C} (90%); IPv6 has only singletons, the heaviest D at 50%:
  exactly half is no core.
- without A: IPv4 has singletons, the heaviest A itself (cut off, it keeps its 40%): no core;
  IPv6 likewise (D 50%): no core.
- without B: IPv4 breaks the cycle: no core (A 40%); IPv6 keeps {A, D} (60%).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_runner import run_cli
from liveness.errors import InputError
from liveness.reach.core import FamilyCores

EDGES = [
    ("A", "B", True, 4), ("B", "C", True, 4), ("C", "A", True, 4), ("A", "D", True, 4),
    ("A", "D", True, 6), ("D", "A", True, 6), ("B", "C", False, 6),
]  # fmt: skip
WEIGHTS = {4: {"A": 40, "B": 30, "C": 20, "D": 10}, 6: {"A": 10, "B": 20, "C": 20, "D": 50}}


def cores() -> FamilyCores:
    src, dst, ok, af = (list(c) for c in zip(*EDGES, strict=True))
    return FamilyCores.build(src, dst, ok, af, {k: dict(v) for k, v in WEIGHTS.items()})


def test_two_cores_computed_separately() -> None:
    found = cores().cores()
    assert found[4].has_core and found[4].core == ["A", "B", "C"] and found[4].islands == ["D"]
    assert found[4].largest_share == pytest.approx(0.9)
    assert found[6].has_core and found[6].core == ["A", "D"] and found[6].islands == ["B", "C"]
    assert found[6].largest_share == pytest.approx(0.6)
    assert found[6].peninsulas == []  # B->C measured unreachable, but neither is in the core


@pytest.mark.parametrize(
    ("cut", "v4", "v6"),
    [
        ("D", (True, 0.9), (False, 0.5)),
        ("A", (False, 0.4), (False, 0.5)),
        ("B", (False, 0.4), (True, 0.6)),
    ],
)
def test_secession_per_family(cut: str, v4: tuple[bool, float], v6: tuple[bool, float]) -> None:
    found = cores().cores_without([cut])
    for af, (has_core, share) in ((4, v4), (6, v6)):
        assert found[af].has_core is has_core
        assert found[af].largest_share == pytest.approx(share)
        assert found[af].cut == [cut]


def test_a_family_without_groups_has_no_core_and_cuts_skip_it() -> None:
    one = FamilyCores.build(["A", "B"], ["B", "A"], [True, True], [4, 4], {4: {"A": 1, "B": 1}})
    found = one.cores()
    assert found[4].core == ["A", "B"] and not one.measured(6)
    assert not found[6].has_core and found[6].total_weight == 0 and found[6].core == []
    assert one.cores_without(["A"])[6].cut == []  # A is no IPv6 group: nothing cut there
    with pytest.raises(InputError, match="unknown group"):
        one.cores_without(["Z"])
    with pytest.raises(InputError, match="IPv6: no weight for group"):
        FamilyCores.build(["A"], ["B"], [True], [6], {6: {"A": 1}})


def _files(tmp_path: Path) -> tuple[Path, Path]:
    relation = tmp_path / "rel.csv"
    relation.write_text(
        "src_group,dst_group,reachable,af\n"
        + "".join(f"{a},{b},{int(ok)},{af}\n" for a, b, ok, af in EDGES)
    )
    weights = tmp_path / "w.csv"
    weights.write_text(
        "group,weight,af\n"
        + "".join(f"{g},{w},{af}\n" for af, table in WEIGHTS.items() for g, w in table.items())
    )
    return relation, weights


def test_cli_core_per_family(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    relation, weights = _files(tmp_path)
    args = ["reach", "core", str(relation), "--weights", str(weights), "--without", "D"]
    code, out, _ = run_cli([*args, "--json"], capsys)
    assert code == 0
    result = json.loads(out)
    assert result["core"]["core"] == ["A", "B", "C"]  # the IPv4 keys where they always were
    assert result["without"]["has_core"] is True
    v4, v6 = result["families"]["4"], result["families"]["6"]
    assert (v4["has_core"], v4["core_remains"], v4["groups"]) == (True, True, 4)
    assert v6["core"]["core"] == ["A", "D"] and v6["core_remains"] is False
    assert v6["without"]["largest_share"] == pytest.approx(0.5)
    code, out, _ = run_cli(args, capsys)
    assert code == 0
    assert "IPv4: core of 3 group(s), 90.0% of weight" in out
    assert "IPv6: core of 2 group(s), 60.0% of weight" in out
    assert "IPv4 without D (a core remains; cut: D)" in out
    assert "IPv6 without D (no core would remain; cut: D)" in out


def test_cli_core_families_from_block_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No af column: IP block names say their family; a relation of IPv4 only reads as before
    and says it has no IPv6 core."""
    relation = tmp_path / "rel.csv"
    relation.write_text(
        "src_group,dst_group,reachable\n"
        "2001:db8::/48,2001:db8:1::/48,1\n2001:db8:1::/48,2001:db8::/48,yes\n"
        "10.0.0.0/24,10.0.1.0/24,1\n"
    )
    weights = tmp_path / "w.csv"
    weights.write_text(
        "group,weight\n2001:db8::/48,5\n2001:db8:1::/48,5\n2001:db8:2::/48,1\n"
        "10.0.0.0/24,1\n10.0.1.0/24,1\n"
    )
    code, out, _ = run_cli(
        ["reach", "core", str(relation), "--weights", str(weights), "--json"], capsys
    )
    assert code == 0
    result = json.loads(out)
    assert result["core"]["has_core"] is False  # IPv4: two singletons of 1 each, 50% at most
    v6 = result["families"]["6"]["core"]
    assert v6["core"] == ["2001:db8:1::/48", "2001:db8::/48"]
    assert v6["islands"] == ["2001:db8:2::/48"] and v6["largest_share"] == pytest.approx(10 / 11)
    only4 = tmp_path / "only4.csv"
    only4.write_text("src_group,dst_group,reachable\nA,B,1\nB,A,1\n")
    w4 = tmp_path / "w4.csv"
    w4.write_text("group,weight\nA,1\nB,1\n")
    code, out, _ = run_cli(["reach", "core", str(only4), "--weights", str(w4), "--json"], capsys)
    result = json.loads(out)
    assert result["core"]["core"] == ["A", "B"] and result["families"]["6"]["measured"] is False
    assert result["families"]["6"]["has_core"] is False
    code, out, _ = run_cli(["reach", "core", str(only4), "--weights", str(w4)], capsys)
    assert "IPv6: no IPv6 groups in the relation or weights, so no IPv6 core" in out


@pytest.mark.parametrize(
    ("relation", "weights", "message"),
    [
        ("src_group,dst_group,reachable,af\nA,B,1,5\n", "group,weight\nA,1\nB,1\n",
         "rel.csv:2: af is '5', expected 4 or 6"),
        ("src_group,dst_group,reachable\n10.0.0.0/24,2001:db8::/48,1\n", "group,weight\n",
         "rel.csv:2: '2001:db8::/48' is IPv6, but the row is IPv4"),
        ("src_group,dst_group,reachable,af\n2001:db8::/48,B,1,4\n", "group,weight\n",
         "rel.csv:2: '2001:db8::/48' is IPv6, but the row is IPv4"),
        ("src_group,dst_group,reachable,af\nA,B,1,4\nA,B,1,6\n", "group,weight\nA,1\nB,1\n",
         "group 'A' has no af and the relation is IPv4 and IPv6"),
        ("src_group,dst_group,reachable,af\nA,B,1,6\n", "group,weight,af\nA,1,6\n",
         "IPv6: no weight for group(s) B"),
    ],
)  # fmt: skip
def test_cli_core_bad_families_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], relation: str, weights: str, message: str
) -> None:
    (tmp_path / "rel.csv").write_text(relation)
    (tmp_path / "w.csv").write_text(weights)
    code, _, err = run_cli(
        ["reach", "core", str(tmp_path / "rel.csv"), "--weights", str(tmp_path / "w.csv")], capsys
    )
    assert code == 2 and message in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
