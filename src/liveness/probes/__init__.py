"""Probe types behind one interface, found by name (see ``registry``), and reply classification.

``parse_probes(DEFAULT_PROBES)`` gives the study's 8 probes plus the random port;
``probe.build(ctx, targets, attempt)`` makes a batch of frames; ``ReplyClassifier`` turns
captured frames back into validated reply records.
"""

from liveness.probes.base import Probe, UdpProbe
from liveness.probes.classify import ReplyClassifier
from liveness.probes.icmp_echo import IcmpEcho
from liveness.probes.registry import (
    DEFAULT_PROBES,
    PROBE_TYPES,
    parse_ports,
    parse_probes,
    probe_classes,
)
from liveness.probes.tcp_syn import TcpSyn, TcpSynRandom
from liveness.probes.udp import UdpGeneric
from liveness.probes.udp_dns import UdpDns
from liveness.probes.udp_ntp import UdpNtp

__all__ = [
    "DEFAULT_PROBES",
    "PROBE_TYPES",
    "IcmpEcho",
    "Probe",
    "ReplyClassifier",
    "TcpSyn",
    "TcpSynRandom",
    "UdpDns",
    "UdpGeneric",
    "UdpNtp",
    "UdpProbe",
    "parse_ports",
    "parse_probes",
    "probe_classes",
]
