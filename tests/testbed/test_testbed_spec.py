"""Specs and plans without root: checking, assignment, truth, generated rulesets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from liveness.errors import InputError
from liveness.testbed import load_spec, shipped_specs
from liveness.testbed.behaviours import BUILTIN_BEHAVIOURS, PROBES, answers
from liveness.testbed.layout import layout_for
from liveness.testbed.plan import make_plan
from liveness.testbed.rules import guard_ruleset, inet_ruleset, router_ruleset, schedule_cuts
from liveness.testbed.truth_schema import SCHEDULE_SCHEMA, TRUTH_SCHEMA

BASE = """
name = "t"
population = ["198.18.0.0/22"]
[[vp]]
name = "vp1"
"""


def _spec(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.toml"
    path.write_text(text)
    return path


def test_shipped_specs_load_and_plan() -> None:
    assert {"paper", "connectivity", "small"} <= set(shipped_specs())
    connectivity = load_spec("connectivity")
    assert len(connectivity.vps) == 6
    assert {e.kind for e in connectivity.events} == {"outage", "peninsula", "island"}


def test_paper_proportions_and_truth() -> None:
    plan = make_plan(load_spec("paper"))
    n = len(plan.population)
    assert n == 2**17 - 256  # the /15 minus the infrastructure /24
    counts = {name: len(a) for name, a in plan.assigned.items()}
    alive = sum(counts.values())
    assert 0.1 < alive / n < 0.5  # most addresses are silent

    def answers_tcp(name: str) -> bool:
        replies = answers(plan.spec.behaviours[name]).values()
        return any(a is not None and a.reply in ("synack", "rst") for a in replies)

    tcp_alive = sum(c for name, c in counts.items() if answers_tcp(name))
    # the study's 1.9M tarpits of 262M transport-active addresses (0.73%), within a quarter
    assert 0.0055 < counts["tarpit"] / tcp_alive < 0.0091
    code13 = counts["router_prohibit"] + counts["host_prohibit"]
    assert code13 > counts["router_host_unreach"] + counts["router_net_unreach"]
    truth = plan.truth()
    assert truth.schema.equals(TRUTH_SCHEMA)
    assert set(truth["probe"].to_pylist()) == set(PROBES)
    losses = np.unique(truth["loss"].to_numpy())
    assert losses[0] == 0 and len(losses) >= 3  # clean, random loss, bursty, both
    # every truth row is a population address with a non-silent behaviour
    targets = np.unique(truth["target"].to_numpy())
    assert len(targets) == alive


def test_fractions_are_exact_and_seeded(tmp_path: Path) -> None:
    text = BASE + '[[assign]]\nbehaviour = "icmp_only"\nfraction = 0.25\n'
    plan_a = make_plan(load_spec(_spec(tmp_path, text)))
    plan_b = make_plan(load_spec(_spec(tmp_path, text)))
    assert len(plan_a.assigned["icmp_only"]) == 256
    assert np.array_equal(plan_a.assigned["icmp_only"], plan_b.assigned["icmp_only"])
    other = make_plan(
        load_spec(_spec(tmp_path, text.replace('name = "t"', 'name = "t"\nseed = 9')))
    )
    assert not np.array_equal(plan_a.assigned["icmp_only"], other.assigned["icmp_only"])


def test_rules_are_per_behaviour_not_per_address() -> None:
    plan = make_plan(load_spec("small"))
    layout = layout_for(plan, "abc")
    inet = inet_ruleset(plan)
    hosts = [n for n in plan.assigned if plan.spec.behaviours[n].router is None]
    assert inet.count("\tchain b_") == len(hosts)
    rule_lines = [line for line in inet.splitlines() if line.startswith("\t\t")]
    assert len(rule_lines) < 20 * len(hosts)  # independent of the number of addresses
    router = router_ruleset(plan, layout, schedule_cuts(plan, layout))
    assert "reject with icmp type admin-prohibited" in router
    assert "ip ttl set 1" in router
    assert "numgen random" in router


def test_island_cuts_both_ways() -> None:
    spec = load_spec("connectivity")
    plan = make_plan(spec)
    cuts = schedule_cuts(plan, layout_for(plan, "x"))
    island = [c for c in cuts if c.set_name.startswith("ev2")]
    assert len(island) == 2
    out, inward = island
    assert out.ifnames == ("r-vp6",) and len(inward.ifnames) == 5
    assert [str(n) for n in inward.nets] == ["198.18.255.0/24"]
    schedule = plan.schedule()
    assert schedule.schema.equals(SCHEDULE_SCHEMA)
    assert schedule.num_rows == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (BASE.replace("198.18.0.0/22", "10.0.0.0/24"), "outside the benchmarking range"),
        (BASE + '[[assign]]\nbehaviour = "teapot"\nfraction = 0.1\n', "unknown behaviour 'teapot'"),
        (BASE + "[[assign]\nbehaviour = 1\n", "line 6"),
        (BASE + '[[assign]]\nbehaviour = "icmp_only"\naddresses = ["8.8.8.8"]\n', "8.8.8.8"),
        (BASE + '[[event]]\nkind = "island"\nvps = ["vp1"]\nstart = 1\n', "lan block"),
        (BASE + '[[event]]\nkind = "meteor"\n', "unknown event kind"),
        (
            BASE + '[[assign]]\nbehaviour = "icmp_only"\nfraction = 0.7\n'
            '[[assign]]\nbehaviour = "rst_only"\nfraction = 0.7\n',
            "more than 1",
        ),
        (BASE + '[[loss]]\nvps = ["nobody"]\nloss = 0.1\n', "unknown VP 'nobody'"),
        (
            BASE + '[behaviour.x]\nicmp = "reply"\ntcp = { other = "open", 22 = "closed" }\n',
            "tarpit",
        ),
        ('name = "t"\n', "at least one [[vp]]"),
    ],
)
def test_bad_specs_are_refused_with_a_clear_message(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(InputError, match=None) as caught:
        make_plan(load_spec(_spec(tmp_path, text)))
    assert message in str(caught.value)
    assert "spec.toml" in str(caught.value)


def test_custom_behaviour(tmp_path: Path) -> None:
    text = BASE + (
        '[behaviour.ssh_only]\nicmp = "drop"\ntcp = { "22" = "open", other = "closed" }\n'
        '[[assign]]\nbehaviour = "ssh_only"\nblocks = ["198.18.1.0/24"]\n'
    )
    plan = make_plan(load_spec(_spec(tmp_path, text)))
    rows = plan.truth().to_pylist()
    assert {(r["probe"], r["reply"]) for r in rows} == {
        ("tcp_syn:22", "synack"),
        *((f"tcp_syn:{p}", "rst") for p in (23, 80, 443, 7547)),
        ("tcp_syn:random", "rst"),
    }
    assert len(rows) == 256 * 6
    assert "silent" in BUILTIN_BEHAVIOURS


def test_a_chain_is_hooked_only_where_it_has_rules(tmp_path: Path) -> None:
    """Hosts that only answer: no tproxy hook, and no router hook at all (each costs every
    packet); add a tarpit, a router error, a hop-limit address and a cut, and each comes back."""
    plain = make_plan(
        load_spec(_spec(tmp_path, BASE + '[[assign]]\nbehaviour = "linux_host"\nfraction = 1.0\n'))
    )
    layout = layout_for(plain, "t")
    inet, router = inet_ruleset(plain), router_ruleset(plain, layout, [])
    assert "tproxy" not in inet and "@tarpit" not in inet
    assert inet.count("type filter hook") == 1  # the behaviour map's input chain
    assert "hook" not in router and "@router_error" not in router and "ttl set" not in router
    busy = make_plan(load_spec("small"))
    layout = layout_for(busy, "t")
    inet = inet_ruleset(busy)
    router = router_ruleset(busy, layout, schedule_cuts(busy, layout))
    assert "ip daddr @tarpit meta l4proto tcp tproxy to :4" in inet
    assert (
        "ip daddr vmap @router_error" in router and "ip daddr @ttl_exceeded ip ttl set 1" in router
    )
    assert "hook prerouting priority -200" in router and "hook forward priority filter" in router


def test_only_the_internet_guard_rewrites_error_sources_and_before_its_check() -> None:
    internet, host, router = (
        guard_ruleset("internet"),
        guard_ruleset("host"),
        guard_ruleset("router"),
    )
    rewrite = "ip6 saddr set @th,256,128"
    assert rewrite not in host and rewrite not in router
    assert internet.index(rewrite) < internet.index(
        "ip6 saddr 2001:2::/48 ip6 daddr 2001:2::/48 accept"
    )
    assert "hook forward" in router and "hook forward" not in internet + host
