"""The generic ``udp:PORT:NAME`` probes against real UDP servers on the ``udp_services`` testbed.

snmpd answers SNMP; the testbed's UDP responder answers SSDP, memcached, portmapper, NetBIOS
and CoAP; dnsmasq and chronyd DNS and NTP. One scan over both families must find exactly the
ground truth: ``app_valid`` replies from the service hosts, the right ICMP errors from the
others, nothing else. A capture at the router shows that the VP sent its probes to the
population and nowhere else.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from reply_rows import row_tuples
from router_capture import capture_at_router, stop

from liveness.output import read_replies
from liveness.testbed import Testbed, load_spec

pytestmark = [pytest.mark.root, pytest.mark.slow]

ALLOW = "198.18.0.0/15\n2001:2::/48\n"
PORTS = (161, 1900, 11211, 111, 137, 5683, 53, 123)
PROBES = ",".join(f"udp:{port}" for port in PORTS)
Row = tuple[int, str, str, str, str, int, bool]


@pytest.fixture(scope="module")
def testbed() -> Iterator[Testbed]:
    with Testbed(load_spec("udp_services")) as tb:
        yield tb


def _rows(table: pa.Table) -> set[Row]:
    """(af, target, probe, reply, responder, ICMP code of errors, app_valid) of every row."""
    return row_tuples(table, app_valid=True)


def test_udp_payload_probes_find_exactly_the_truth(testbed: Testbed, tmp_path: Path) -> None:
    tb = testbed
    out = tmp_path / "replies.parquet"
    allow = tmp_path / "allow.txt"
    allow.write_text(ALLOW)
    vp = tb.vps["vp1"]
    targets = [*tb.targets, *(f"{net}-64" for net in tb.targets6)]
    options = ("--probes", PROBES, "-r", "5000", "--retransmit-delay", "1", "-c", "2", "-q")
    argv = [*vp.scan_argv(targets, allow, "-o", str(out), *options), *vp.sender_options6()]
    pcap = tmp_path / "wire.pcap"
    capture = capture_at_router(tb, "vp1", pcap)
    try:
        done = tb.run("vp1", argv, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        time.sleep(0.3)
    finally:
        stop(capture)
    table = pa.Table.from_batches(list(read_replies(str(out))))
    found = _rows(table.filter(pc.invert(table["repeat"])))
    truth, _ = tb.truth()
    names = {f"udp:{port}:{name}" for port, name in _names()}
    truth = truth.filter(pc.is_in(truth["probe"], pa.array(sorted(names))))
    want = _rows(truth.filter(pc.equal(truth["vp"], "vp1")))
    for af in (4, 6):
        mine = {r for r in found if r[0] == af}
        expected = {r for r in want if r[0] == af}
        assert mine - expected == set(), (af, sorted(mine - expected)[:10])
        assert expected - mine == set(), (af, sorted(expected - mine)[:10])
        # every service answers validly in this family
        served = {r[2] for r in expected if r[3] == "udp" and r[6]}
        assert served == names, (af, names - served)
    # What left the VP: the UDP probes, and its kernel's port unreachables for the replies
    # (no socket listens on the scan's source ports), to the population and nowhere else.
    from scapy.layers.inet import ICMP, IP, UDP, UDPerror
    from scapy.layers.inet6 import ICMPv6DestUnreach, IPv6
    from scapy.utils import PcapReader

    population = {str(a) for net in tb.targets for a in ipaddress.ip_network(net)}
    population |= {
        str(n.network_address + 1)
        for net in tb.targets6
        for n in ipaddress.IPv6Network(net).subnets(new_prefix=64)
    }
    sources, destinations, ports = set(), set(), set()
    with PcapReader(str(pcap)) as packets:
        for packet in packets:
            net = packet[IP] if IP in packet else packet[IPv6]
            sources.add(net.src)
            destinations.add(net.dst)
            if ICMP in packet or ICMPv6DestUnreach in packet:
                assert UDPerror in packet or UDP in packet, packet.summary()
            else:
                assert UDP in packet, packet.summary()
                ports.add(packet[UDP].dport)
    assert sources == {vp.src_ip, vp.src_ip6}
    assert destinations == population
    assert ports == set(PORTS)


def _names() -> list[tuple[int, str]]:
    from liveness.packet.udp_payloads import default_payload

    out = []
    for port in PORTS:
        payload = default_payload(port)
        assert payload is not None
        out.append((port, payload.name))
    return out
