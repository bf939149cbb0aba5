"""Block types in a spec (issue 17): ``within`` draws a fraction from chosen blocks only, the
``version`` key, and the router errors with ICMP codes 9 and 10. No root needed."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import numpy as np
import pytest

from liveness.errors import InputError
from liveness.testbed import load_spec
from liveness.testbed.layout import layout_for
from liveness.testbed.plan import make_plan
from liveness.testbed.rules import router_ruleset
from liveness.testbed.spec import TestbedSpec

BASE = """
name = "t"
population = ["198.18.0.0/22"]
[[vp]]
name = "vp1"
"""


def _load(tmp_path: Path, text: str, top: str = "") -> TestbedSpec:
    path = tmp_path / "spec.toml"
    path.write_text(top + BASE + text)
    return load_spec(path)


def _block(addresses: np.ndarray) -> set[str]:
    return {str(ipaddress.IPv4Address(int(a) & ~0xFF)) for a in addresses}


def test_within_draws_its_fraction_from_its_blocks_only(tmp_path: Path) -> None:
    text = """
[[assign]]
behaviour = "icmp_only"
fraction = 0.5
within = ["198.18.1.0/24", "198.18.2.0/24"]
[[assign]]
behaviour = "linux_host"
fraction = 0.5
within = ["198.18.1.0/24", "198.18.2.0/24"]
[[assign]]
behaviour = "web_server"
fraction = 0.75
within = ["198.18.0.0/24"]
[[assign]]
behaviour = "rst_only"
fraction = 0.1
"""
    plan = make_plan(_load(tmp_path, text))
    icmp, linux = plan.assigned["icmp_only"], plan.assigned["linux_host"]
    assert len(icmp) == len(linux) == 256  # half of the two /24s each: together all of them
    assert _block(icmp) | _block(linux) == {"198.18.1.0", "198.18.2.0"}
    assert len(np.intersect1d(icmp, linux)) == 0
    assert len(plan.assigned["web_server"]) == 192
    assert _block(plan.assigned["web_server"]) == {"198.18.0.0"}
    # the spread fraction is of the whole population, from what the regions left free
    rst = plan.assigned["rst_only"]
    assert len(rst) == round(0.1 * 1024)
    taken = np.concatenate([icmp, linux, plan.assigned["web_server"]])
    assert len(np.intersect1d(rst, taken)) == 0


def test_within_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"within: needs a fraction"):
        _load(
            tmp_path,
            '[[assign]]\nbehaviour = "icmp_only"\nblocks = ["198.18.0.0/24"]\n'
            'within = ["198.18.0.0/24"]\n',
        )
    with pytest.raises(InputError, match=r"198\.20\.0\.0/24"):
        _load(
            tmp_path,
            '[[assign]]\nbehaviour = "icmp_only"\nfraction = 0.5\nwithin = ["198.20.0.0/24"]\n',
        )
    over = '[[assign]]\nbehaviour = "{b}"\nfraction = 0.6\nwithin = ["198.18.0.0/24"]\n'
    spec = _load(tmp_path, over.format(b="icmp_only") + over.format(b="linux_host"))
    with pytest.raises(InputError, match=r"assign\[1\]: not enough unassigned addresses"):
        make_plan(spec)


def test_version_key(tmp_path: Path) -> None:
    assert _load(tmp_path, "").version == 1
    path = tmp_path / "v.toml"
    path.write_text(BASE.replace('name = "t"', 'name = "t"\nversion = 3'))
    assert load_spec(path).version == 3
    path.write_text(BASE.replace('name = "t"', 'name = "t"\nversion = 0'))
    with pytest.raises(InputError, match="version: must be a positive integer"):
        load_spec(path)
    assert load_spec("paper").version == 2


def test_router_prohibited_codes_9_and_10(tmp_path: Path) -> None:
    text = """
[[assign]]
behaviour = "router_net_prohibited"
blocks = ["198.18.0.0/30"]
[[assign]]
behaviour = "router_host_prohibited"
blocks = ["198.18.1.0/30"]
"""
    plan = make_plan(_load(tmp_path, text, top='population6 = ["2001:2::/62"]\n'))
    rows = plan.truth().to_pylist()
    codes = {(r["af"], r["target"] >> 8 & 0xFF, r["icmp_code"]) for r in rows}
    assert (4, 0, 9) in codes and (4, 1, 10) in codes
    assert {r["icmp_code"] for r in rows if r["af"] == 6} == {1}  # ICMPv6 admin-prohibited
    assert all(r["reply"] == "icmp_unreach" for r in rows)
    ruleset = router_ruleset(plan, layout_for(plan, "t0"), [])
    assert "reject with icmp type net-prohibited" in ruleset
    assert "reject with icmp type host-prohibited" in ruleset
