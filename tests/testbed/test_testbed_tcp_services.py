"""The testbed's real TCP services (issue 15): spec keys, nft chains and truth rows without root;
then the ``services`` spec up for real, every (address, port) of its truth checked from the VP
with ordinary sockets (HTTP, TLS, SSH, Telnet bytes; nothing from open-without-service ports,
tarpits and middleboxes) and the tarpit and middlebox checked with raw packets as a stateless
scanner sends them (no payload, no ACK of our payload, and SYN-ACKs that tell them apart)."""

from __future__ import annotations

import ipaddress
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from liveness.errors import InputError
from liveness.testbed import Testbed, load_spec
from liveness.testbed.behaviours import (
    APP_PROTOCOLS,
    BUILTIN_BEHAVIOURS,
    MIDDLEBOX_MSS,
    MIDDLEBOX_TTL,
    TCP_PORTS,
    answers,
    host_chain,
)
from liveness.testbed.plan import host6_text, make_plan
from liveness.testbed.rules import inet_ruleset
from liveness.testbed.state import existing_namespaces, process_alive, state_dir
from liveness.testbed.tcp_servers import internal_port, nginx_conf, sshd_conf
from liveness.testbed.truth_schema import TRUTH_SCHEMA, truth_text, upgrade_truth

CHECKER = Path(__file__).with_name("tcp_check.py")
BASE = 'name = "x"\npopulation = ["198.18.0.0/24"]\n[[vp]]\nname = "vp1"\n'


def _bad(tmp_path: Path, body: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(BASE + f"[behaviour.b]\n{body}\n")
    load_spec(path)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('tcp = { "80" = "open" }\ntcp_services = { "80" = "gopher" }', "is not one of http"),
        ('tcp = { "80" = "open" }\ntcp_services = { "22" = "ssh" }', "port 22 is not open"),
        ('tcp = { "80" = "closed" }\ntcp_services = { "80" = "http" }', "its tcp action is closed"),
        ('tcp = { "80" = "open" }\ntcp_services = { "8080" = "http" }', "ports are 22, 23"),
        ('tcp = { other = "open" }\ntcp_services = { "80" = "http" }', "a tarpit"),
        ('tcp = { "80" = "open" }\ntcp_services = ["http"]', "must be a table of port"),
        ('tcp = { other = "middlebox" }\ntcp_services = { "80" = "http" }', "not open"),
    ],
)
def test_bad_tcp_services_are_refused_in_one_line(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        _bad(tmp_path, body)
    assert "behaviour.b.tcp_services" in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "tcp",
    [
        '{ "80" = "middlebox" }',
        '{ other = "middlebox", "22" = "closed" }',
        '{ other = "open", "22" = "closed" }',
    ],
)
def test_middlebox_and_tarpit_are_whole_hosts(tmp_path: Path, tcp: str) -> None:
    with pytest.raises(InputError, match=r"behaviour\.b\.tcp: an? .* with every port"):
        _bad(tmp_path, f"tcp = {tcp}")


def test_services_on_unexpected_ports_and_the_truth(tmp_path: Path) -> None:
    text = BASE + (
        '[behaviour.b]\ntcp = { "22" = "open", "443" = "open", "7547" = "open" }\n'
        'tcp_services = { "22" = "http", "443" = "ssh", "7547" = "http" }\n'
        '[[assign]]\nbehaviour = "b"\nfraction = 0.5\n'
    )
    path = tmp_path / "odd.toml"
    path.write_text(text)
    behaviour = load_spec(path).behaviours["b"]
    assert behaviour.tcp_services == {22: "http", 443: "ssh", 7547: "http"}
    table = answers(behaviour)
    assert {p: a.app_proto for p, a in table.items() if a is not None} == {
        "tcp_syn:22": "http",
        "tcp_syn:443": "ssh",
        "tcp_syn:7547": "http",
    }
    plan = make_plan(load_spec(path))
    assert plan.tcp_services == {"http": [22, 7547], "ssh": [443]}


