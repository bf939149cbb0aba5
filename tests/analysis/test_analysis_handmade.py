"""Every analysis on the small hand-made scan of ``handmade_rows.py`` (its hosts are listed
there), with every answer worked out by hand below."""

from __future__ import annotations

import json
from typing import Any

import pytest
from analysis_replies import WriteReplies, reply_table
from handmade_rows import ROWS

from liveness.analysis import ANALYSES, summarize, summarize_table


@pytest.fixture
def summary(write_replies: WriteReplies) -> dict[str, Any]:
    return summarize([write_replies(ROWS, "scan.parquet")])


def test_summary_has_every_analysis_and_inputs(summary: dict[str, Any]) -> None:
    assert set(ANALYSES) <= set(summary)
    assert json.loads(json.dumps(summary)) == summary  # plain JSON types only
    assert summary["inputs"]["rows"] == len(ROWS)
    assert summary["inputs"]["errors"] == 0


def test_coverage_counts_router_not_target(summary: dict[str, Any]) -> None:
    cov = summary["coverage"]
    assert cov["all"] == 12  # A B C D F G H I K .252 .253 .254; never 198.18.1.5 etc.
    assert cov["union"] == 12 and cov["outside_families"] == 0
    fam = cov["families"]
    assert (fam["icmp"]["alive"], fam["icmp"]["only_this_family"]) == (4, 3)  # A G H R
    assert (fam["tcp"]["alive"], fam["tcp"]["only_this_family"]) == (6, 5)  # A B C I K .253
    assert (fam["udp"]["alive"], fam["udp"]["only_this_family"]) == (4, 3)  # A D F .252
    assert cov["all_blocks"] == 1 and fam["tcp"]["blocks_only_this_family"] == 0
    assert summary["probes"]["icmp_echo"]["targets_with_router_error"] == 1


def test_reply_kinds(summary: dict[str, Any]) -> None:
    rk = summary["reply_kinds"]
    assert rk["families"]["icmp"] == {"positive_only": 3, "errors_only": 1, "both": 0}
    assert rk["families"]["tcp"] == {"positive_only": 3, "errors_only": 2, "both": 1}
    assert rk["families"]["udp"] == {"positive_only": 1, "errors_only": 3, "both": 0}
    assert rk["errors_only_all"] == 5  # R I .253 F .252 (A and K also sent positive replies)
    assert rk["errors_only_share_of_all"] == pytest.approx(5 / 12)
    assert rk["errors_only_revealed_by_family"] == {"icmp": 1, "tcp": 2, "udp": 2}


def test_icmp_errors(summary: dict[str, Any]) -> None:
    fam = summary["icmp_errors"]["families"]
    assert fam["icmp"]["host_unreachable"] == {"targets": 1, "replies": 1}
    assert fam["icmp"]["from_other_address"] == {"targets": 1, "replies": 1, "sources": 1}
    assert fam["icmp"]["from_target"]["targets"] == 0
    tcp = fam["tcp"]
    assert tcp["other_unreachable"]["targets"] == 2
    assert tcp["other_unreachable"]["targets_by_code"] == {"13": 2}
    assert tcp["other_unreachable"]["admin_prohibited_share_of_other"] == 1.0
    assert tcp["other_errors"]["param_problem"]["targets"] == 1
    assert tcp["from_target"]["targets"] == 2 and tcp["from_other_address"]["targets"] == 1
    udp = fam["udp"]
    assert udp["port_unreachable"]["targets"] == 2
    assert udp["other_errors"]["time_exceeded"]["targets"] == 1
    assert udp["any_error"] == {"targets": 3, "replies": 3}


def test_transport(summary: dict[str, Any]) -> None:
    tr = summary["transport"]
    assert tr["active"] == 4 and tr["alive"] == 3  # A B C K; C is RST-only
    assert tr["active_share_of_all"] == pytest.approx(4 / 12)
    assert (tr["synack_only"], tr["rst_only"], tr["both"]) == (2, 1, 1)
    hist = tr["ports_answered"]
    assert hist["1"] == {"addresses": 2, "synack_only": 1, "rst_only": 1, "both": 0}
    assert hist["5"] == {"addresses": 2, "synack_only": 1, "rst_only": 0, "both": 1}
    assert hist["2"]["addresses"] == hist["3"]["addresses"] == hist["4"]["addresses"] == 0
    assert tr["ports"]["22"] == {
        "active": 3,
        "alive": 1,
        "rst_only": 2,
        "both": 0,
        "only_this_port": 1,
    }
    assert tr["ports"]["80"]["only_this_port"] == 1 and tr["ports"]["80"]["alive"] == 3


