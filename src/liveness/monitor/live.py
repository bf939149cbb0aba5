"""The live prober: one ICMP echo per address through the scan engine and the AF_PACKET rings.

One prober speaks one family: given an IPv4 ``source_ip`` it sends ICMP echo to uint32
addresses; given an IPv6 one, ICMPv6 echo (type 128, answered by 129) to ``(n, 16)``
addresses, built, validated and classified by the same probe module (``icmp_echo``) as
``liveness scan`` does for IPv6 targets.

A :class:`LiveProber` answers the monitor's batches on the wire: it builds the echo requests
with the scan engine (``icmp_echo``, validation tokens keyed by a seed), sends the batch through
a :class:`~liveness.net.afpacket.RingSender` (paced at ``rate_pps`` by the scanner's own
:class:`~liveness.scan.pacing.Pacer`, so a step over many blocks is not one burst and an idle
gap between steps is never paid back as one), reading the receive ring while it waits, then
reads it until every address has answered or ``timeout_s`` has passed since the last probe
left. A probe is positive when a
*valid* echo reply (the classifier checks our token) comes back from the probed address itself
(``responder == target``), the taxonomy's network-layer alive; errors from routers and replies
from other addresses are negative. Replies left over from an earlier batch are drained before
each send; a reply that arrives later still (after ``timeout_s``) can be taken for an answer
to the next probe of the same address, as the validation token depends on the address only.

It opens AF_PACKET sockets on ``interface`` of the network namespace it runs in (root, or
CAP_NET_RAW), so it works from inside a testbed VP (``ip netns exec``). The caller decides
where it may send: :func:`check_monitor_targets` refuses reserved IPv4 ranges, and every IPv6
block outside the benchmarking prefix 2001:2::/48 (the testbed's; the monitor sends IPv6
nowhere else).
"""

from __future__ import annotations

import ipaddress
import time
from types import TracebackType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from liveness.errors import InputError
from liveness.net.afpacket import RingReceiver, RingSender, interface_mac
from liveness.output.schema import REPLY_CATEGORIES
from liveness.probes import ReplyClassifier, parse_probes
from liveness.probes.classify import Replies
from liveness.probes.context import ScanContext
from liveness.safety import BENCHMARK_NET, BENCHMARK_NET6
from liveness.scan.pacing import Pacer
from liveness.targets.blocklist import default_blocklist

__all__ = ["LiveProber", "check_monitor_targets"]

ECHO_REPLY = REPLY_CATEGORIES.index("echo_reply")
_DRAIN_LIMIT = 64
_MAX_SLICE = 4096  # frames per send at most; the ring is read between slices
_RX_SLOTS = 1 << 15  # read between slices, so it holds at most a few slices of replies


def check_monitor_targets(blocks: NDArray[Any], where: str, *, prefix6: int | None = None) -> None:
    """Refuse /24 blocks inside the default blocklist (IANA special-purpose ranges, multicast,
    reserved), except the benchmarking range 198.18.0.0/15 that the testbed uses. With
    ``prefix6``, ``blocks`` are IPv6 /prefix6 blocks (upper 64 bits): every one must lie
    inside 2001:2::/48."""
    if prefix6 is not None:
        _check_ipv6_blocks(np.asarray(blocks, dtype=np.uint64), prefix6, where)
        return
    bench_lo = int(BENCHMARK_NET.network_address)
    bench_hi = bench_lo + BENCHMARK_NET.num_addresses
    wide = np.asarray(blocks, dtype=np.int64)
    outside_bench = (wide < bench_lo) | (wide >= bench_hi)
    for entry in default_blocklist():
        if entry.start <= bench_lo and bench_hi <= entry.end:
            continue  # the entry is the benchmarking range itself (or holds it)
        hit = outside_bench & (wide + 256 > entry.start) & (wide < entry.end)
        if hit.any():
            first = ipaddress.IPv4Address(int(wide[np.argmax(hit)]))
            raise InputError(
                f"{where}: block {first}/24 lies in the blocklisted {entry.cidr} ({entry.name})"
            )