def test_services_truth_rows() -> None:
    plan = make_plan(load_spec("services"))
    truth = plan.truth()
    assert truth.schema.equals(TRUTH_SCHEMA)
    rows = truth.to_pylist()
    served = {(r["probe"], r["app_proto"]) for r in rows if r["app_proto"]}
    assert {proto for _, proto in served} == set(APP_PROTOCOLS)
    assert {("tcp_syn:7547", "http"), ("tcp_syn:22", "http"), ("tcp_syn:443", "ssh")} <= served
    for row in rows:  # a protocol only on a SYN-ACK of a probed port
        if row["app_proto"]:
            assert row["reply"] == "synack" and row["probe"][8:].isdigit()
    special = {name: set(plan.assigned[name].tolist()) for name in ("tarpit", "middlebox", "cpe")}
    for name, addrs in special.items():  # synack everywhere / open without service: no proto
        mine = [r for r in rows if r["af"] == 4 and r["target"] in addrs]
        assert {r["app_proto"] for r in mine} == {""}
        synacks = {r["probe"] for r in mine if r["reply"] == "synack"}
        if name != "cpe":
            assert synacks == {f"tcp_syn:{p}" for p in TCP_PORTS} | {"tcp_syn:random"}
    assert {r["af"] for r in rows if r["app_proto"]} == {4, 6}
    text = truth_text(truth)
    assert "app_proto" in text.column_names
    assert set(text["app_proto"].to_pylist()) == {"", *APP_PROTOCOLS}


def test_old_truth_reads_with_empty_app_proto() -> None:
    old = make_plan(load_spec("small")).truth().drop_columns(["app_proto"])
    new = upgrade_truth(old)
    assert new.schema.equals(TRUTH_SCHEMA)
    assert set(new["app_proto"].to_pylist()) == {""}


def test_service_and_middlebox_chains() -> None:
    ruleset = inet_ruleset(make_plan(load_spec("services")))
    assert "tcp dport set tcp dport map { 22 : 10022, 443 : 30443 }" in ruleset  # odd_ports
    assert "tcp sport set tcp sport map { 10022 : 22, 10080 : 80, 17547 : 7547," in ruleset
    assert ruleset.count("type filter hook input priority 10;") == 2  # one per family
    assert "ip6 daddr @middlebox meta l4proto tcp tproxy to :5" in ruleset
    for name in ("tarpit", "middlebox"):
        chain = host_chain(BUILTIN_BEHAVIOURS[name], f"b_{name}")
        assert chain.index("tcp flags & (syn | rst) == 0 drop") < chain.index("tcp dport")
    assert "tcp flags" not in host_chain(BUILTIN_BEHAVIOURS["web_server"], "b")
    small = inet_ruleset(make_plan(load_spec("small")))  # no services: nothing new
    for absent in ("@service", "sport set", "notrack", "ct state"):
        assert absent not in small
    assert internal_port("ssh", 443) == 30443 and internal_port("telnet", 7547) < 65536


def test_server_configurations(tmp_path: Path) -> None:
    nginx = nginx_conf(tmp_path, [80, 7547], [443], ipv6=True)
    assert "listen 10080 backlog=65535;" in nginx and "listen [::]:20443 ssl ipv6only=on" in nginx
    assert f"pid {tmp_path / 'nginx.pid'};" in nginx and "access_log off;" in nginx
    sshd = sshd_conf(tmp_path, [22, 443], ipv6=False)
    assert "ListenAddress 0.0.0.0:30443\n" in sshd and "[::]" not in sshd
    assert "DenyUsers *\n" in sshd and "PasswordAuthentication no\n" in sshd


def test_paper_serves_some_ports_and_keeps_its_synacks() -> None:
    plan = make_plan(load_spec("paper"))
    truth = plan.truth()
    protos = set(truth["app_proto"].to_pylist())
    assert protos == {"", *APP_PROTOCOLS}
    assert "middlebox" not in plan.assigned  # the study's tarpit share is the tarpits'


# -- for real ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def services() -> Iterator[Testbed]:
    tb = Testbed(load_spec("services"), "svct" + format(np.random.randint(1 << 12), "03x"))
    try:
        tb.__enter__()
        yield tb
    finally:
        tb.down()


