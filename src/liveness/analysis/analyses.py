"""The study's analyses 1..9 (issue 5), each a JSON-able dict computed from merged bitmaps.

Counts are numbers of distinct addresses unless a key says ``replies`` (rows) or ``blocks``
(/24 blocks for IPv4, prefixes of ``ReplySets.prefix6`` bits for IPv6: the same functions
analyse both families). Shares are fractions in [0, 1], ``None`` when the denominator is 0.

Every count is a sum over addresses, so an analysis can run on disjoint address slices of the
bitmaps (``ReplySets`` of :meth:`~.partial.ReplyPartial.restricted` partials, which bounds the
memory of the sets it builds) and the results add up: the functions here return shares as
:class:`Ratio` (part, whole) pairs, :func:`combine` adds two results and :func:`finish` turns
the pairs into fractions.

Definitions (DESIGN.md taxonomy):

- *alive* (network layer): the address sourced a reply; a router-sourced ICMP error makes the
  router alive, not the probed target. "All" is every alive address over every probe.
- *positive* reply (analysis 2): a reply in the probe's own protocol (echo reply, SYN-ACK, RST,
  UDP payload), as opposed to an ICMP error. *negative* replies (headline): RST and ICMP errors.
- *active* for the conditional matrix: echo reply (ICMP), SYN-ACK or RST (a TCP port), any UDP
  payload (DNS, NTP).
- *tarpit*: SYN-ACK on all five probed ports and on the random high port.
- *retransmission gain*: addresses found by a probe but never in reply to its first attempt
  (attempt 0), i.e. found only through retransmissions (robust to reordered replies).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from pyroaring import BitMap

from liveness.analysis.sets import ReplySets
from liveness.analysis.taxonomy import (
    ALL_PROBES,
    APP_PROBES,
    CONDITIONAL_PROBES,
    ERR_ROUTER,
    ERR_TARGET,
    ERROR_KINDS,
    FAMILIES,
    KIND_ECHO,
    KIND_NAMES,
    KIND_RST,
    KIND_SYNACK,
    KIND_UDP_INVALID,
    KIND_UDP_VALID,
    NEGATIVE_KINDS,
    OTHER_UDP_PROBES,
    POSITIVE_KINDS,
    RANDOM_PORT_PROBE,
    REPLY_KINDS,
    TCP_PORT_PROBES,
    class_of,
)

__all__ = [
    "Measured",
    "NonZero",
    "Ratio",
    "application",
    "combine",
    "conditional",
    "coverage",
    "finish",
    "headline",
    "icmp_errors",
    "per_probe",
    "reply_kinds",
    "retransmission",
    "share",
    "tarpit_set",
    "tarpits",
    "transport",
]

_CODE = {name: i for i, name in enumerate(ERROR_KINDS)}
_UNREACH_CODES = tuple(range(16))
_PORT_UNREACH = 3
_HOST_UNREACH = 1
_ADMIN_PROHIBITED = 13
_OTHER_ERRORS = ("time_exceeded", "redirect", "source_quench", "param_problem", "other")


def share(part: int, whole: int) -> float | None:
    """``part / whole``, or None when ``whole`` is 0."""
    return part / whole if whole else None


class Ratio(NamedTuple):
    """A share not divided yet: parts and wholes of disjoint address slices add up."""

    part: int
    whole: int


class NonZero(dict[str, int]):
    """Counts of which :func:`finish` keeps the non-zero ones (the same keys in every slice)."""


class Measured(dict[str, Any]):
    """A result that holds only if something was measured: its ``scanned`` is a count (of
    addresses that answered it) while slices add up, and :func:`finish` makes it True, or
    gives ``{"scanned": False}`` alone when it is 0 (no figures shown as if measured)."""


def combine(a: Any, b: Any) -> Any:
    """The result of two disjoint address slices: counts and ratios added, the rest kept."""
    if isinstance(a, Ratio):
        return Ratio(a.part + b.part, a.whole + b.whole)
    if isinstance(a, dict):
        return type(a)((k, combine(v, b[k])) for k, v in a.items())
    if isinstance(a, list):
        return [combine(x, y) for x, y in zip(a, b, strict=True)]
    if isinstance(a, int) and not isinstance(a, bool):
        return a + b
    return a  # names and notes, the same in every slice


def finish(result: Any) -> Any:
    """``result`` with every :class:`Ratio` turned into its share (None for a zero whole)."""
    if isinstance(result, Ratio):
        return share(result.part, result.whole)
    if isinstance(result, NonZero):
        return {k: n for k, n in result.items() if n}
    if isinstance(result, Measured):
        if not result["scanned"]:
            return {"scanned": False}
        return {**{k: finish(v) for k, v in result.items()}, "scanned": True}
    if isinstance(result, dict):
        return {k: finish(v) for k, v in result.items()}
    if isinstance(result, list):
        return [finish(v) for v in result]
    return result


def _port(probe: str) -> str:
    return probe.split(":", 1)[1]


def per_probe(sets: ReplySets) -> dict[str, Any]:
    """Per probe type: reply rows, alive addresses, and alive addresses by reply kind.

    What ground-truth checks compare with: ``alive`` counts every responder (routers included),
    ``<kind>`` the responders of that reply kind, ``targets_with_router_error`` the probed
    addresses that drew an ICMP error from a router, ``first_attempt_alive`` the responders to
    attempt 0.
    """
    result: dict[str, Any] = {}
    for probe in _probes(sets):
        index = sets.probe_indices([probe])[0]
        replies = sets.partial.class_rows[class_of(index, 0, False) : class_of(index + 1, 0, False)]
        row = {"replies": int(replies.sum()), "alive": len(sets.responders([probe]))}
        for kind in REPLY_KINDS:
            row[KIND_NAMES[kind]] = len(sets.responders([probe], [kind]))
        row["targets_with_router_error"] = len(
            sets.error_targets([probe], range(len(ERROR_KINDS)), from_target=False)
        )
        row["first_attempt_alive"] = len(sets.responders([probe], first_attempt_only=True))
        result[probe] = row
    return result


def _venn(members: list[BitMap]) -> tuple[int, list[int]]:
    """|union of ``members``| and, per member, how many of its addresses no other member has.

    By inclusion-exclusion over the intersections of every subset (2**n - 1 of them, fine for
    the three families), so no union and no "exactly one" set is ever built.
    """
    n = len(members)
    size: dict[int, int] = {}  # subset (bit mask) -> |intersection of its members|
    kept: dict[int, BitMap] = {}  # intersections that larger subsets are built from
    for subset in range(1, 1 << n):
        last = subset.bit_length() - 1
        rest = subset & ~(1 << last)
        if not rest:
            kept[subset] = members[last]
            size[subset] = len(members[last])
        elif last < n - 1:  # extended later by members after ``last``
            kept[subset] = kept[rest] & members[last]
            size[subset] = len(kept[subset])
        else:
            size[subset] = kept[rest].intersection_cardinality(members[last])
    sign = {t: 1 if t.bit_count() % 2 else -1 for t in size}
    total = sum(sign[t] * size[t] for t in size)
    only = [sum(sign[t] * size[t] for t in size if t >> i & 1) for i in range(n)]
    return total, only


def coverage(sets: ReplySets) -> dict[str, Any]:
    """Analysis 1: network-layer coverage per family, exclusive parts, union; also in /24s."""
    everyone = sets.network_alive
    alive = {f: sets.family_alive(f) for f in FAMILIES}
    blocks = {f: sets.blocks(s) for f, s in alive.items()}
    union_size, only = _venn(list(alive.values()))
    union_blocks, only_blocks = _venn(list(blocks.values()))
    families: dict[str, Any] = {
        f: {
            "alive": len(alive[f]),
            "only_this_family": only[i],
            "blocks": len(blocks[f]),
            "blocks_only_this_family": only_blocks[i],
        }
        for i, f in enumerate(FAMILIES)
    }
    return {
        "families": families,
        "union": union_size,
        "union_blocks": union_blocks,
        "all": len(everyone),
        "all_blocks": len(sets.network_blocks),
        # found only by probes outside the three families (the random port, unknown probes);
        # every family's set is part of ``everyone``
        "outside_families": len(everyone) - union_size,
    }


def reply_kinds(sets: ReplySets) -> dict[str, Any]:
    """Analysis 2: coverage by positive replies only, ICMP errors only, both; per family."""
    errors = (ERR_TARGET, ERR_ROUTER)
    families: dict[str, Any] = {}
    for f, probes in FAMILIES.items():
        positive = sets.responders(probes, POSITIVE_KINDS)
        error = sets.responders(probes, errors)
        families[f] = {
            "positive_only": positive.difference_cardinality(error),
            "errors_only": error.difference_cardinality(positive),
            "both": positive.intersection_cardinality(error),
        }
    everyone = sets.network_alive
    only_errors = sets.responders(None, errors) - sets.responders(None, POSITIVE_KINDS)
    return {
        "families": families,
        "errors_only_all": len(only_errors),
        "errors_only_share_of_all": Ratio(len(only_errors), len(everyone)),
        "errors_only_revealed_by_family": {
            f: only_errors.intersection_cardinality(sets.responders(p, errors))
            for f, p in FAMILIES.items()
        },
    }


def _error_kind_counts(
    sets: ReplySets, probes: tuple[str, ...], kinds: tuple[int, ...]
) -> dict[str, int]:
    return {
        "targets": len(sets.error_targets(probes, kinds, None)),
        "replies": sets.error_rows(probes, kinds, None),
    }


def icmp_errors(sets: ReplySets) -> dict[str, Any]:
    """Analysis 3: ICMP errors per family by type/code, and by source (target vs router)."""
    all_kinds = tuple(range(len(ERROR_KINDS)))
    other_unreach = tuple(c for c in _UNREACH_CODES if c not in (_PORT_UNREACH, _HOST_UNREACH))
    families: dict[str, Any] = {}
    for f, probes in FAMILIES.items():
        other_codes = NonZero(
            (str(c), len(sets.error_targets(probes, (c,), None))) for c in other_unreach
        )
        other_total = len(sets.error_targets(probes, other_unreach, None))
        unreach_total = len(sets.error_targets(probes, _UNREACH_CODES, None))
        admin = len(sets.error_targets(probes, (_ADMIN_PROHIBITED,), None))
        families[f] = {
            "any_error": _error_kind_counts(sets, probes, all_kinds),
            "port_unreachable": _error_kind_counts(sets, probes, (_PORT_UNREACH,)),
            "host_unreachable": _error_kind_counts(sets, probes, (_HOST_UNREACH,)),
            "other_unreachable": {
                **_error_kind_counts(sets, probes, other_unreach),
                "targets_by_code": other_codes,
                "admin_prohibited_share_of_other": Ratio(admin, other_total),
                "admin_prohibited_share_of_unreachable": Ratio(admin, unreach_total),
            },
            "other_errors": {
                name: _error_kind_counts(sets, probes, (_CODE[name],)) for name in _OTHER_ERRORS
            },
            "from_target": {
                "targets": len(sets.error_targets(probes, all_kinds, True)),
                "replies": sets.error_rows(probes, all_kinds, True),
            },
            "from_other_address": {
                "targets": len(sets.error_targets(probes, all_kinds, False)),
                "replies": sets.error_rows(probes, all_kinds, False),
                "sources": len(sets.responders(probes, (ERR_ROUTER,))),
            },
        }
    return {"families": families}


def _exactly(sets_list: list[BitMap]) -> list[BitMap]:
    """``out[k]``: addresses in exactly k of ``sets_list`` (k = 0 is left empty)."""
    n = len(sets_list)
    at_least = [BitMap() for _ in range(n + 2)]
    for i, member in enumerate(sets_list):
        for k in range(min(i + 1, n), 1, -1):  # at_least[k] is empty until k sets were seen
            at_least[k] |= at_least[k - 1] & member
        at_least[1] |= member
    return [BitMap()] + [at_least[k] - at_least[k + 1] for k in range(1, n + 1)]


def transport(sets: ReplySets) -> dict[str, Any]:
    """Analysis 4: transport-active addresses, ports answered per address, per-port counts."""
    active = sets.transport_active
    port_active = [sets.port_active(p) for p in TCP_PORT_PROBES]
    any_synack = sets.transport_alive
    any_rst = sets.responders(TCP_PORT_PROBES, [KIND_RST])
    synack_only, rst_only, both = any_synack - any_rst, any_rst - any_synack, any_synack & any_rst
    exactly = _exactly(port_active)
    histogram = {
        str(k): {
            "addresses": len(exactly[k]),
            "synack_only": exactly[k].intersection_cardinality(synack_only),
            "rst_only": exactly[k].intersection_cardinality(rst_only),
            "both": exactly[k].intersection_cardinality(both),
        }
        for k in range(1, len(TCP_PORT_PROBES) + 1)
    }
    ports: dict[str, Any] = {}
    for i, probe in enumerate(TCP_PORT_PROBES):
        synack, rst = sets.synack(probe), sets.rst(probe)
        ports[_port(probe)] = {
            "active": len(port_active[i]),
            "alive": len(synack),
            "rst_only": rst.difference_cardinality(synack),
            "both": rst.intersection_cardinality(synack),
            "only_this_port": port_active[i].intersection_cardinality(exactly[1]),
        }
    return {
        "active": len(active),
        "active_share_of_all": Ratio(len(active), len(sets.network_alive)),
        "alive": len(any_synack),
        "synack_only": len(synack_only),
        "rst_only": len(rst_only),
        "both": len(both),
        "ports_answered": histogram,
        "ports": ports,
    }


def tarpit_set(sets: ReplySets) -> BitMap:
    """SYN-ACK on every probed TCP port and on the random high port."""
    found = BitMap(sets.synack(RANDOM_PORT_PROBE))  # a copy: cached sets are shared
    for probe in TCP_PORT_PROBES:
        found &= sets.synack(probe)
    return found


def tarpits(sets: ReplySets) -> dict[str, Any]:
    """Analysis 5: tarpits and how much they inflate each port's alive (SYN-ACK) count."""
    pits = tarpit_set(sets)
    all_five = BitMap(sets.transport_alive)
    for probe in TCP_PORT_PROBES:
        all_five &= sets.synack(probe)
    ports: dict[str, Any] = {}
    for probe in TCP_PORT_PROBES:
        alive = sets.synack(probe)
        without = alive.difference_cardinality(pits)
        ports[_port(probe)] = {
            "alive_with_tarpits": len(alive),
            "alive_without_tarpits": without,
            "inflation": Ratio(len(alive) - without, without),
        }
    return {
        "tarpits": len(pits),
        "transport_alive_without_tarpits": sets.transport_alive.difference_cardinality(pits),
        "synack_all_five_ports": len(all_five),
        "synack_random_port": len(sets.synack(RANDOM_PORT_PROBE)),
        "tarpit_blocks": len(sets.blocks(pits)),
        "ports": ports,
    }


