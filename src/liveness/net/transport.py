"""Packet I/O behind one small interface: what the scan loop sends through, and the receiver reads.

A :class:`Transport` opens the two ends of one scan: a :class:`Sender` (in the scanning process)
and a :class:`Receiver` (in the receiver process, after the fork). Three implementations:

- :class:`PacketTransport`: the AF_PACKET rings of :mod:`liveness.net.afpacket` (the wire).
- :class:`MemoryTransport`: an in-memory stand-in, as httpx's ``MockTransport``. Every frame
  sent is logged with its time, and a *responder* function turns the frames into the replies
  the receiver reads (through a pipe, so it crosses the fork). It can pretend the kernel's queue
  is full, to exercise the retry path. Tests of the scan loop need no root and no network.
- :class:`PcapTransport`: frames go to a pcap file and replies come from one (a rehearsal, or
  the replay of a capture).
"""

from __future__ import annotations

import errno
import multiprocessing as mp
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from liveness.errors import RunError
from liveness.net.afpacket import RingReceiver, RingSender, RxBatch, SendPolicy

__all__ = [
    "MemoryTransport",
    "PacketTransport",
    "PcapTransport",
    "Receiver",
    "Sender",
    "Transport",
]


class Sender(Protocol):
    """Sends batches of frames; see :meth:`RingSender.send` for ``group`` and ``before_flush``."""

    slots: int
    frames_sent: int
    send_failures: int

    def send(
        self,
        frames: NDArray[np.uint8],
        lengths: NDArray[np.integer[Any]] | None = None,
        *,
        group: int = 1,
        before_flush: Callable[[int], None] | None = None,
    ) -> int: ...

    def close(self) -> None: ...


class Receiver(Protocol):
    """Yields captured frames addressed to the scanner."""

    def poll(self, timeout_ms: int = 100, max_frames: int = 65536) -> RxBatch: ...

    def stats(self) -> tuple[int, int]: ...

    def close(self) -> None: ...


class Transport(Protocol):
    """Opens both ends of one scan (the receiver's after the fork, in the receiver process)."""

    def open_sender(self, policy: SendPolicy) -> Sender: ...

    def open_receiver(self) -> Receiver: ...


@dataclass(frozen=True)
class PacketTransport:
    """The wire: AF_PACKET rings on ``ifname``, replies addressed to ``src_ip`` (or to
    ``src_ip6``, the 16-byte IPv6 source, when the scan has one)."""

    ifname: str
    src_ip: int
    ring_slots: int = 1 << 18
    src_ip6: bytes | None = None
    snaplen: int = 192  # bytes captured per frame (more with --app-layer: the banners)

    def open_sender(self, policy: SendPolicy) -> Sender:
        return RingSender(self.ifname, policy=policy)

    def open_receiver(self) -> Receiver:
        return RingReceiver(
            self.ifname,
            self.src_ip,
            slots=self.ring_slots,
            dst_addr6=self.src_ip6,
            snaplen=self.snaplen,
        )


Responder = Callable[[NDArray[np.uint8], NDArray[np.uint32]], tuple[Any, Any] | None]
"""Frames and lengths of one flush -> (reply frames, reply lengths), or None."""


def _stack(rows: list[NDArray[np.uint8]], width: int = 0) -> NDArray[np.uint8]:
    """2-D frame arrays of different widths, stacked (zero-padded to the widest)."""
    width = max(width, *(r.shape[1] for r in rows))
    return np.concatenate([np.pad(r, ((0, 0), (0, width - r.shape[1]))) for r in rows])


def _empty_batch(width: int) -> RxBatch:
    return RxBatch(np.zeros((0, width), np.uint8), np.zeros(0, np.uint32), np.zeros(0, np.int64))


@dataclass
class MemoryTransport:
    """An in-memory network: ``responder(frames, lengths)`` returns the reply frames (2-D,
    zero-padded) and their lengths for a flush; None answers nothing.

    ``sent`` logs every flush as ``(time, frames)``; ``full_flushes`` makes that many flushes
    fail as a full queue (ENOBUFS) before they succeed; ``on_flush(n)`` runs after each
    successful flush with the frames sent so far (a test can kill the process there).
    """

    responder: Callable[[NDArray[np.uint8], NDArray[np.uint32]], tuple[Any, Any] | None] | None = (
        None
    )
    full_flushes: int = 0
    on_flush: Callable[[int], None] | None = None
    width: int = 192
    sent: list[tuple[float, NDArray[np.uint8]]] = field(default_factory=list)
    _pipe: Any = None

    def __post_init__(self) -> None:
        self._pipe = mp.get_context("fork").Pipe(duplex=False)

    def open_sender(self, policy: SendPolicy) -> Sender:
        return _MemorySender(self, policy)

    def open_receiver(self) -> Receiver:
        return _MemoryReceiver(self._pipe[0], self.width)

    def frames(self) -> NDArray[np.uint8]:
        """Every frame sent, in order."""
        if not self.sent:
            return np.zeros((0, 0), np.uint8)
        return _stack([frames for _, frames in self.sent])

    def times(self) -> NDArray[np.float64]:
        """The time of each frame sent (its flush's)."""
        return (
            np.concatenate([np.full(f.shape[0], t) for t, f in self.sent])
            if self.sent
            else np.zeros(0)
        )


