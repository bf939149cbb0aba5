"""pcapng files (Wireshark's and dumpcap's default) read into the same frame batches as pcap.

A pcapng file is a chain of blocks, each starting with its type and total length: a Section
Header (its byte-order magic fixes the endianness of the section), Interface Descriptions (link
type, and the ``if_tsresol`` option: the timestamp unit, 10^-6 s by default), and packets in
Enhanced, Simple or (obsolete) Packet blocks. Other blocks (name resolution, statistics,
custom) are skipped by their length. As for pcap, the walk over block headers is sequential
(each length gives the next offset) and the frames are then gathered chunk by chunk with one
masked copy; Linux cooked interfaces lose the first 2 bytes of their 16-byte header.

Several sections and interfaces may follow one another (``mergecap`` output); every interface
must be Ethernet or Linux cooked. A file cut short keeps every complete packet before the cut
and reports where it was cut.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from liveness.errors import InputError
from liveness.net.pcap import gather_frames

__all__ = ["PCAPNG_MAGIC", "pcapng_batches"]

PCAPNG_MAGIC = 0x0A0D0D0A
BYTE_ORDER_MAGIC = 0x1A2B3C4D
ENHANCED_PACKET = 6
SIMPLE_PACKET = 3
OBSOLETE_PACKET = 2
INTERFACE = 1
OPT_TSRESOL = 9
LINKTYPE_ETHERNET = 1
LINKTYPE_LINUX_SLL = 113
SLL_EXTRA = 2


@dataclass
class _Interface:
    linktype: int
    snaplen: int
    units_per_s: int = 1_000_000


@dataclass
class _Chunk:
    """Packets found so far: data offset (past a cooked header's extra bytes), captured
    length, timestamp (ns)."""

    offsets: list[int] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    ts_ns: list[int] = field(default_factory=list)


Batch = tuple[NDArray[np.uint8], NDArray[np.uint32], NDArray[np.int64]]


def pcapng_batches(
    data: bytes,
    where: str,
    batch_size: int,
    max_width: int,
    on_truncated: Callable[[int, str, int], None],
) -> Iterator[Batch]:
    """(frames, lengths, ts_ns) chunks of every packet of a pcapng file held in ``data``.

    ``on_truncated(offset, detail, pending)`` is called (and iteration ends) when the file is
    cut short; InputError for what is not a readable pcapng file."""
    order = "<"
    interfaces: list[_Interface] = []
    chunk = _Chunk()
    pos, end = 0, len(data)
    while pos < end:
        if end - pos < 12:
            on_truncated(pos, f"block header needs 12 bytes, {end - pos} left", len(chunk.offsets))
            break
        block_type = struct.unpack_from(order + "I", data, pos)[0]
        if block_type == PCAPNG_MAGIC:
            magic = struct.unpack_from("<I", data, pos + 8)[0]
            if magic == BYTE_ORDER_MAGIC:
                order = "<"
            elif magic == struct.unpack(">I", struct.pack("<I", BYTE_ORDER_MAGIC))[0]:
                order = ">"
            else:
                raise InputError(f"{where}: byte {pos}: bad pcapng byte-order magic")
            interfaces = []
        total = struct.unpack_from(order + "I", data, pos + 4)[0]
        if total < 12 or total % 4:
            raise InputError(f"{where}: byte {pos}: pcapng block of length {total} is malformed")
        if end - pos < total:
            detail = f"block needs {total} bytes, {end - pos} left"
            on_truncated(pos, detail, len(chunk.offsets))
            break
        body = pos + 8
        if block_type == INTERFACE:
            interfaces.append(_interface(data, order, body, pos + total - 4, where, pos))
        elif block_type in (ENHANCED_PACKET, OBSOLETE_PACKET, SIMPLE_PACKET):
            _packet(data, order, block_type, body, total, interfaces, chunk, where, pos)
        pos += total
        if len(chunk.offsets) >= batch_size:
            yield _gather(data, chunk, max_width)
            chunk = _Chunk()
    if chunk.offsets:
        yield _gather(data, chunk, max_width)


def _interface(data: bytes, order: str, body: int, stop: int, where: str, pos: int) -> _Interface:
    linktype, _, snaplen = struct.unpack_from(order + "HHI", data, body)
    if linktype not in (LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL):
        raise InputError(
            f"{where}: byte {pos}: interface link type {linktype} is neither Ethernet (1) nor "
            "Linux cooked (113); capture on an Ethernet interface or on 'any'"
        )
    interface = _Interface(linktype, snaplen)
    option = body + 8
    while option + 4 <= stop:
        code, length = struct.unpack_from(order + "HH", data, option)
        if code == 0:
            break
        if code == OPT_TSRESOL and length >= 1:
            value = data[option + 4]
            exponent = value & 0x7F
            interface.units_per_s = 2**exponent if value & 0x80 else 10**exponent
        option += 4 + (length + 3) // 4 * 4
    return interface


def _packet(
    data: bytes,
    order: str,
    block_type: int,
    body: int,
    total: int,
    interfaces: list[_Interface],
    chunk: _Chunk,
    where: str,
    pos: int,
) -> None:
    if block_type == SIMPLE_PACKET:
        if not interfaces:
            raise InputError(f"{where}: byte {pos}: a packet before any interface description")
        interface = interfaces[0]
        original = struct.unpack_from(order + "I", data, body)[0]
        captured = min(original, total - 16)
        if interface.snaplen:
            captured = min(captured, interface.snaplen)
        offset, ts = body + 4, 0
    else:
        if block_type == ENHANCED_PACKET:
            ifid, high, low, captured = struct.unpack_from(order + "IIII", data, body)
            offset = body + 20
        else:
            ifid = struct.unpack_from(order + "H", data, body)[0]
            high, low, captured = struct.unpack_from(order + "III", data, body + 4)
            offset = body + 20
        if ifid >= len(interfaces):
            raise InputError(f"{where}: byte {pos}: packet of undescribed interface {ifid}")
        interface = interfaces[ifid]
        if offset + captured > pos + total - 4:
            raise InputError(f"{where}: byte {pos}: packet longer than its block")
        units = (high << 32) | low
        ts = units * 1_000_000_000 // interface.units_per_s
    skip = SLL_EXTRA if interface.linktype == LINKTYPE_LINUX_SLL else 0
    chunk.offsets.append(offset + skip)
    chunk.lengths.append(max(captured - skip, 0))
    chunk.ts_ns.append(ts)


def _gather(data: bytes, chunk: _Chunk, max_width: int) -> Batch:
    offsets = np.array(chunk.offsets, dtype=np.int64)
    frames, lengths = gather_frames(
        data, offsets, np.array(chunk.lengths, dtype=np.int64), max_width
    )
    return frames, lengths, np.array(chunk.ts_ns, dtype=np.int64)
