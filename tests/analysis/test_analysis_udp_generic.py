"""The generic ``udp:PORT[:PAYLOAD]`` probes in the analyses, answers worked out by hand.

They are counted together as ``udp:*``: one more probe of the UDP family (coverage, the
address map's application layer) and of analysis 7, where any UDP answer makes an address
application-active and a valid one (``app_valid``) application-alive. Other probes outside the
default set (``icmp_timestamp``) still count for "all" only, and say so in ``unknown_probes``.
"""

from __future__ import annotations

from analysis_replies import Row, reply_table

from liveness.analysis import summarize_table

ROWS: list[Row] = [
    # A: SNMP answers validly; B: SSDP answers with a payload its parser rejects
    ("udp:161:snmp", "198.18.0.1", "198.18.0.1", "udp", -1, 0, True),
    ("udp:1900:ssdp", "198.18.0.2", "198.18.0.2", "udp", -1, 0, False),
    # C: CoAP's port is closed: a port unreachable from the target itself
    ("udp:5683:coap", "198.18.0.3", "198.18.0.3", "icmp_unreach", 3, 0, False),
    # D: DNS, and SNMP only on the retransmission
    ("udp_dns", "198.18.0.4", "198.18.0.4", "udp", -1, 0, True),
    ("udp:161:snmp", "198.18.0.4", "198.18.0.4", "udp", -1, 1, True),
    # E: ICMP echo only; F: only a probe outside the default set
    ("icmp_echo", "198.18.0.5", "198.18.0.5", "echo_reply", -1, 0, False),
    ("icmp_timestamp", "198.18.0.6", "198.18.0.6", "timestamp_reply", -1, 0, False),
]


def test_generic_udp_probes_are_application_probes_of_the_udp_family() -> None:
    summary = summarize_table(reply_table(ROWS), "handmade")
    generic = summary["application"]["udp:*"]
    # active: A, B, D (any payload); alive: A, D (valid); C's port unreachable is from itself
    assert (generic["active"], generic["alive"], generic["active_not_alive"]) == (3, 2, 1)
    assert generic["port_unreachable_from_target"] == 1
    assert summary["application"]["udp_dns"]["active"] == 1
    # the UDP family: A, B, C (its own error makes it network-alive), D
    assert summary["coverage"]["families"]["udp"]["alive"] == 4
    assert summary["coverage"]["families"]["udp"]["only_this_family"] == 4
    probe = summary["probes"]["udp:*"]
    assert (probe["replies"], probe["alive"], probe["udp_valid"], probe["udp_invalid"]) == (
        4, 4, 2, 1,
    )  # fmt: skip
    assert probe["icmp_error_from_target"] == 1 and probe["first_attempt_alive"] == 3
    # D's SNMP answer came only from the retransmission
    assert summary["retransmission"]["probes"]["udp:*"] == {"found": 4, "gain": 1, "share": 0.25}
    # F counts for "all" only, and is named
    assert summary["unknown_probes"] == ["icmp_timestamp"]
    assert summary["coverage"]["union"] == 5  # A-E: the families' union
    assert summary["headline"]["all_alive"] == 6  # F too


def test_without_generic_udp_probes_the_summary_has_no_udp_star() -> None:
    plain = [row for row in ROWS if not row[0].startswith("udp:")]
    summary = summarize_table(reply_table(plain), "handmade")
    assert "udp:*" not in summary["application"]
    assert "udp:*" not in summary["probes"]
    assert "udp:*" not in summary["retransmission"]["probes"]
    assert summary["coverage"]["families"]["udp"]["alive"] == 1