class _MemorySender:
    slots = 16384

    def __init__(self, transport: MemoryTransport, policy: SendPolicy) -> None:
        self.transport = transport
        self.policy = policy
        self.frames_sent = 0
        self.send_failures = 0
        self._writer = transport._pipe[1]

    def send(
        self,
        frames: NDArray[np.uint8],
        lengths: NDArray[np.integer[Any]] | None = None,
        *,
        group: int = 1,
        before_flush: Callable[[int], None] | None = None,
    ) -> int:
        count = frames.shape[0]
        lengths = np.full(count, frames.shape[1], np.uint32) if lengths is None else lengths
        step = max(group, 128 - 128 % group)
        for first in range(0, count, step):
            last = min(count, first + step)
            if before_flush is not None:
                before_flush(last)
            while self.transport.full_flushes > 0:  # the kernel's queue is full: back off
                self.transport.full_flushes -= 1
                self.send_failures += 1
                limit = self.policy.max_failures
                if limit is not None and self.send_failures > limit:
                    raise RunError(
                        f"sending failed {self.send_failures} times, more than "
                        f"--max-sendto-failures {limit} allows (last: {os.strerror(errno.ENOBUFS)})"
                    )
                if before_flush is not None:
                    before_flush(first)
                self.policy.sleep(0.001)
                if before_flush is not None:
                    before_flush(last)
            chunk = np.ascontiguousarray(frames[first:last])
            self.transport.sent.append((time.monotonic(), chunk))
            self.frames_sent += last - first
            responder = self.transport.responder
            answer = (
                responder(chunk, np.asarray(lengths[first:last], np.uint32)) if responder else None
            )
            if answer is not None:
                self._writer.send(
                    (
                        np.asarray(answer[0], np.uint8),
                        np.asarray(answer[1], np.uint32),
                        time.time_ns(),
                    )
                )
            if self.transport.on_flush is not None:
                self.transport.on_flush(self.frames_sent)
        return int(count)

    def close(self) -> None:
        pass


class _MemoryReceiver:
    def __init__(self, reader: Any, width: int) -> None:
        self.reader = reader
        self.width = width

    def poll(self, timeout_ms: int = 100, max_frames: int = 65536) -> RxBatch:
        batches: list[tuple[NDArray[np.uint8], NDArray[np.uint32], int]] = []
        taken = 0
        if self.reader.poll(timeout_ms / 1000):
            while taken < max_frames and self.reader.poll(0):
                batches.append(self.reader.recv())
                taken += len(batches[-1][1])
        if not batches:
            return _empty_batch(self.width)
        width = max(self.width, *(b[0].shape[1] for b in batches))
        frames = np.concatenate(
            [np.pad(b[0], ((0, 0), (0, width - b[0].shape[1]))) for b in batches]
        )
        lengths = np.concatenate([b[1] for b in batches])
        ts = np.concatenate([np.full(len(b[1]), b[2], np.int64) for b in batches])
        return RxBatch(frames, lengths, ts)

    def stats(self) -> tuple[int, int]:
        return 0, 0

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class PcapTransport:
    """Frames go to ``send_to`` (a pcap file); replies are read from ``replies_from``."""

    send_to: str
    replies_from: str | None = None

    def open_sender(self, policy: SendPolicy) -> Sender:
        return _PcapSender(self.send_to)

    def open_receiver(self) -> Receiver:
        return _PcapReceiver(self.replies_from)


class _PcapSender:
    slots = 16384

    def __init__(self, path: str) -> None:
        from liveness.net.pcap import PcapWriter

        self.writer = PcapWriter(path)
        self.frames_sent = 0
        self.send_failures = 0

    def send(
        self,
        frames: NDArray[np.uint8],
        lengths: NDArray[np.integer[Any]] | None = None,
        *,
        group: int = 1,
        before_flush: Callable[[int], None] | None = None,
    ) -> int:
        if before_flush is not None:
            before_flush(frames.shape[0])
        self.writer.write(frames, lengths, time.time_ns())
        self.frames_sent += frames.shape[0]
        return int(frames.shape[0])

    def close(self) -> None:
        self.writer.close()


class _PcapReceiver:
    def __init__(self, path: str | None) -> None:
        from liveness.net.pcap import PcapReader

        self.batches = iter(PcapReader(path)) if path else iter(())

    def poll(self, timeout_ms: int = 100, max_frames: int = 65536) -> RxBatch:
        batch = next(self.batches, None)
        if batch is None:
            time.sleep(timeout_ms / 1000)
            return _empty_batch(192)
        return RxBatch(batch.frames, batch.lengths, batch.ts_ns)

    def stats(self) -> tuple[int, int]:
        return 0, 0

    def close(self) -> None:
        pass