def _active_for(sets: ReplySets, probe: str) -> BitMap:
    if probe == "icmp_echo":
        return sets.responders([probe], [KIND_ECHO])
    if probe in APP_PROBES:
        return sets.app_active(probe)
    return sets.port_active(probe)


def conditional(sets: ReplySets) -> dict[str, Any]:
    """Analysis 6: P(active for B | active for A) for every pair of the eight probe types."""
    active = [_active_for(sets, p) for p in CONDITIONAL_PROBES]
    sizes = [len(a) for a in active]
    both = [[0] * len(active) for _ in active]  # |A & B|, symmetric: each pair counted once
    for i, a in enumerate(active):
        both[i][i] = sizes[i]
        for j in range(i + 1, len(active)):
            both[i][j] = both[j][i] = a.intersection_cardinality(active[j])
    matrix = [[Ratio(both[i][j], sizes[i]) for j in range(len(active))] for i in range(len(active))]
    return {
        "probes": list(CONDITIONAL_PROBES),
        "active": sizes,
        "matrix": matrix,
        "note": "matrix[i][j] = P(active for probes[j] | active for probes[i])",
    }


def _probes(sets: ReplySets, probes: tuple[str, ...] = ALL_PROBES) -> list[str]:
    """``probes``, and ``udp:*`` (the generic UDP probes) when the input has replies to them."""
    index = sets.probe_indices([OTHER_UDP_PROBES])[0]
    rows = sets.partial.class_rows[class_of(index, 0, False) : class_of(index + 1, 0, False)]
    return [*probes, *([OTHER_UDP_PROBES] if rows.sum() else [])]