def test_tarpits(summary: dict[str, Any]) -> None:
    tp = summary["tarpits"]
    assert tp["tarpits"] == 1 and tp["synack_all_five_ports"] == 1
    assert tp["transport_alive_without_tarpits"] == 2  # A and K
    port80 = tp["ports"]["80"]
    assert (port80["alive_with_tarpits"], port80["alive_without_tarpits"]) == (3, 2)
    assert port80["inflation"] == pytest.approx(0.5)
    assert (
        tp["ports"]["22"]["alive_without_tarpits"] == 0 and tp["ports"]["22"]["inflation"] is None
    )


def test_conditional(summary: dict[str, Any]) -> None:
    cond = summary["conditional"]
    probes = cond["probes"]
    assert len(probes) == 8

    def p(b: str, a: str) -> float | None:
        value: float | None = cond["matrix"][probes.index(a)][probes.index(b)]
        return value

    assert p("tcp_syn:22", "icmp_echo") == pytest.approx(1 / 3)  # A of {A G H}
    assert p("tcp_syn:80", "tcp_syn:22") == pytest.approx(2 / 3)  # A B of {A B C}
    assert p("udp_ntp", "udp_dns") == 1.0
    assert p("icmp_echo", "icmp_echo") == 1.0
    assert cond["active"][probes.index("udp_dns")] == 1


def test_application(summary: dict[str, Any]) -> None:
    app = summary["application"]
    assert app["udp_dns"]["active"] == 1 and app["udp_dns"]["alive"] == 0
    assert app["udp_dns"]["active_not_alive"] == 1
    assert app["udp_dns"]["port_unreachable_from_target"] == 1
    assert (app["udp_ntp"]["active"], app["udp_ntp"]["alive"]) == (1, 1)


def test_retransmission_gain_only_without_attempt_zero(summary: dict[str, Any]) -> None:
    rt = summary["retransmission"]
    assert rt["probes"]["icmp_echo"] == {"found": 4, "gain": 1, "share": 0.25}  # G, not H
    assert rt["probes"]["tcp_syn:22"]["gain"] == 0
    assert rt["overall"]["gain"] == 1 and rt["overall"]["found"] == 12


def test_headline(summary: dict[str, Any]) -> None:
    hl = summary["headline"]
    assert hl["icmp_alive"] == 4 and hl["echo_reply_alive"] == 3  # A G H (+ router R)
    assert hl["all_added_over_echo_reply"] == 9
    assert hl["tcp_udp_added_over_icmp"] == 8  # B C I K .253 D F .252
    assert hl["tcp_udp_gain_over_icmp"] == pytest.approx(2.0)
    assert hl["positive_alive"] == 6  # A B D G H K
    assert hl["negative_only_added"] == 6  # C R I .253 F .252
    assert hl["all_five_ports_share_of_transport_active"] == pytest.approx(0.5)


def test_address_map_highest_layer_per_24(summary: dict[str, Any]) -> None:
    amap = summary["address_map"]
    assert amap["prefix"] == "198.18.0.0/22" and amap["cell_prefix_len"] == 24
    assert amap["cells"] == "4000"  # only 198.18.0.0/24 holds alive hosts; D is app-alive


def test_per_probe_counts(summary: dict[str, Any]) -> None:
    probes = summary["probes"]
    assert probes["tcp_syn:22"]["rst"] == 2 and probes["tcp_syn:22"]["synack"] == 1
    assert probes["icmp_echo"]["replies"] == 5 and probes["tcp_syn:22"]["replies"] == 4
    assert probes["tcp_syn:random"]["alive"] == 1
    assert probes["udp_ntp"]["udp_valid"] == 1 and probes["udp_dns"]["udp_invalid"] == 1
    assert probes["icmp_echo"]["icmp_error_from_router"] == 1
    assert probes["icmp_echo"]["first_attempt_alive"] == 3


def test_shards_merge_to_the_same_summary(write_replies: WriteReplies) -> None:
    whole = summarize([write_replies(ROWS, "whole.parquet")])
    shards = [write_replies(ROWS[i::3], f"shard{i}.parquet") for i in range(3)]
    split = summarize(shards)
    for key in (*ANALYSES, "probes", "address_map"):
        assert split[key] == whole[key], key


def test_in_memory_table_gives_the_same_summary(summary: dict[str, Any]) -> None:
    from_table = summarize_table(reply_table(ROWS), "scan")
    for key in (*ANALYSES, "probes", "address_map"):
        assert from_table[key] == summary[key], key