def _check_ipv6_blocks(blocks: NDArray[np.uint64], prefix6: int, where: str) -> None:
    """Every /prefix6 block inside BENCHMARK_NET6, or one line naming the first that is not."""
    bench_len = BENCHMARK_NET6.prefixlen
    bench_high = np.uint64(int(BENCHMARK_NET6.network_address) >> 64)
    shift = np.uint64(64 - bench_len)
    outside = (blocks >> shift) != (bench_high >> shift)
    if prefix6 < bench_len and blocks.size:
        outside[:] = True
    if outside.any():
        first = int(blocks[np.argmax(outside)]) << 64
        raise InputError(
            f"{where}: block {ipaddress.IPv6Address(first)}/{prefix6} is not inside "
            f"{BENCHMARK_NET6}: the monitor sends IPv6 only to the benchmarking prefix"
        )


class LiveProber:
    """ICMP echo probing of address batches from this host (or namespace), through the rings.

    ``interface``, ``source_ip`` and ``gateway_mac`` say where to send from (as ``liveness
    scan`` ``-i``/``-S``/``-G``); ``source_mac`` defaults to the interface's. ``timeout_s``:
    how long a batch waits for replies. ``seed`` keys the validation tokens. Counters:
    ``probes_sent``, ``replies`` (positive probes), ``late_frames`` (drained before a send).
    An IPv6 ``source_ip`` makes it an ICMPv6 prober (``af`` 6) of ``(n, 16)`` addresses.
    """

    def __init__(
        self,
        *,
        interface: str,
        source_ip: str | int,
        gateway_mac: bytes | str,
        source_mac: bytes | str | None = None,
        timeout_s: float = 0.5,
        rate_pps: float | None = 10_000.0,
        seed: int = 0,
        vp: str = "",
    ) -> None:
        if not 0.0 < timeout_s <= 60.0:
            raise InputError(f"--timeout: {timeout_s} s must be in (0, 60]")
        if rate_pps is not None and rate_pps < 0:
            raise InputError(f"-r/--rate: {rate_pps} must be >= 0 (0: unpaced)")
        try:
            source = ipaddress.ip_address(source_ip)
        except ValueError:
            raise InputError(f"-S/--source-ip: {source_ip!r} is not an IP address") from None
        self.af = source.version
        src = int(source) if self.af == 4 else 0
        src6 = source.packed if self.af == 6 else None
        own_mac = interface_mac(interface) if source_mac is None else _mac(source_mac)
        self.context = ScanContext.from_seed(
            seed,
            src_ip=src,
            src_ip6=src6,
            src_mac=own_mac,
            gw_mac=_mac(gateway_mac),
            vp=vp,
            max_attempts=1,
        )
        self._probes = parse_probes("icmp_echo")
        self._classifier = ReplyClassifier(self.context, self._probes)
        self.timeout_s = timeout_s
        # While the pacer waits, replies are read (into the batch under way, see probe()).
        self._pacer = Pacer(rate_pps or None, max_batch=_MAX_SLICE, sleep=self._receive_for)
        self._distinct: NDArray[Any] = np.empty(0, dtype=np.uint32)
        self._seen = np.zeros(0, dtype=bool)
        self._sender = RingSender(interface)
        try:
            self._receiver = RingReceiver(interface, src, slots=_RX_SLOTS, dst_addr6=src6)
        except BaseException:
            self._sender.close()
            raise
        self.probes_sent = 0
        self.replies = 0
        self.late_frames = 0

    def _drain(self) -> None:
        """Throw away frames already in the receive ring (late replies to earlier batches)."""
        for _ in range(_DRAIN_LIMIT):
            stale = self._receiver.poll(0)
            if not stale.lengths.size:
                return
            self.late_frames += int(stale.lengths.size)

    def probe(self, addresses: NDArray[Any]) -> NDArray[np.bool_]:
        """Echo each address once; True where a valid echo reply came from that address."""
        if self.af == 6:
            targets = np.ascontiguousarray(addresses, dtype=np.uint8).reshape(-1, 16)
            keys: NDArray[Any] = targets.view("V16").ravel()  # bytewise order: address order
        else:
            targets = np.asarray(addresses, dtype=np.uint32)
            keys = targets
        answered = np.zeros(keys.size, dtype=bool)
        if not keys.size:
            return answered
        order = np.argsort(keys, kind="stable")
        ranked = keys[order]
        distinct = np.unique(ranked)
        seen = np.zeros(distinct.size, dtype=bool)
        self._distinct, self._seen = distinct, seen
        self._drain()
        if self.af == 6:
            frames = self._probes[0].build6(self.context, targets)
        else:
            frames = self._probes[0].build(self.context, np.asarray(targets, dtype=np.uint32))
        first = 0
        while first < frames.shape[0]:
            # The pacer reads replies while it waits, so the receive ring never holds more than
            # a slice's worth of a long batch; unpaced, it is read between slices.
            count = min(self._pacer.grant(), frames.shape[0] - first)
            self._sender.send(frames[first : first + count])
            self._pacer.record(count)
            first += count
            if self._pacer.rate is None:
                self._receive_until(0.0, distinct, seen)
        self.probes_sent += int(keys.size)
        self._receive_until(time.monotonic() + self.timeout_s, distinct, seen)
        spots = np.searchsorted(distinct, ranked)
        answered[order] = seen[spots]
        self.replies += int(answered.sum())
        return answered

    def _receive_for(self, seconds: float) -> None:
        """The pacer's wait: read replies for the batch under way meanwhile."""
        deadline = time.monotonic() + seconds
        self._receive_until(deadline, self._distinct, self._seen)
        left = deadline - time.monotonic()
        if left > 0:  # every address has answered: wait out the rest
            time.sleep(left)

    def _receive_until(
        self, deadline: float, distinct: NDArray[Any], seen: NDArray[np.bool_]
    ) -> None:
        """Mark in ``seen`` the addresses of ``distinct`` whose echo replies arrive before
        ``deadline`` (monotonic seconds); returns early once all of them have answered."""
        while not seen.all():
            remaining_ms = int((deadline - time.monotonic()) * 1000.0)
            batch = self._receiver.poll(max(0, remaining_ms))
            if batch.lengths.size:
                replies = self._classifier.classify_columns(
                    batch.frames, batch.lengths, batch.ts_ns
                )
                hit = _echoed_targets6(replies) if self.af == 6 else _echoed_targets(replies)
                spots = np.minimum(np.searchsorted(distinct, hit), distinct.size - 1)
                seen[spots[distinct[spots] == hit]] = True
            elif remaining_ms <= 0:
                return

    def close(self) -> None:
        """Release both rings."""
        self._sender.close()
        self._receiver.close()

    def __enter__(self) -> LiveProber:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _echoed_targets(replies: Replies) -> NDArray[np.uint32]:
    """Targets of the echo replies that came from the target itself."""
    target = replies["target"]
    echoed = (replies["reply"] == ECHO_REPLY) & (target == replies["responder"])
    found: NDArray[np.uint32] = target[echoed].astype(np.uint32)
    return found


def _echoed_targets6(replies: Replies) -> NDArray[Any]:
    """IPv6 targets (as 16-byte keys) of the ICMPv6 echo replies that came from the target."""
    if "target6" not in replies or not replies["target6"].shape[0]:
        return np.empty(0, dtype="V16")
    target = np.ascontiguousarray(replies["target6"], dtype=np.uint8).reshape(-1, 16)
    responder = np.ascontiguousarray(replies["responder6"], dtype=np.uint8).reshape(-1, 16)
    echoed = (
        (replies["af"] == 6) & (replies["reply"] == ECHO_REPLY) & (target == responder).all(axis=1)
    )
    found: NDArray[Any] = np.ascontiguousarray(target[echoed]).view("V16").ravel()
    return found


def _mac(value: bytes | str) -> bytes:
    if isinstance(value, bytes):
        if len(value) != 6:
            raise InputError(f"-G/--gateway-mac: {value.hex(':')} is not 6 bytes")
        return value
    from liveness.net.route import parse_mac

    return parse_mac(value)
