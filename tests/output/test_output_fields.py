"""Derived fields (reply and ZMap names) against values computed independently per row."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import struct

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st
from output_fixtures import address_text, random_ipv6, random_replies, row_address

from liveness.errors import InputError
from liveness.output import ALL_FIELDS, FIELD_KINDS, ZMAP_FIELDS, format_dotted, parse_dotted
from liveness.output.addresses import format_ipv6, parse_ipv6
from liveness.output.fields import FieldContext, derive, resolve_fields, source_columns
from liveness.output.schema import ADDR6, BASE_COLUMNS, REPLY_COLUMNS

SCANNER = int(ipaddress.IPv4Address("198.18.0.1"))
SCANNER6 = ipaddress.IPv6Address("2001:2::1").packed

ZMAP_NAMES = {
    "echo_reply": "echoreply",
    "synack": "synack",
    "rst": "rst",
    "udp": "udp",
    "icmp_unreach": "unreach",
    "icmp_time_exceeded": "timxceed",
    "icmp_redirect": "redirect",
    "icmp_source_quench": "sourcequench",
    "icmp_param_problem": "paramprob",
    "icmp_other": "other",
    "timestamp_reply": "timestampreply",
    "app_data": "data",  # ZMap has no application-layer follow-up: named here
    "app_ack": "ack",
    "app_rst": "rst",
}
ADDRESS_FIELDS = [name for name, kind in FIELD_KINDS.items() if kind in ("addr", "addr6")]


def test_zmap_fields_match_a_row_by_row_computation() -> None:
    batch = random_replies(2000, seed=3)
    cooldown = batch.column("ts")[1500].as_py()
    derived = derive(batch, ALL_FIELDS, FieldContext(SCANNER, cooldown, SCANNER6)).to_pylist()
    families = {4: 0, 6: 0}
    for reply, row in zip(batch.to_pylist(), derived, strict=True):
        ipv6 = reply["af"] == 6
        families[reply["af"]] += 1
        # Parquet form: IPv4 addresses as uint32, null (never 0) on IPv6 rows.
        assert row["saddr"] == row["target"] == (None if ipv6 else reply["target"])
        assert row["responder"] == (None if ipv6 else reply["responder"])
        assert row["daddr"] == (None if ipv6 else SCANNER)
        assert row["target6"] == reply["target6"] and row["responder6"] == reply["responder6"]
        if ipv6:
            assert row["saddr_raw"] is None and row["daddr_raw"] is None
        else:
            packed = socket.inet_aton(str(ipaddress.IPv4Address(reply["target"])))
            assert row["saddr_raw"] == struct.unpack("<I", packed)[0]
            assert row["daddr_raw"] == struct.unpack("<I", socket.inet_aton("198.18.0.1"))[0]
        assert row["classification"] == ZMAP_NAMES[reply["reply"]]
        positive = ("synack", "echo_reply", "udp", "timestamp_reply", "app_data", "app_ack")
        assert row["success"] == (reply["reply"] in positive)
        assert row["cooldown"] == (reply["ts"] >= cooldown)
        when = dt.datetime.fromtimestamp(reply["ts"] // 10**9, dt.UTC)
        millis = reply["ts"] % 10**9 // 10**6
        assert row["timestamp_str"] == when.strftime("%Y-%m-%dT%H:%M:%S") + f".{millis:03d}+0000"
        assert row["timestamp_ts"] * 10**6 + row["timestamp_us"] == reply["ts"] // 1000
        is_icmp = reply["icmp_type"] >= 0
        assert row["icmp_responder"] == (reply["responder"] if is_icmp and not ipv6 else None)
        unreach = 1 if ipv6 else 3
        if reply["icmp_type"] == unreach:
            assert row["icmp_unreach_str"]
            if reply["icmp_code"] == (4 if ipv6 else 3):
                assert row["icmp_unreach_str"] == "port unreachable"
            if ipv6 and reply["icmp_code"] == 0:
                assert row["icmp_unreach_str"] == "no route to destination"
        else:
            assert row["icmp_unreach_str"] is None
        for name in REPLY_COLUMNS:
            if name not in ("target", "responder"):
                assert row[name] == reply[name]
    assert min(families.values()) > 500


def test_text_addresses_match_ipaddress_for_both_families() -> None:
    batch = random_replies(3000, seed=4)
    ctx = FieldContext(SCANNER, None, SCANNER6)
    derived = derive(batch, ADDRESS_FIELDS, ctx, text=True)
    assert all(pa.types.is_string(t) for t in derived.schema.types)
    for reply, row in zip(batch.to_pylist(), derived.to_pylist(), strict=True):
        ipv6 = reply["af"] == 6
        target = row_address(reply, "target")
        responder = row_address(reply, "responder")
        assert row["saddr"] == row["target"] == target
        assert row["responder"] == responder
        assert row["daddr"] == ("2001:2::1" if ipv6 else "198.18.0.1")
        assert row["icmp_responder"] == (responder if reply["icmp_type"] >= 0 else None)
        assert row["target6"] == (target if ipv6 else None)
        assert row["responder6"] == (responder if ipv6 else None)
        if ipv6:
            assert ":" in target and ipaddress.IPv6Address(target).packed == reply["target6"]


def test_daddr_of_ipv6_rows_is_null_without_the_scanner_ipv6_address() -> None:
    batch = random_replies(200, seed=5)
    derived = derive(batch, ["daddr", "af"], FieldContext(SCANNER), text=True).to_pylist()
    assert {row["daddr"] for row in derived if row["af"] == 6} == {None}
    assert {row["daddr"] for row in derived if row["af"] == 4} == {"198.18.0.1"}
    with pytest.raises(ValueError, match="16 bytes"):
        FieldContext(scanner_addr6=b"\x01" * 4)


def test_a_batch_without_the_ipv6_columns_is_ipv4() -> None:
    batch = random_replies(300, seed=6, ipv6_share=0.0)
    old = batch.drop_columns(["af", "target6", "responder6"])
    names = ["saddr", "target", "target6", "icmp_responder", "daddr", "icmp_unreach_str", "af"]
    ctx = FieldContext(SCANNER, None, SCANNER6)
    for text in (False, True):
        assert derive(old, names, ctx, text=text).equals(derive(batch, names, ctx, text=text))


def test_no_cooldown_start_means_no_cooldown_rows() -> None:
    derived = derive(random_replies(100), ["cooldown"], FieldContext())
    assert not any(derived.column(0).to_pylist())


def test_resolve_fields_accepts_commas_star_and_rejects_unknown() -> None:
    assert resolve_fields(None) == BASE_COLUMNS
    assert resolve_fields(["saddr, daddr", "success"]) == ("saddr", "daddr", "success")
    assert set(resolve_fields(["*"])) == set(ALL_FIELDS)
    assert set(ZMAP_FIELDS) <= set(ALL_FIELDS)
    assert {"af", "target6", "responder6"} <= set(ALL_FIELDS)
    assert (FIELD_KINDS["af"], FIELD_KINDS["target6"], FIELD_KINDS["saddr"]) == (
        "int",
        "addr6",
        "addr",
    )
    with pytest.raises(InputError, match=r"unknown field 'sadr'.*valid fields: .*saddr"):
        resolve_fields(["sadr"])


def test_source_columns_suffice_for_every_field() -> None:
    batch = random_replies(500, seed=7)
    ctx = FieldContext(SCANNER, None, SCANNER6)
    for name in ALL_FIELDS:
        narrow = batch.select(list(source_columns([name])))
        for text in (False, True):
            assert derive(narrow, [name], ctx, text=text).equals(
                derive(batch, [name], ctx, text=text)
            ), name


@given(st.lists(st.integers(0, 2**32 - 1), max_size=50))
def test_dotted_round_trip(values: list[int]) -> None:
    texts = format_dotted(np.array(values, dtype=np.uint32)).to_pylist()
    assert texts == [str(ipaddress.IPv4Address(v)) for v in values]

    assert parse_dotted(pa.array(texts, pa.string()), "x").to_pylist() == values


GROUP = st.sampled_from([0, 0, 0, 1, 0xA, 0xFF, 0x1234, 0xFFFF])
ADDRESSES6 = st.one_of(
    st.binary(min_size=16, max_size=16),
    st.lists(GROUP, min_size=8, max_size=8).map(lambda g: struct.pack(">8H", *g)),
)


@given(st.lists(st.one_of(st.none(), ADDRESSES6), max_size=40))
def test_ipv6_text_round_trip(values: list[bytes | None]) -> None:
    texts = format_ipv6(pa.array(values, ADDR6)).to_pylist()
    assert texts == [address_text(v) for v in values]
    assert parse_ipv6(pa.array(texts, pa.string()), "x").to_pylist() == values


def test_ipv6_text_of_many_shapes_and_slices() -> None:
    raw = random_ipv6(np.random.default_rng(1), 20_000)
    values = [bytes(row) for row in raw]
    array = pa.array(values, ADDR6)
    expected = [address_text(v) for v in values]
    assert format_ipv6(array).to_pylist() == expected
    assert format_ipv6(array.slice(777, 5000)).to_pylist() == expected[777:5777]
    assert sum(":ffff:" in t and "." in t for t in expected if t) > 100  # mapped covered
    assert "::" in expected and "2001:db8::1" in expected


@pytest.mark.parametrize(
    "bad", ["1.2.3", "1.2.3.256", "a.b.c.d", "1.2.3.4.5", "1..2.3", " 1.2.3.4"]
)
def test_parse_dotted_rejects_malformed(bad: str) -> None:

    with pytest.raises(InputError, match=r"f.csv: row 2: not an IPv4 address"):
        parse_dotted(pa.array(["1.1.1.1", bad]), "f.csv")


@pytest.mark.parametrize(
    "bad", ["2001::2::1", "1:2:3:4:5:6:7:8:9", "fe80::1%eth0", "12345::", "x::"]
)
def test_parse_ipv6_rejects_malformed(bad: str) -> None:
    with pytest.raises(InputError, match=rf"f.csv: row 3: not an IPv6 address: '{bad}'"):
        parse_ipv6(pa.array(["::1", "2001:db8::1", bad, "::1"]), "f.csv")
