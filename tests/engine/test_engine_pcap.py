"""pcap files: round trips, timestamps, truncation (warn and keep), bad files."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from liveness.errors import InputError
from liveness.net.pcap import FrameBatch, PcapReader, PcapWriter, read_pcap, write_pcap


def sample(n: int = 50, width: int = 90) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(n)
    frames = rng.integers(0, 256, (n, width), dtype=np.uint8)
    lengths = rng.integers(14, width + 1, n)
    ts = 1_700_000_000_000_000_000 + rng.integers(0, 10**12, n)
    return frames, lengths, ts


@pytest.mark.parametrize("nanosecond", [True, False])
def test_round_trip(tmp_path: Path, nanosecond: bool) -> None:
    frames, lengths, ts = sample()
    path = tmp_path / "x.pcap"
    write_pcap(path, frames, lengths, ts, nanosecond=nanosecond)
    batch, error = read_pcap(path)
    assert error is None and len(batch) == len(frames)
    assert batch.lengths.tolist() == lengths.tolist()
    expected_ts = ts if nanosecond else ts // 1000 * 1000
    assert batch.ts_ns.tolist() == expected_ts.tolist()
    for row in range(len(frames)):
        size = lengths[row]
        assert np.array_equal(batch.frames[row, :size], frames[row, :size])
        assert not batch.frames[row, size:].any()


def test_chunks_and_scapy_agree(tmp_path: Path) -> None:
    from scapy.utils import rdpcap

    frames, lengths, ts = sample(300)
    path = tmp_path / "x.pcap"
    with PcapWriter(path) as writer:
        writer.write(frames[:100], lengths[:100], ts[:100])
        writer.write(frames[100:], lengths[100:], ts[100:])
    chunks = list(PcapReader(path, batch_size=64))
    assert [len(c) for c in chunks] == [64, 64, 64, 64, 44]
    merged = FrameBatch.concat(chunks)
    packets = rdpcap(str(path))
    assert [len(p) for p in packets] == merged.lengths.tolist()
    assert bytes(packets[7]) == merged.frames[7, : lengths[7]].tobytes()


def test_truncated_file_keeps_what_came_before(tmp_path: Path) -> None:
    frames, lengths, ts = sample(10)
    path = tmp_path / "cut.pcap"
    write_pcap(path, frames, lengths, ts)
    data = path.read_bytes()
    path.write_bytes(data[:-3])
    batch, error = read_pcap(path)
    assert len(batch) == 9 and isinstance(error, InputError)
    assert str(path) in str(error) and "truncated" in str(error) and "9 complete" in str(error)
    with pytest.raises(InputError, match="truncated"):
        read_pcap(path, strict=True)
    path.write_bytes(data[: 24 + 16 + lengths[0] + 5])  # cut inside the second record header
    batch, error = read_pcap(path)
    assert len(batch) == 1 and error is not None and "record header" in str(error)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not a pcap"),
        (b"\x00" * 40, "not a pcap or pcapng file"),
        (struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101), "neither Ethernet"),
    ],
)
def test_bad_files(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.pcap"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        PcapReader(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        PcapReader(tmp_path / "nope.pcap")


def test_big_endian_file(tmp_path: Path) -> None:
    frame = bytes(range(60))
    header = struct.pack(">IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    record = struct.pack(">IIII", 5, 7, 60, 60) + frame
    path = tmp_path / "be.pcap"
    path.write_bytes(header + record)
    batch, error = read_pcap(path)
    assert error is None and batch.ts_ns.tolist() == [5_000_007_000]
    assert batch.frames[0].tobytes() == frame


def test_linux_cooked_capture_reads_as_ethernet(tmp_path: Path) -> None:
    """``tcpdump -i any`` (linktype 113): the EtherType lands where Ethernet has it."""
    ip_packet = bytes([0x45]) + bytes(range(1, 40))
    cooked = struct.pack("!HHH8sH", 0, 1, 6, b"\x02" * 8, 0x0800) + ip_packet
    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 113)
    records = struct.pack("<IIII", 1, 0, len(cooked), len(cooked)) + cooked
    records += struct.pack("<IIII", 2, 0, 1, 1) + b"\x00"  # shorter than the header: length 0
    path = tmp_path / "any.pcap"
    path.write_bytes(header + records)
    batch, error = read_pcap(path)
    assert error is None and batch.lengths.tolist() == [14 + len(ip_packet), 0]
    assert batch.frames[0, 12:14].tobytes() == b"\x08\x00"
    assert batch.frames[0, 14 : 14 + len(ip_packet)].tobytes() == ip_packet
