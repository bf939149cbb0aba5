"""Analysis 10: the TCP application layer (``--app-layer``): which SYN-ACKs are services.

A SYN-ACK says a port accepts connections, not that a service answers there: tarpits and
middleboxes SYN-ACK on every port. The scan's stateless follow-up (an HTTP GET, a TLS
ClientHello, or a wait for a banner) tells them apart. Per TCP probe (``ports``, keyed as the
transport analysis keys them, plus ``random`` and, when the scan had them, ``other`` for
ports outside the default set), of the addresses that SYN-ACKed on it:

- ``transport_alive``: all of them; ``app_active``: those that answered the follow-up with
  data or an ACK of our payload (an ``app_active`` row); ``app_alive``: those whose data is
  in the port profile's protocol (``app_valid`` on an ``app_data`` row);
- ``shrink_active`` / ``shrink_alive``: how much the port's service population shrinks once a
  SYN-ACK is no longer taken as a service (``1 - app_active / transport_alive``, likewise);
- ``protocols``: addresses by the protocol of their data; ``unexpected``: of the protocols
  known by name (HTTP, TLS, SSH, Telnet), those the port is not expected to speak (22 SSH,
  23 Telnet, 80 and 7547 HTTP, 443 TLS; the random and other ports expect none);
- ``without_no_service_tarpits``: the same figures with the *no-service tarpits* removed.

``tarpits`` splits the tarpits of analysis 5 (SYN-ACK on every probed port and the random
port) into ``no_service`` (app-active on no port: a tarpit or an ACKing middlebox),
``ack_only`` (acknowledged our payload somewhere, sent data nowhere) and ``serves_data`` (sent
data on some port: not a tarpit). ``headline`` counts the addresses that SYN-ACKed on some TCP
port but were app-active on none ("SYN-ACK without a service").

Counts are sums over addresses, so the result of disjoint address slices adds up
(:func:`~.analyses.combine`); it is :class:`~.analyses.Measured` by the addresses that
answered a follow-up at all, so a scan without ``--app-layer`` reads ``{"scanned": false}``.
"""

from __future__ import annotations

from typing import Any

from pyroaring import BitMap

from liveness.analysis.analyses import Measured, Ratio, tarpit_set
from liveness.analysis.sets import ReplySets
from liveness.analysis.taxonomy import (
    ALL_TCP_PROBES,
    APP_ACK,
    APP_ACTIVE,
    APP_DATA_OTHER,
    APP_DATA_VALID,
    APP_PROTO_BASE,
    APP_PROTOS,
    APP_RST,
    EXPECTED_APP_PROTO,
    KIND_SYNACK,
    KNOWN_APP_PROTOS,
    OTHER_PROBES,
    RANDOM_PORT_PROBE,
    TCP_PORT_PROBES,
)

__all__ = ["APP_PORT_PROBES", "app_layer", "other_tcp_probes", "port_key"]

#: The TCP probes with a row of their own, in table order (``other`` follows when present).
APP_PORT_PROBES: tuple[str, ...] = (*TCP_PORT_PROBES, RANDOM_PORT_PROBE)
_DATA = (APP_DATA_VALID, APP_DATA_OTHER)
_KINDS = (*_DATA, APP_ACK, APP_RST)  # every application row is of one of these
_NOTE = (
    "ports[P] counts addresses that SYN-ACKed on P. app_active: answered the follow-up with "
    "data or an ACK of our payload; app_alive: data in the protocol of P's profile; "
    "shrink_*: 1 - app_*/transport_alive. without_no_service_tarpits: the same with the "
    "tarpits that were app-active on no port (tarpits.no_service) removed."
)


def port_key(probe: str) -> str:
    """The key of ``probe``'s row: its port (``22``, ``random``), ``other`` for the rest."""
    return "other" if probe == OTHER_PROBES else probe.split(":", 1)[1]


def other_tcp_probes(sets: ReplySets) -> list[str]:
    """The TCP probes of the input outside the default set (``tcp_syn:8080``, ...)."""
    return sorted(p for p in sets.partial.unknown_probes if p.startswith("tcp_syn:"))


def _proto_group(proto: str) -> int:
    return APP_PROTO_BASE + APP_PROTOS.index(proto)


