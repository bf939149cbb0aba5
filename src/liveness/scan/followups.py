"""``--app-layer`` in the receiver: answer every SYN-ACK with the port's payload, close each
connection with one RST after its answer or a timeout.

Stateless as the rest of the scan: what a follow-up needs comes from the SYN-ACK (see
:mod:`liveness.probes.tcp_followup`), and what comes back is validated by the classifier from
the key alone. The one thing kept is *when to close*: a queue of the connections opened in the
last ``--app-timeout`` seconds, in the order they were opened (numpy columns, appended and cut
from the front), so its size is bounded by the SYN-ACK rate times the timeout, never by the
scan's size. A connection is closed once: at its first answer (data, or a RST from the host) or
when its time is up, and at the end of the scan every connection still open is closed.

Every packet sent here is counted in ``sent`` (the receiver shares it with the sender, whose
pacer subtracts it from its own allowance, so probes and follow-ups together keep to ``-r``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from liveness.output.schema import REPLY_CATEGORIES
from liveness.probes.app_profiles import AppLayer
from liveness.probes.context import ScanContext
from liveness.probes.tcp_followup import ACK, PSH_ACK, RST, Segments, profile_payloads, tcp_frames

__all__ = ["FollowUps"]

_SYNACK = REPLY_CATEGORIES.index("synack")
_CLOSING = np.array([REPLY_CATEGORIES.index(c) for c in ("app_data", "app_rst")], np.int64)
_MIX = np.uint64(0x9E3779B97F4A7C15)


def connection_keys(
    replies: dict[str, NDArray[Any]], rows: NDArray[np.int64]
) -> NDArray[np.uint64]:
    """A 64-bit key per connection (target, their port, our port): exact for IPv4, a mix of
    the address words for IPv6 (two connections share one with probability ~2^-64)."""
    ports = (replies["sport"][rows].astype(np.uint64) << np.uint64(16)) | replies["dport"][
        rows
    ].astype(np.uint64)
    keys = (replies["target"][rows].astype(np.uint64) << np.uint64(32)) | ports
    if "af" in replies:
        six = replies["af"][rows] == 6
        if six.any():
            words = np.ascontiguousarray(replies["target6"][rows[six]], np.uint8).view(">u8")
            with np.errstate(over="ignore"):
                mixed = (words[:, 0].astype(np.uint64) * _MIX) ^ words[:, 1].astype(np.uint64)
                mixed = (mixed * _MIX) ^ ports[six]
            keys[six] = mixed | np.uint64(1 << 63)
    return keys


class _Queue:
    """The open connections, oldest first, as columns in arrays that grow by doubling (an
    append costs its own rows, not the queue's length); :meth:`live` views the queued rows."""

    _SPEC: ClassVar[dict[str, tuple[Any, tuple[int, ...]]]] = {
        "key": (np.uint64, ()),
        "deadline": (np.float64, ()),
        "af": (np.uint8, ()),
        "target": (np.uint32, ()),
        "target6": (np.uint8, (16,)),
        "our_port": (np.uint16, ()),
        "their_port": (np.uint16, ()),
        "close_seq": (np.uint32, ()),
        "open": (np.bool_, ()),
    }

    def __init__(self) -> None:
        self.head = 0
        self.tail = 0
        self._arrays = {
            name: np.zeros((0, *shape), dtype) for name, (dtype, shape) in self._SPEC.items()
        }

    def __len__(self) -> int:
        return self.tail - self.head

    def live(self, name: str) -> NDArray[Any]:
        """The queued rows of one column (a view: writes go to the queue)."""
        return self._arrays[name][self.head : self.tail]

    def append(self, **new: NDArray[Any]) -> None:
        n = len(new["key"])
        if self.tail + n > len(self._arrays["key"]):
            size = len(self)
            capacity = max(1024, 2 * (size + n))
            for name, (dtype, shape) in self._SPEC.items():
                grown = np.zeros((capacity, *shape), dtype)
                grown[:size] = self._arrays[name][self.head : self.tail]
                self._arrays[name] = grown
            self.head, self.tail = 0, size
        for name, values in new.items():
            self._arrays[name][self.tail : self.tail + n] = values
        self.tail += n

    def trim(self) -> None:
        """Drop the closed connections at the front (they are closed for good)."""
        still = self.live("open")
        self.head += int(np.argmax(still)) if still.any() else len(self)


class FollowUps:
    """Sends the follow-ups of one scan through ``send(frames, lengths)``."""

    def __init__(
        self,
        ctx: ScanContext,
        send: Callable[[NDArray[np.uint8], NDArray[np.uint32]], Any],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        assert ctx.app_layer is not None
        self.ctx = ctx
        self.app: AppLayer = ctx.app_layer
        self._send = send
        self.clock = clock
        self.queue = _Queue()
        self.sent = 0
        self.stats = {"acks_sent": 0, "rsts_sent": 0, "answered": 0, "timed_out": 0}
        self.first_at: float | None = None
        self.last_at: float | None = None
        self.sender: Any = None  # the receiver's sender, closed with the engine

    # -- the receiver's calls ----------------------------------------------------------------

    def handle(self, replies: dict[str, NDArray[Any]]) -> None:
        """Follow up the batch's SYN-ACKs; close the connections the batch answered."""
        now = self.clock()
        reply = replies["reply"]
        answered = np.flatnonzero(np.isin(reply, _CLOSING))
        if answered.size and len(self.queue):
            keys = connection_keys(replies, answered)
            self.stats["answered"] += self._close(np.isin(self.queue.live("key"), keys))
        synacks = np.flatnonzero(reply == _SYNACK)
        if synacks.size:
            self._open(replies, synacks, now)

    def expire(self) -> None:
        """Close the connections whose time is up."""
        if len(self.queue):
            due = self.queue.live("open") & (self.queue.live("deadline") <= self.clock())
            self.stats["timed_out"] += self._close(due)

    def close_all(self) -> None:
        """Close every connection still open (the scan ends)."""
        if len(self.queue):
            self.stats["timed_out"] += self._close(self.queue.live("open").copy())

    def summary(self) -> dict[str, Any]:
        """What was sent, for the scan's metadata (``followups_per_s`` over the time spent)."""
        span = (self.last_at or 0.0) - (self.first_at or 0.0)
        rate = self.stats["acks_sent"] / span if span > 0 else 0.0
        return {**self.stats, "followups_per_s": round(rate, 1)}

    # -- the work ----------------------------------------------------------------------------

    def _open(self, replies: dict[str, NDArray[Any]], rows: NDArray[np.int64], now: float) -> None:
        af = replies["af"][rows] if "af" in replies else np.full(rows.size, 4, np.int64)
        for family in (4, 6):
            mine = rows[af == family]
            if mine.size == 0:
                continue
            targets = replies["target6"][mine] if family == 6 else replies["target"][mine]
            their_port = replies["sport"][mine]
            our_seq = replies["tcp_ack"][mine].astype(np.uint64)
            payload, length = profile_payloads(self.app, targets, their_port)
            flags = np.where(length > 0, PSH_ACK, ACK)
            segments = Segments(
                targets,
                replies["dport"][mine],
                their_port,
                our_seq,
                replies["tcp_seq"][mine].astype(np.uint64) + 1,
                flags,
            )
            self._emit(*tcp_frames(self.ctx, segments, payload, length))
            self.stats["acks_sent"] += int(mine.size)
            n = mine.size
            self.queue.append(
                key=connection_keys(replies, mine),
                deadline=np.full(n, now + self.app.timeout_s),
                af=np.full(n, family, np.uint8),
                target=np.zeros(n, np.uint32) if family == 6 else targets.astype(np.uint32),
                target6=targets.astype(np.uint8) if family == 6 else np.zeros((n, 16), np.uint8),
                our_port=replies["dport"][mine].astype(np.uint16),
                their_port=their_port.astype(np.uint16),
                close_seq=((our_seq + length.astype(np.uint64)) & np.uint64(0xFFFFFFFF)).astype(
                    np.uint32
                ),
                open=np.ones(n, bool),
            )
        self.first_at = self.first_at if self.first_at is not None else now
        self.last_at = now

    def _close(self, which: NDArray[np.bool_]) -> int:
        """Send one RST for each open connection ``which`` marks, and mark it closed; returns
        how many were closed."""
        columns = {
            name: self.queue.live(name)
            for name in ("open", "af", "target", "target6", "our_port", "their_port", "close_seq")
        }
        rows = np.flatnonzero(which & columns["open"])
        if rows.size:
            columns["open"][rows] = False
            for family in (4, 6):
                mine = rows[columns["af"][rows] == family]
                if mine.size == 0:
                    continue
                targets = columns["target6"][mine] if family == 6 else columns["target"][mine]
                segments = Segments(
                    targets,
                    columns["our_port"][mine],
                    columns["their_port"][mine],
                    columns["close_seq"][mine],
                    np.zeros(mine.size, np.uint32),
                    RST,
                )
                self._emit(*tcp_frames(self.ctx, segments))
                self.stats["rsts_sent"] += int(mine.size)
        self.queue.trim()
        return int(rows.size)

    def _emit(self, frames: NDArray[np.uint8], lengths: NDArray[np.uint32]) -> None:
        self._send(frames, lengths)
        self.sent += int(frames.shape[0])
