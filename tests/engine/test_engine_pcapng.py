"""pcapng (Wireshark's default) reads into the same frames, lengths and times as pcap.

The real capture of ``test_engine_real_capture.py`` is converted by Wireshark's own ``editcap``
(an independent writer) to pcapng, at microsecond and nanosecond resolution, and decoded by
``liveness decode``: the records equal those of the pcap. Hand-built files cover what editcap
does not write: several sections of both byte orders, a Linux cooked interface, simple packet
blocks, unknown blocks, and a file cut short.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from liveness.errors import InputError
from liveness.net.pcap import PcapReader, read_pcap, write_pcap
from liveness.output import read_replies

DATA = Path(__file__).resolve().parents[1] / "data" / "engine"
needs_editcap = pytest.mark.skipif(shutil.which("editcap") is None, reason="editcap missing")


def _decode(capture: Path, out: Path) -> pa.Table:
    meta = json.loads((DATA / "replies.json").read_text())
    argv = [sys.executable, "-m", "liveness.cli.main", "decode", str(capture)]
    argv += ["-e", str(meta["seed"]), "-S", meta["source_ip"], "--probes", meta["probes"]]
    argv += ["--max-attempts", str(meta["max_attempts"]), "-o", str(out), "--json"]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["warning"] is None
    return pa.Table.from_batches(list(read_replies(str(out))))


@needs_editcap
@pytest.mark.parametrize("resolution", ["us", "ns"])
def test_pcapng_of_a_real_capture_decodes_to_the_pcap_records(
    tmp_path: Path, resolution: str
) -> None:
    source = DATA / "replies.pcap"
    converted = tmp_path / "replies.pcapng"
    argv = ["editcap", "-F", "pcapng"]
    if resolution == "ns":
        argv += ["--set-resolution", "ns"] if _has_set_resolution() else []
    subprocess.run([*argv, str(source), str(converted)], check=True, capture_output=True)
    assert converted.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a"
    plain = _decode(source, tmp_path / "a.parquet")
    fancy = _decode(converted, tmp_path / "b.parquet")
    assert plain.num_rows > 50
    assert plain.equals(fancy)
    frames, error = read_pcap(source)
    frames_ng, error_ng = read_pcap(converted)
    assert error is None and error_ng is None
    assert np.array_equal(frames.lengths, frames_ng.lengths)
    assert np.array_equal(frames.ts_ns, frames_ng.ts_ns)
    assert np.array_equal(frames.frames, frames_ng.frames)


def _has_set_resolution() -> bool:
    help_text = subprocess.run(["editcap", "-h"], capture_output=True, text=True).stdout
    return "--set-resolution" in help_text


def _block(order: str, kind: int, body: bytes) -> bytes:
    body += bytes(-len(body) % 4)
    total = len(body) + 12
    return struct.pack(order + "II", kind, total) + body + struct.pack(order + "I", total)


def _section(order: str) -> bytes:
    return _block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1))


def _interface(order: str, linktype: int, tsresol: int | None = None) -> bytes:
    options = b""
    if tsresol is not None:
        options = struct.pack(order + "HH", 9, 1) + bytes([tsresol]) + bytes(3)
        options += struct.pack(order + "HH", 0, 0)
    return _block(order, 1, struct.pack(order + "HHI", linktype, 0, 0) + options)


def _enhanced(order: str, ifid: int, units: int, frame: bytes) -> bytes:
    head = struct.pack(
        order + "IIIII", ifid, units >> 32, units & 0xFFFFFFFF, len(frame), len(frame)
    )
    return _block(order, 6, head + frame)


FRAMES = [bytes([i]) * (60 + i) for i in range(4)]


def test_sections_byte_orders_cooked_simple_and_unknown_blocks(tmp_path: Path) -> None:
    cooked = b"\x00\x00" + bytes(range(14)) + FRAMES[2][14:]  # 16-byte SLL header
    data = (
        _section("<")
        + _interface("<", 1)  # microseconds
        + _interface("<", 113, tsresol=9)  # nanoseconds
        + _enhanced("<", 0, 1_700_000_000_123_456, FRAMES[0])
        + _block("<", 0x0BAD, b"custom block, skipped")
        + _enhanced("<", 1, 1_700_000_000_000_000_777, cooked)
        + _section(">")
        + _interface(">", 1, tsresol=0x80 | 10)  # 2^-10 s
        + _enhanced(">", 0, 3 * 1024 + 512, FRAMES[3])
        + _block(">", 3, struct.pack(">I", len(FRAMES[1])) + FRAMES[1])  # simple packet
    )
    path = tmp_path / "hand.pcapng"
    path.write_bytes(data)
    batch, error = read_pcap(path)
    assert error is None
    got = [bytes(row[:n]) for row, n in zip(batch.frames, batch.lengths, strict=True)]
    assert got[0] == FRAMES[0] and got[2] == FRAMES[3] and got[3] == FRAMES[1]
    assert got[1] == bytes(range(14)) + FRAMES[2][14:]  # the SLL header less 2 bytes
    assert batch.ts_ns.tolist() == [
        1_700_000_000_123_456_000,
        1_700_000_000_000_000_777,
        3_500_000_000,
        0,
    ]


def test_a_cut_pcapng_keeps_every_packet_before_the_cut(tmp_path: Path) -> None:
    data = _section("<") + _interface("<", 1)
    data += b"".join(_enhanced("<", 0, i, FRAMES[i % 4]) for i in range(10))
    path = tmp_path / "cut.pcapng"
    path.write_bytes(data[:-7])
    batch, error = read_pcap(path)
    assert len(batch) == 9 and isinstance(error, InputError)
    assert "truncated" in str(error) and "9 complete" in str(error)


@pytest.mark.parametrize(
    ("tail", "message"),
    [
        (_interface("<", 101), "neither Ethernet"),
        (_enhanced("<", 3, 0, FRAMES[0]), "undescribed interface"),
        (struct.pack("<II", 6, 10) + bytes(8), "malformed"),
    ],
)
def test_bad_pcapng_blocks_are_named(tmp_path: Path, tail: bytes, message: str) -> None:
    path = tmp_path / "bad.pcapng"
    path.write_bytes(_section("<") + _interface("<", 1) + tail)
    with pytest.raises(InputError, match=message):
        list(PcapReader(path))


def test_pcap_and_pcapng_of_our_own_frames_agree(tmp_path: Path) -> None:
    frames = np.zeros((3, 80), np.uint8)
    frames[:, :60] = np.arange(60, dtype=np.uint8)
    write_pcap(tmp_path / "a.pcap", frames, ts_ns=np.array([1, 2, 3]) * 10**9)
    data = _section("<") + _interface("<", 1, tsresol=9)
    data += b"".join(_enhanced("<", 0, (i + 1) * 10**9, frames[i].tobytes()) for i in range(3))
    (tmp_path / "b.pcapng").write_bytes(data)
    a, _ = read_pcap(tmp_path / "a.pcap")
    b, _ = read_pcap(tmp_path / "b.pcapng")
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.ts_ns, b.ts_ns)
