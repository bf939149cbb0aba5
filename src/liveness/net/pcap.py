"""Classic pcap files (linktype Ethernet) from and to 2-D frame batches; pcapng files are read
too (:mod:`liveness.net.pcapng`).

Reading also accepts Linux cooked captures (``tcpdump -i any``, linktype 113): their 16-byte
header ends with the EtherType, so dropping its first 2 bytes leaves an Ethernet-shaped header
(with meaningless MAC addresses), which is all the reply classifier reads.

Writing is vectorised: record headers and frame bytes are laid side by side in one array and
the bytes to keep are selected with a length mask. Reading walks the record headers (their
lengths chain the offsets, so this walk is sequential) and then gathers each chunk of frames
into a ``(n, width)`` array with one masked copy.

A file cut short (a capture killed mid-write) keeps every complete record before the cut; the
reader records an :class:`InputError` naming the file and the byte offset in ``error`` and
stops, and :func:`read_pcap` raises it only when asked to be strict (warn and keep).
"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

import numpy as np
from numpy.typing import NDArray

from liveness.errors import InputError, RunError

__all__ = ["FrameBatch", "PcapReader", "PcapWriter", "gather_frames", "read_pcap", "write_pcap"]

MAGIC_US = 0xA1B2C3D4
MAGIC_NS = 0xA1B23C4D
PCAPNG_MAGIC = 0x0A0D0D0A
LINKTYPE_ETHERNET = 1
LINKTYPE_LINUX_SLL = 113
SLL_EXTRA = 2  # a cooked header is 16 bytes, Ethernet's 14
GLOBAL_HEADER = struct.Struct("<IHHiIII")
RECORD_HEADER_LEN = 16
DEFAULT_SNAPLEN = 65535


@dataclass
class FrameBatch:
    """Frames ``(n, width)`` uint8 from the Ethernet header, captured lengths, times (ns)."""

    frames: NDArray[np.uint8]
    lengths: NDArray[np.uint32]
    ts_ns: NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.lengths)

    @classmethod
    def concat(cls, batches: list[FrameBatch]) -> FrameBatch:
        """One batch from several (frames zero-padded to the widest)."""
        if not batches:
            return cls(np.zeros((0, 0), np.uint8), np.zeros(0, np.uint32), np.zeros(0, np.int64))
        width = max(b.frames.shape[1] for b in batches)
        frames = np.zeros((sum(len(b) for b in batches), width), dtype=np.uint8)
        row = 0
        for b in batches:
            frames[row : row + len(b), : b.frames.shape[1]] = b.frames
            row += len(b)
        return cls(
            frames,
            np.concatenate([b.lengths for b in batches]),
            np.concatenate([b.ts_ns for b in batches]),
        )


class PcapWriter:
    """Appends frame batches to a new pcap file (nanosecond timestamps by default)."""

    def __init__(
        self, path: str | Path, *, nanosecond: bool = True, snaplen: int = DEFAULT_SNAPLEN
    ) -> None:
        self.path = Path(path)
        self.nanosecond = nanosecond
        self.snaplen = snaplen
        self.frames_written = 0
        try:
            self._file: BinaryIO = open(self.path, "wb")  # noqa: SIM115 (closed in close())
        except OSError as exc:
            raise InputError(f"{self.path}: cannot write pcap ({exc.strerror})") from None
        magic = MAGIC_NS if nanosecond else MAGIC_US
        self._file.write(GLOBAL_HEADER.pack(magic, 2, 4, 0, 0, snaplen, LINKTYPE_ETHERNET))

    def write(
        self,
        frames: NDArray[np.uint8],
        lengths: NDArray[np.integer] | None = None,
        ts_ns: NDArray[np.int64] | int | None = None,
    ) -> None:
        """Write ``frames`` (first ``lengths[i]`` bytes of row i; default whole rows)."""
        frames = np.asarray(frames, dtype=np.uint8)
        n, width = frames.shape
        if n == 0:
            return
        incl = (
            np.full(n, width, dtype=np.int64)
            if lengths is None
            else np.minimum(np.asarray(lengths, dtype=np.int64), width)
        )
        incl = np.minimum(incl, self.snaplen)
        if ts_ns is None:
            ts_ns = time.time_ns()
        ts = np.broadcast_to(np.asarray(ts_ns, dtype=np.int64), (n,))
        frac = ts % 1_000_000_000 if self.nanosecond else (ts % 1_000_000_000) // 1000
        headers = np.empty((n, 4), dtype="<u4")
        headers[:, 0] = ts // 1_000_000_000
        headers[:, 1] = frac
        headers[:, 2] = incl
        headers[:, 3] = np.maximum(incl, np.asarray(lengths if lengths is not None else incl))
        records = np.empty((n, RECORD_HEADER_LEN + width), dtype=np.uint8)
        records[:, :RECORD_HEADER_LEN] = headers.view(np.uint8).reshape(n, RECORD_HEADER_LEN)
        records[:, RECORD_HEADER_LEN:] = frames
        keep = np.arange(RECORD_HEADER_LEN + width)[None, :] < (RECORD_HEADER_LEN + incl)[:, None]
        try:
            self._file.write(records[keep].tobytes())
        except OSError as exc:
            raise RunError(f"{self.path}: cannot write pcap ({exc.strerror})") from None
        self.frames_written += n

    def close(self) -> None:
        """Flush and close the file (a full disk is one clear error, not a traceback)."""
        try:
            self._file.close()
        except OSError as exc:
            raise RunError(f"{self.path}: cannot write pcap ({exc.strerror})") from None

    def __enter__(self) -> PcapWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def write_pcap(
    path: str | Path,
    frames: NDArray[np.uint8],
    lengths: NDArray[np.integer] | None = None,
    ts_ns: NDArray[np.int64] | int | None = None,
    *,
    nanosecond: bool = True,
) -> None:
    """Write one batch of frames to a new pcap file."""
    with PcapWriter(path, nanosecond=nanosecond) as writer:
        writer.write(frames, lengths, ts_ns)


class PcapReader:
    """Iterates over a pcap file in :class:`FrameBatch` chunks of up to ``batch_size`` frames.

    Frames longer than ``max_width`` are cut to it (their ``lengths`` say so). After iteration,
    ``error`` holds an InputError if the file was truncated (everything before was yielded).
    """

    def __init__(self, path: str | Path, *, batch_size: int = 65536, max_width: int = 2048) -> None:
        self.path = Path(path)
        self.batch_size = batch_size
        self.max_width = max_width
        self.error: InputError | None = None
        self.frames_read = 0
        try:
            self._data = self.path.read_bytes()
        except OSError as exc:
            raise InputError(f"{self.path}: cannot read pcap ({exc.strerror})") from None
        self.pcapng = len(self._data) >= 4 and self._data[:4] == PCAPNG_MAGIC.to_bytes(4, "little")
        if self.pcapng:
            self._order, self.nanosecond, self.linktype = "<", True, LINKTYPE_ETHERNET
        else:
            self._order, self.nanosecond, self.linktype = self._global_header()

    def _global_header(self) -> tuple[str, bool, int]:
        data = self._data
        if len(data) < GLOBAL_HEADER.size:
            raise InputError(f"{self.path}: not a pcap file (only {len(data)} bytes)")
        for order in ("<", ">"):
            (magic,) = struct.unpack_from(order + "I", data)
            if magic in (MAGIC_US, MAGIC_NS):
                break
        else:
            raise InputError(f"{self.path}: not a pcap or pcapng file (magic 0x{magic:08x})")
        linktype = struct.unpack_from(order + "I", data, 20)[0] & 0xFFFF
        if linktype not in (LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL):
            raise InputError(
                f"{self.path}: link type {linktype} is neither Ethernet (1) nor Linux "
                "cooked (113); capture on an Ethernet interface or on 'any'"
            )
        return order, magic == MAGIC_NS, linktype

    def __iter__(self) -> Iterator[FrameBatch]:
        if self.pcapng:
            yield from self._pcapng_batches()
            return
        data = self._data
        header = struct.Struct(self._order + "IIII")
        pos = GLOBAL_HEADER.size
        end = len(data)
        while pos < end:
            starts: list[int] = []
            while pos < end and len(starts) < self.batch_size:
                if end - pos < RECORD_HEADER_LEN:
                    self._truncated(
                        pos, f"record header needs 16 bytes, {end - pos} left", len(starts)
                    )
                    break
                incl = header.unpack_from(data, pos)[2]
                if end - pos - RECORD_HEADER_LEN < incl:
                    left = end - pos - RECORD_HEADER_LEN
                    self._truncated(pos, f"record needs {incl} bytes, {left} left", len(starts))
                    break
                starts.append(pos)
                pos += RECORD_HEADER_LEN + incl
            if starts:
                yield self._gather(np.array(starts, dtype=np.int64))
            if self.error is not None:
                return

    def _pcapng_batches(self) -> Iterator[FrameBatch]:
        from liveness.net.pcapng import pcapng_batches

        for frames, lengths, ts_ns in pcapng_batches(
            self._data, str(self.path), self.batch_size, self.max_width, self._truncated
        ):
            self.frames_read += len(lengths)
            yield FrameBatch(frames, lengths, ts_ns)

    def _truncated(self, pos: int, detail: str, pending: int) -> None:
        self.error = InputError(
            f"{self.path}: truncated at byte {pos} ({detail}); kept the "
            f"{self.frames_read + pending} complete frames before it"
        )

    def _gather(self, starts: NDArray[np.int64]) -> FrameBatch:
        raw = np.frombuffer(self._data, dtype=np.uint8)
        heads = raw[starts[:, None] + np.arange(RECORD_HEADER_LEN)].copy()
        fields = heads.view(self._order + "u4").astype(np.int64)
        skip = SLL_EXTRA if self.linktype == LINKTYPE_LINUX_SLL else 0
        incl = np.maximum(fields[:, 2] - skip, 0)
        frames, lengths = gather_frames(
            self._data, starts + RECORD_HEADER_LEN + skip, incl, self.max_width
        )
        scale = 1 if self.nanosecond else 1000
        ts_ns = fields[:, 0] * 1_000_000_000 + fields[:, 1] * scale
        self.frames_read += len(starts)
        return FrameBatch(frames, lengths, ts_ns)


def gather_frames(
    data: bytes, offsets: NDArray[np.int64], lengths: NDArray[np.int64], max_width: int
) -> tuple[NDArray[np.uint8], NDArray[np.uint32]]:
    """The frames at ``offsets`` of ``data`` (``lengths`` bytes each, cut to ``max_width``) as
    one zero-padded ``(n, width)`` array, with one masked copy; and their kept lengths."""
    raw = np.frombuffer(data, dtype=np.uint8)
    width = int(min(max(int(lengths.max()), 1), max_width))
    kept = np.minimum(lengths, width)
    cols = np.arange(width)
    valid = cols[None, :] < kept[:, None]
    frames = np.zeros((len(offsets), width), dtype=np.uint8)
    frames[valid] = raw[(offsets[:, None] + cols[None, :])[valid]]
    return frames, kept.astype(np.uint32)


def read_pcap(
    path: str | Path, *, strict: bool = False, max_width: int = 2048
) -> tuple[FrameBatch, InputError | None]:
    """Every frame of a pcap file; a truncation is returned (or raised when ``strict``)."""
    reader = PcapReader(path, max_width=max_width)
    batch = FrameBatch.concat(list(reader))
    if strict and reader.error is not None:
        raise reader.error
    return batch, reader.error