def _check(tb: Testbed, conns: list[list[Any]], raw: list[list[Any]]) -> dict[str, Any]:
    point = tb.vps["vp1"]
    request = {
        "iface": point.ifname,
        "src": point.src_ip,
        "src6": point.src_ip6,
        "gateway_mac": point.gateway_mac,
        "conns": conns,
        "raw": raw,
    }
    done = tb.run(
        "vp1",
        [sys.executable, str(CHECKER)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _text(row: dict[str, Any]) -> str:
    if row["af"] == 6:
        return str(ipaddress.IPv6Address(row["target6"]))
    return str(ipaddress.IPv4Address(row["target"]))


def _addresses(tb: Testbed, name: str) -> list[str]:
    v4 = [str(ipaddress.IPv4Address(int(a))) for a in tb.plan.assigned[name]]
    return v4 + host6_text(tb.plan.assigned6[name])


SEND = {"http": "http", "tls": "tls", "ssh": "none", "telnet": "none", "": "http"}


@pytest.mark.root
@pytest.mark.slow
def test_every_tcp_port_answers_data_as_the_truth_says(services: Testbed) -> None:
    truth, _ = services.truth()
    rows = [r for r in truth.to_pylist() if r["probe"][8:].isdigit() and r["probe"][:4] == "tcp_"]
    quiet = set(_addresses(services, "tarpit")) | set(_addresses(services, "middlebox"))
    conns = [[_text(r), int(r["probe"][8:]), SEND[r["app_proto"]]] for r in rows]
    expected = {(_text(r), int(r["probe"][8:])): r for r in rows}
    result = _check(services, conns, [])
    assert len(result["conns"]) == len(rows)
    seen_protos = set()
    for target, port, status, data_hex, acked in result["conns"]:
        row = expected[(target, port)]
        data = bytes.fromhex(data_hex)
        where = f"{target}:{port} ({row['reply']}, {row['app_proto']!r}): {status} {data[:40]!r}"
        if row["reply"] == "rst":
            assert status == "refused", where
            continue
        assert row["reply"] == "synack", where
        proto = row["app_proto"]
        if proto == "http":
            assert data.startswith(b"HTTP/1.1 200 "), where
        elif proto == "tls":
            assert len(data) > 5 and data[0] == 0x16 and data[5] == 0x02, where  # ServerHello
        elif proto == "ssh":
            assert data.startswith(b"SSH-2.0-"), where
        elif proto == "telnet":
            assert data[0] == 0xFF and data[1] in (0xFB, 0xFD) and b"login: " in data, where
        elif target in quiet:  # handshake seen by the client, then nothing, not even an ACK
            assert (status, data, acked) == ("silent", b"", 1), where
        else:  # open without a service: closed at once, no payload
            assert status in ("eof", "reset") and data == b"", where
        if proto:
            assert acked > 1 if proto in ("http", "tls") else acked >= 1, where
            seen_protos.add((proto, ":" in target))
    assert seen_protos == {(p, six) for p in APP_PROTOCOLS for six in (False, True)}


@pytest.mark.root
@pytest.mark.slow
def test_tarpit_and_middlebox_never_ack_data_and_differ_in_their_synack(
    services: Testbed,
) -> None:
    tarpits = _addresses(services, "tarpit")
    middleboxes = _addresses(services, "middlebox")
    web = _addresses(services, "web_host")
    picks = [tarpits[0], tarpits[-1], middleboxes[0], middleboxes[-1]]
    raw = [[t, port, "http"] for t in picks for port in (80, 45678)]
    raw += [[t, 443, "tls"] for t in (tarpits[0], middleboxes[-1])]
    raw += [[web[0], 80, "http"], [web[-1], 80, "http"]]  # the control: a real server
    result = _check(services, [], raw)
    assert len(result["raw"]) == len(raw)
    for target, port, synack, later in result["raw"]:
        where = f"{target}:{port}: {synack} then {later}"
        assert synack is not None, where
        window, options, ttl = synack
        names = [name for name, _ in options]
        if target in web:
            answer = [p for p in later if p[2] > 0]
            assert answer and bytes.fromhex(answer[0][3]).startswith(b"HTTP/1."), where
            assert all(p[1] > 1 for p in answer), where  # it ACKed our GET
            continue
        assert all(p[2] == 0 for p in later), where  # no payload, ever
        assert all(p[1] <= 1 for p in later), where  # nothing ACKs our payload
        assert later == [], where  # not even a SYN-ACK retransmission (tcp_synack_retries)
        mss = dict(options)["MSS"]
        if target in tarpits:  # the kernel's SYN-ACK: TTL 64 (63 past the router), MSS 1460
            assert (ttl, mss) == (63, "1440" if ":" in target else "1460"), where
            assert window > 60000 and "Timestamp" in names and "WScale" in names, where
        else:  # the middlebox's: its TTL, its MSS, a small window
            assert (ttl, mss) == (MIDDLEBOX_TTL - 1, str(MIDDLEBOX_MSS)), where
            assert 0 < window < 8192, where


@pytest.mark.root
def test_services_up_and_down_leave_nothing(tmp_path: Path) -> None:
    tb = Testbed.up(load_spec("services"), "svcd" + format(np.random.randint(1 << 12), "03x"))
    work = state_dir() / tb.id
    try:
        names = {p["name"] for p in tb._record["processes"]}
        assert {"nginx", "sshd", "socat-telnet-23", "socat-telnet-23-6"} <= names
        assert (work / "tls.crt").exists() and (work / "ssh_host_ed25519_key").exists()
        procs = list(tb._record["processes"])
        namespaces = list(tb.layout.namespaces)
    finally:
        tb.down()
    assert not work.exists()
    assert not any(process_alive(p) for p in procs)
    assert not set(namespaces) & existing_namespaces()
