"""The probe list parser and registry: names, stable ids, -p, errors."""

from __future__ import annotations

import pytest

from liveness.errors import InputError
from liveness.probes import DEFAULT_PROBES, parse_ports, parse_probes
from liveness.probes.udp_dns import UdpDns


def names(spec: str, ports: str | None = None) -> list[str]:
    return [p.name for p in parse_probes(spec, ports)]


def test_default_set_is_the_study_plus_the_random_port() -> None:
    probes = parse_probes(DEFAULT_PROBES)
    assert [p.name for p in probes] == DEFAULT_PROBES.split(",")
    ids = [p.probe_id for p in probes]
    assert len(set(ids)) == len(ids)
    assert ids == [p.probe_id for p in parse_probes(DEFAULT_PROBES)]  # stable


def test_ports_replace_the_fixed_tcp_ports() -> None:
    assert names(DEFAULT_PROBES, "80,8080-8081") == [
        "icmp_echo",
        "tcp_syn:80",
        "tcp_syn:8080",
        "tcp_syn:8081",
        "tcp_syn:random",
        "udp_dns",
        "udp_ntp",
    ]
    assert names("icmp_echo,tcp_syn", "443") == ["icmp_echo", "tcp_syn:443"]
    assert names("icmp_echo", "22") == ["icmp_echo", "tcp_syn:22"]
    assert names("tcp_syn:20-22,tcp_syn:21") == ["tcp_syn:20", "tcp_syn:21", "tcp_syn:22"]


def test_dns_arguments() -> None:
    (probe,) = parse_probes("udp_dns:MX:example.net")
    assert isinstance(probe, UdpDns)
    assert (probe.qtype, probe.qname, probe.name) == ("MX", "example.net", "udp_dns")
    (default,) = parse_probes("udp_dns")
    assert isinstance(default, UdpDns)
    assert (default.qtype, default.qname) == ("A", "liveness.test")


@pytest.mark.parametrize(
    ("spec", "ports", "message"),
    [
        ("icmp_echo,bogus", None, "unknown probe 'bogus'"),
        ("", None, "empty"),
        ("icmp_echo,,udp_ntp", None, "empty"),
        ("tcp_syn", None, "needs ports"),
        ("tcp_syn:0", None, "1..65535"),
        ("tcp_syn:http", None, "not a port"),
        ("tcp_syn:90-80", None, "LO <= HI"),
        ("icmp_echo,icmp_echo", None, "twice"),
        ("udp_ntp:fast", None, "takes no arguments"),
        ("udp_dns:BOGUS", None, "query type"),
        ("udp_dns:A:" + "x" * 64 + ".com", None, "1 to 63"),
        ("icmp_echo", "70000", "-p/--target-ports"),
    ],
)
def test_bad_probe_lists(spec: str, ports: str | None, message: str) -> None:
    with pytest.raises(InputError, match=message.replace(".", r"\.").replace("(", r"\(")):
        parse_probes(spec, ports)


def test_parse_ports() -> None:
    assert parse_ports("22, 80-82,22") == [22, 80, 81, 82]
    with pytest.raises(InputError, match="-p/--target-ports"):
        parse_ports("1-2-3")