def _port(sets: ReplySets, probe: str, no_service: BitMap) -> dict[str, Any]:
    """One probe's figures, over the addresses that SYN-ACKed on it."""
    synack = sets.responders([probe], [KIND_SYNACK])
    active = sets.app_responders([probe], [APP_ACTIVE])
    data = sets.app_responders([probe], _DATA)
    n = len(synack)
    n_active = active.intersection_cardinality(synack)
    n_alive = sets.app_responders([probe], [APP_DATA_VALID]).intersection_cardinality(synack)
    n_data = data.intersection_cardinality(synack)
    protocols = {
        p: sets.app_responders([probe], [_proto_group(p)]).intersection_cardinality(synack)
        for p in APP_PROTOS
    }
    expected = EXPECTED_APP_PROTO.get(probe)
    unexpected = [p for p in KNOWN_APP_PROTOS if p != expected]
    elsewhere = sets.app_responders([probe], [_proto_group(p) for p in unexpected])
    rst = sets.app_responders([probe], [APP_RST])
    # no-service tarpits are app-active nowhere: removing them leaves app_active and app_alive
    kept = n - synack.intersection_cardinality(no_service)
    return {
        "expected_protocol": expected,
        "transport_alive": n,
        "app_active": n_active,
        "app_alive": n_alive,
        "sent_data": n_data,
        "data_not_valid": n_data - n_alive,
        "ack_only": n_active - n_data,  # data rows are app-active rows
        "reset_only": (rst & synack).difference_cardinality(active),
        "no_answer": synack.difference_cardinality(sets.app_responders([probe], _KINDS)),
        "app_active_share": Ratio(n_active, n),
        "app_alive_share": Ratio(n_alive, n),
        "shrink_active": Ratio(n - n_active, n),
        "shrink_alive": Ratio(n - n_alive, n),
        "protocols": protocols,
        "unexpected": {p: protocols[p] for p in unexpected},
        "unexpected_addresses": elsewhere.intersection_cardinality(synack),
        "without_no_service_tarpits": {
            "transport_alive": kept,
            "app_active": n_active,
            "app_alive": n_alive,
            "shrink_active": Ratio(kept - n_active, kept),
            "shrink_alive": Ratio(kept - n_alive, kept),
        },
    }


def app_layer(sets: ReplySets) -> Measured:
    """Analysis 10 (see the module's docstring): per TCP probe, tarpits, the headline."""
    active_any = sets.app_responders(ALL_TCP_PROBES, [APP_ACTIVE])
    data_any = sets.app_responders(ALL_TCP_PROBES, _DATA)
    pits = tarpit_set(sets)
    no_service = pits - active_any
    others = other_tcp_probes(sets)
    probes = [*APP_PORT_PROBES, *([OTHER_PROBES] if others else [])]
    synack_any = sets.responders(ALL_TCP_PROBES, [KIND_SYNACK])
    without_service = synack_any - active_any
    n = len(synack_any)
    return Measured(
        scanned=len(sets.app_responders(None, _KINDS)),
        replies={
            "app_data": sets.app_rows(None, _DATA),
            "app_ack": sets.app_rows(None, [APP_ACK]),
            "app_rst": sets.app_rows(None, [APP_RST]),
        },
        ports={port_key(p): _port(sets, p, no_service) for p in probes},
        other_ports=others,
        tarpits={
            "tarpits": len(pits),
            "no_service": len(no_service),
            "ack_only": (pits & active_any).difference_cardinality(data_any),
            "serves_data": pits.intersection_cardinality(data_any),
            "no_service_blocks": len(sets.blocks(no_service)),
        },
        headline={
            "synack_any_port": n,
            "app_active_any_port": active_any.intersection_cardinality(synack_any),
            "app_alive_any_port": sets.app_responders(
                ALL_TCP_PROBES, [APP_DATA_VALID]
            ).intersection_cardinality(synack_any),
            "synack_without_service": len(without_service),
            "synack_without_service_share": Ratio(len(without_service), n),
            "synack_without_service_not_tarpits": without_service.difference_cardinality(pits),
            "no_service_tarpits": len(no_service),
        },
        note=_NOTE,
    )