def application(sets: ReplySets) -> dict[str, Any]:
    """Analysis 7: UDP application-active (any payload) vs application-alive (valid): DNS,
    NTP, and the generic ``udp:PORT`` probes together as ``udp:*`` when the scan had them."""
    result: dict[str, Any] = {}
    for probe in _probes(sets, APP_PROBES):
        active, alive = sets.app_active(probe), sets.app_alive(probe)
        result[probe] = {
            "active": len(active),
            "alive": len(alive),
            "active_not_alive": active.difference_cardinality(alive),
            "alive_share_of_active": Ratio(len(alive), len(active)),
            "port_unreachable_from_target": len(
                sets.error_targets([probe], (_PORT_UNREACH,), True)
            ),
        }
    return result


def retransmission(sets: ReplySets) -> dict[str, Any]:
    """Analysis 8: addresses found only through retransmissions, per probe and overall."""
    probes: dict[str, Any] = {}
    for probe in _probes(sets):
        found = sets.responders([probe])
        first = sets.responders([probe], first_attempt_only=True)
        gain = found.difference_cardinality(first)
        probes[probe] = {"found": len(found), "gain": gain, "share": Ratio(gain, len(found))}
    everyone = sets.network_alive
    gain_all = everyone.difference_cardinality(sets.responders(first_attempt_only=True))
    return {
        "probes": probes,
        "overall": {
            "found": len(everyone),
            "gain": gain_all,
            "share": Ratio(gain_all, len(everyone)),
        },
    }


