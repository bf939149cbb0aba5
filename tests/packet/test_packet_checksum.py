"""Checksums: the batch and incremental forms agree with a straightforward RFC 1071 sum."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from liveness.packet.checksum import checksum_bytes, checksum_rows, finish, partial_sum, word_sum32
from liveness.packet.layout import mac_bytes, mac_text
from liveness.packet.payloads import dns_query, encode_qname, ntp_request


def reference(data: bytes) -> int:
    """RFC 1071, one word at a time."""
    if len(data) % 2:
        data += b"\x00"
    total = 0
    for i in range(0, len(data), 2):
        total += (data[i] << 8) | data[i + 1]
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


@given(st.binary(max_size=300))
def test_checksum_bytes_matches_reference(data: bytes) -> None:
    assert checksum_bytes(data) == reference(data)


@given(st.lists(st.binary(min_size=7, max_size=7), min_size=1, max_size=20))
def test_checksum_rows_matches_reference(rows: list[bytes]) -> None:
    array = np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(len(rows), 7)
    assert checksum_rows(array).tolist() == [reference(r) for r in rows]


@given(
    st.binary(min_size=8, max_size=64).filter(lambda b: len(b) % 2 == 0), st.integers(0, 2**32 - 1)
)
def test_incremental_update_equals_full_checksum(data: bytes, value: int) -> None:
    """Template sum with a zeroed 32-bit field + the field's words = checksum of the full data."""
    template = bytes(4) + data[4:]
    full = value.to_bytes(4, "big") + data[4:]
    total = np.uint32(partial_sum(template)) + word_sum32(np.array([value], dtype=np.uint32))
    assert int(finish(total)[0]) == reference(full)


def test_udp_zero_checksum_is_sent_as_ffff() -> None:
    assert finish(np.array([0xFFFF], dtype=np.uint32), udp=True)[0] == 0xFFFF
    assert finish(np.array([0xFFFF], dtype=np.uint32))[0] == 0


def test_macs_and_payloads() -> None:
    assert mac_text(mac_bytes("02-AA-00-00-00-0f")) == "02:aa:00:00:00:0f"
    assert encode_qname("liveness.test.") == b"\x08liveness\x04test\x00"
    query = dns_query("txt", "a.b")
    assert query[:12] == bytes.fromhex("000001000001000000000000")
    assert query[-4:] == bytes.fromhex("00100001")
    assert len(ntp_request()) == 48 and ntp_request()[0] == 0x23


def test_address_sum16_is_the_ones_complement_sum_of_the_big_endian_words() -> None:
    """Summed in native order and byte-swapped, the share equals the straight big-endian sum
    (mod 0xFFFF, where 0 and 0xFFFF are one value), edge values included."""
    from liveness.packet.checksum import address_sum16

    rng = np.random.default_rng(5)
    rows = rng.integers(0, 256, (5000, 16), dtype=np.uint8)
    rows[0] = 0xFF
    rows[1] = 0
    rows[2, ::2] = 0xFF
    expected = rows.view(">u2").sum(axis=1, dtype=np.uint64) % 0xFFFF
    got = address_sum16(rows)
    assert got.max() < 2**17
    assert np.array_equal(got.astype(np.uint64) % 0xFFFF, expected)
