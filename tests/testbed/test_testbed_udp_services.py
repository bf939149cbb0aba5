"""The testbed's UDP services without namespaces: the responder's answers (checked by tshark and
by the probes' own parsers), the spec keys, the nft chains and the truth rows they give."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

from liveness.errors import InputError
from liveness.packet.udp_payloads import UdpPayload, payloads
from liveness.testbed import load_spec
from liveness.testbed.behaviours import (
    BUILTIN_BEHAVIOURS,
    PROBES,
    UDP_SERVICES,
    answers,
    host_chain,
    service_probes,
)
from liveness.testbed.plan import make_plan
from liveness.testbed.udp_responder import PORTS, RESPONDERS

needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark missing")
TOKEN = np.array([[0x12345678, 0x9ABC, 0xDEADBEEF, 7]], dtype=np.uint32)
# service -> (tshark field, expected value) for each field that must hold in the reply
TSHARK = {
    "ssdp": {"http.response.code": "200"},
    "portmapper": {
        "rpc.xid": "0x12345678",
        "rpc.msgtyp": "1",
        "rpc.state_accept": "0",
        "portmap.port": "111,111",
    },
    "netbios": {"nbns.id": "0x5678", "nbns.flags.response": "1", "nbns.count.answers": "1"},
    "coap": {"coap.type": "2", "coap.code": "69", "coap.mid": "22136", "coap.token": "deadbeef"},
}


def _request(payload: UdpPayload) -> bytes:
    """The probe's payload with its per-target fields filled from ``TOKEN``."""
    data = bytearray(payload.data)
    for patch in payload.patches:
        value = int(patch.values(TOKEN)[0])
        data[patch.offset : patch.offset + patch.width] = value.to_bytes(patch.width, "big")
    return bytes(data)


def _valid(payload: UdpPayload, reply: bytes) -> bool:
    row = np.zeros((1, 512), dtype=np.uint8)
    row[0, : len(reply)] = np.frombuffer(reply[:512], dtype=np.uint8)
    return bool(payload.valid(row, np.array([len(reply)]), TOKEN)[0])


def test_services_are_the_named_payloads_on_their_ports() -> None:
    named = payloads()
    for name, port in UDP_SERVICES.items():
        assert named[name].port == port
    assert set(PORTS) == set(UDP_SERVICES) - {"snmp"} == set(RESPONDERS)
    assert {f"udp:{p.port}:{n}" for n, p in named.items()} == set(service_probes())


@pytest.mark.parametrize("name", sorted(RESPONDERS))
def test_the_probe_accepts_the_responders_answer(name: str) -> None:
    payload = payloads()[name]
    reply = RESPONDERS[name](_request(payload), "198.18.0.5")
    assert reply is not None
    assert _valid(payload, reply)
    assert RESPONDERS[name](b"\x00" * 3, "198.18.0.5") is None  # garbage: no answer


def test_memcached_answer_is_a_single_datagram_of_stat_lines() -> None:
    reply = RESPONDERS["memcached"](_request(payloads()["memcached"]), "198.18.0.5")
    assert reply is not None
    request_id, sequence, total, reserved = struct.unpack_from("!HHHH", reply)
    assert (request_id, sequence, total, reserved) == (0x5678, 0, 1, 0)
    lines = reply[8:].split(b"\r\n")
    assert lines[-2:] == [b"END", b""]
    assert lines[0].startswith(b"STAT pid ")
    assert all(line.startswith(b"STAT ") and len(line.split()) == 3 for line in lines[:-2])


@needs_tshark
@pytest.mark.parametrize("name", sorted(TSHARK))
def test_tshark_reads_the_responders_answer(tmp_path: Path, name: str) -> None:
    payload = payloads()[name]
    assert payload.port is not None
    request = _request(payload)
    reply = RESPONDERS[name](request, "198.18.0.5")
    assert reply is not None
    there = IP(src="198.19.255.1", dst="198.18.0.5") / UDP(sport=40000, dport=payload.port)
    back = IP(src="198.18.0.5", dst="198.19.255.1") / UDP(sport=payload.port, dport=40000)
    pcap = tmp_path / f"{name}.pcap"
    wrpcap(str(pcap), [Ether() / there / request, Ether() / back / reply])
    fields = ["_ws.malformed", *TSHARK[name]]
    argv = ["tshark", "-n", "-r", str(pcap), "-Y", "frame.number == 2", "-T", "fields"]
    argv += [arg for field in fields for arg in ("-e", field)]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    (row,) = [line.split("\t") for line in out.splitlines() if line]
    assert dict(zip(fields, row, strict=True)) == {"_ws.malformed": "", **TSHARK[name]}


def test_the_responder_answers_only_its_requests() -> None:
    assert RESPONDERS["ssdp"](b"NOTIFY * HTTP/1.1\r\n\r\n", "198.18.0.5") is None
    ssdp = RESPONDERS["ssdp"](_request(payloads()["ssdp"]), "2001:2::1")
    assert ssdp is not None and b"LOCATION: http://[2001:2::1]:80/" in ssdp
    call = bytearray(_request(payloads()["portmapper"]))
    call[20:24] = struct.pack("!I", 3)  # GETPORT: not served
    reply = RESPONDERS["portmapper"](bytes(call), "198.18.0.5")
    assert reply is not None and struct.unpack_from("!I", reply, 20) == (3,)  # PROC_UNAVAIL
    coap = bytearray(_request(payloads()["coap"]))
    coap[-4:] = b"nope"
    reply = RESPONDERS["coap"](bytes(coap), "198.18.0.5")
    assert reply is not None and reply[1] == 0x84  # 4.04 Not Found, still our ACK
    assert _valid(payloads()["coap"], reply)


def test_udp_services_spec_key_and_chain(tmp_path: Path) -> None:
    spec = load_spec("udp_services")
    nas = spec.behaviours["nas"]
    assert nas.udp_services == ("portmapper", "netbios", "memcached")
    chain = host_chain(nas, "b_nas")
    assert "udp dport { 111, 137, 11211 } accept" in chain
    assert chain.index("udp dport { 111") < chain.index("meta l4proto udp")
    assert "udp dport {" not in host_chain(BUILTIN_BEHAVIOURS["linux_host"], "b")
    table = answers(nas, 6, services=True)
    assert table["udp:137:netbios"] is not None and table["udp:137:netbios"].app_valid
    assert table["udp:161:snmp"] is not None and table["udp:161:snmp"].icmp_code == 1
    base = 'name = "x"\npopulation = ["198.18.0.0/24"]\n[[vp]]\nname = "vp1"\n'
    for body, message in (
        ('udp_services = ["telnet"]', "is not one of snmp"),
        ('udp_services = "snmp"', "must be a list"),
        ('udp_services = ["snmp", "snmp"]', "listed twice"),
    ):
        path = tmp_path / "bad.toml"
        path.write_text(base + f"[behaviour.b]\n{body}\n")
        with pytest.raises(InputError, match=message):
            load_spec(path)


def test_truth_has_service_rows_only_where_services_are_served() -> None:
    plan = make_plan(load_spec("udp_services"))
    truth = plan.truth()
    probes = set(truth["probe"].to_pylist())
    assert set(service_probes()) <= probes
    valid = {
        (r["af"], r["probe"])
        for r in truth.to_pylist()
        if r["probe"].startswith("udp:") and r["app_valid"]
    }
    assert valid == {(af, p) for af in (4, 6) for p in service_probes()}
    small = make_plan(load_spec("small"))
    assert small.udp_services == [] and small.probes == PROBES
    assert set(small.truth()["probe"].to_pylist()) <= set(PROBES)