def headline(sets: ReplySets, transport_result: dict[str, Any]) -> dict[str, Any]:
    """Analysis 9: what TCP+UDP add over ICMP; what negative replies add; all-five-port share.

    "ICMP alone" is the ICMP family's alive set (echo replies and ICMP errors answering echo
    requests); ``*_over_echo_reply`` compares every alive address with echo repliers only.
    """
    icmp = sets.family_alive("icmp")
    tcp_udp = sets.family_alive("tcp") | sets.family_alive("udp")
    added = tcp_udp.difference_cardinality(icmp)
    positive = sets.responders(None, (KIND_ECHO, KIND_SYNACK, KIND_UDP_VALID, KIND_UDP_INVALID))
    negative = sets.responders(None, NEGATIVE_KINDS)
    negative_added = negative.difference_cardinality(positive)
    active = transport_result["active"]
    all_five = transport_result["ports_answered"][str(len(TCP_PORT_PROBES))]["addresses"]
    everyone = len(sets.network_alive)
    echo = sets.echo_alive()
    beyond_echo = sets.network_alive.difference_cardinality(echo)
    return {
        "all_alive": everyone,
        "icmp_alive": len(icmp),
        "echo_reply_alive": len(echo),
        "all_added_over_echo_reply": beyond_echo,
        "all_gain_over_echo_reply": Ratio(beyond_echo, len(echo)),
        "tcp_udp_added_over_icmp": added,
        "tcp_udp_gain_over_icmp": Ratio(added, len(icmp)),
        "positive_alive": len(positive),
        "negative_only_added": negative_added,
        "negative_gain_over_positive": Ratio(negative_added, len(positive)),
        "transport_active": active,
        "transport_active_all_five_ports": all_five,
        "all_five_ports_share_of_transport_active": Ratio(all_five, active),
    }
