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
from output_fixtures import random_replies

from liveness.errors import InputError
from liveness.output import ALL_FIELDS, ZMAP_FIELDS, format_dotted, parse_dotted
from liveness.output.fields import FieldContext, derive, resolve_fields
from liveness.output.schema import REPLY_COLUMNS

SCANNER = int(ipaddress.IPv4Address("198.18.0.1"))

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
}


def test_zmap_fields_match_a_row_by_row_computation() -> None:
    batch = random_replies(2000, seed=3)
    cooldown = batch.column("ts")[1500].as_py()
    derived = derive(batch, ALL_FIELDS, FieldContext(SCANNER, cooldown)).to_pylist()
    for reply, row in zip(batch.to_pylist(), derived, strict=True):
        assert row["saddr"] == reply["target"]
        assert row["daddr"] == SCANNER
        raw = struct.unpack("<I", socket.inet_aton(str(ipaddress.IPv4Address(reply["target"]))))
        assert row["saddr_raw"] == raw[0]
        assert row["classification"] == ZMAP_NAMES[reply["reply"]]
        positive = ("synack", "echo_reply", "udp", "timestamp_reply")
        assert row["success"] == (reply["reply"] in positive)
        assert row["cooldown"] == (reply["ts"] >= cooldown)
        when = dt.datetime.fromtimestamp(reply["ts"] // 10**9, dt.UTC)
        millis = reply["ts"] % 10**9 // 10**6
        assert row["timestamp_str"] == when.strftime("%Y-%m-%dT%H:%M:%S") + f".{millis:03d}+0000"
        assert row["timestamp_ts"] * 10**6 + row["timestamp_us"] == reply["ts"] // 1000
        is_icmp = reply["icmp_type"] >= 0
        assert row["icmp_responder"] == (reply["responder"] if is_icmp else None)
        if reply["icmp_type"] == 3:
            assert row["icmp_unreach_str"]
            if reply["icmp_code"] == 3:
                assert row["icmp_unreach_str"] == "port unreachable"
        else:
            assert row["icmp_unreach_str"] is None
        for name in REPLY_COLUMNS:
            assert row[name] == reply[name]


def test_no_cooldown_start_means_no_cooldown_rows() -> None:
    derived = derive(random_replies(100), ["cooldown"], FieldContext())
    assert not any(derived.column(0).to_pylist())


def test_resolve_fields_accepts_commas_star_and_rejects_unknown() -> None:
    assert resolve_fields(None) == REPLY_COLUMNS
    assert resolve_fields(["saddr, daddr", "success"]) == ("saddr", "daddr", "success")
    assert set(resolve_fields(["*"])) == set(ALL_FIELDS)
    assert set(ZMAP_FIELDS) <= set(ALL_FIELDS)
    with pytest.raises(InputError, match=r"unknown field 'sadr'.*valid fields: .*saddr"):
        resolve_fields(["sadr"])


@given(st.lists(st.integers(0, 2**32 - 1), max_size=50))
def test_dotted_round_trip(values: list[int]) -> None:
    texts = format_dotted(np.array(values, dtype=np.uint32)).to_pylist()
    assert texts == [str(ipaddress.IPv4Address(v)) for v in values]

    assert parse_dotted(pa.array(texts, pa.string()), "x").to_pylist() == values


@pytest.mark.parametrize(
    "bad", ["1.2.3", "1.2.3.256", "a.b.c.d", "1.2.3.4.5", "1..2.3", " 1.2.3.4"]
)
def test_parse_dotted_rejects_malformed(bad: str) -> None:

    with pytest.raises(InputError, match=r"f.csv: row 2: not an IPv4 address"):
        parse_dotted(pa.array(["1.1.1.1", bad]), "f.csv")
