"""What the monitor probes through: the ``Prober`` interface and an in-process responder model.

A prober answers a whole batch at once: one address per undecided block, a boolean per address
(a positive reply within the round's timeout). The live packet path (the scan engine sending
ICMP echo from a VP) and the testbed plug in behind the same interface through
:func:`make_prober`; :class:`ModelProber` answers from a per-block (optionally per-address)
response probability with blocks that can be switched down and up, deterministically from a
seed, for tests and the benchmark.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from liveness.errors import InputError

__all__ = ["PROBER_KINDS", "ModelProber", "Prober", "make_prober"]

_BLOCK_MASK = np.uint32(0xFFFFFF00)


@runtime_checkable
class Prober(Protocol):
    """Sends one probe to each address of a batch and says which were answered."""

    def probe(self, addresses: NDArray[Any]) -> NDArray[np.bool_]:
        """One bool per address, in order: True when the address replied. IPv4 addresses
        are uint32 (host order), IPv6 ones ``(n, 16)`` uint8 (network order)."""
        ...


class ModelProber:
    """An in-process Internet: each address answers with a probability, unless its block is down.

    ``blocks``: /24 base addresses; ``availability``: per block, the probability that a probe
    to any of its addresses is answered (one number for all). ``addresses`` and
    ``address_availability`` optionally override it for single addresses. Addresses outside
    ``blocks`` never answer. The same seed and calls give the same answers. With
    ``prefix6=L`` the model is of IPv6 /L blocks: ``blocks`` are the upper 64 bits of their
    networks (as :class:`~liveness.monitor.census.Census6` holds them), probes are
    ``(n, 16)`` addresses, and per-address overrides are not offered.
    """

    def __init__(
        self,
        blocks: ArrayLike,
        availability: ArrayLike,
        *,
        seed: int = 0,
        addresses: ArrayLike | None = None,
        address_availability: ArrayLike | None = None,
        prefix6: int | None = None,
    ) -> None:
        self._prefix6 = prefix6
        if prefix6 is not None:
            from liveness.monitor.census import prefix_mask

            if addresses is not None:
                raise InputError("ModelProber: per-address overrides are IPv4 only")
            self._mask6 = prefix_mask(prefix6)
            bases: NDArray[Any] = np.asarray(blocks, dtype=np.uint64) & self._mask6
        else:
            bases = np.asarray(blocks, dtype=np.uint32) & _BLOCK_MASK
        chance = np.broadcast_to(np.asarray(availability, dtype=np.float64), bases.shape)
        order = np.argsort(bases, kind="stable")
        self._blocks = bases[order]
        self._chance = np.ascontiguousarray(chance[order])
        self._up = np.ones(self._blocks.size, dtype=bool)
        self._rng = np.random.default_rng(seed)
        self._addresses = np.empty(0, dtype=np.uint32)
        self._address_chance = np.empty(0, dtype=np.float64)
        if addresses is not None:
            if address_availability is None:
                raise InputError("ModelProber: addresses given without address_availability")
            points = np.asarray(addresses, dtype=np.uint32)
            values = np.broadcast_to(np.asarray(address_availability, np.float64), points.shape)
            point_order = np.argsort(points, kind="stable")
            self._addresses = points[point_order]
            self._address_chance = np.ascontiguousarray(values[point_order])
        self.probes_sent = 0

    def _keys(self, values: ArrayLike) -> NDArray[Any]:
        """Block keys: /24 bases, or for IPv6 the masked upper 64 bits (of block keys given
        as uint64, or of ``(n, 16)`` addresses)."""
        if self._prefix6 is None:
            four: NDArray[np.uint32] = np.atleast_1d(np.asarray(values, dtype=np.uint32))
            return four & _BLOCK_MASK
        array = np.asarray(values)
        if array.dtype == np.uint8 and array.ndim == 2:
            high = np.ascontiguousarray(array).view(">u8")[:, 0].astype(np.uint64)
        else:
            high = np.atleast_1d(array.astype(np.uint64))
        return high & self._mask6

    def _block_rows(self, addresses: ArrayLike) -> tuple[NDArray[np.intp], NDArray[np.bool_]]:
        bases = self._keys(addresses)
        rows = np.searchsorted(self._blocks, bases)
        rows = np.minimum(rows, max(self._blocks.size - 1, 0))
        known = (self._blocks[rows] == bases) if self._blocks.size else np.zeros(bases.size, bool)
        return rows, known

    def set_up(self, blocks: ArrayLike, up: bool) -> None:
        """Switch the given /24 blocks (base addresses) up or down."""
        rows, known = self._block_rows(blocks)
        if not known.all():
            raise InputError("ModelProber.set_up: block not in the model")
        self._up[rows] = up

    def is_up(self, blocks: ArrayLike) -> NDArray[np.bool_]:
        """Whether each given /24 block is up in the model."""
        rows, known = self._block_rows(blocks)
        return self._up[rows] & known

    def probe(self, addresses: NDArray[Any]) -> NDArray[np.bool_]:
        """Answer a batch: up block and a draw below the address' response probability."""
        targets: NDArray[Any]
        if self._prefix6 is None:
            targets = np.asarray(addresses, dtype=np.uint32)
        else:
            targets = np.asarray(addresses, dtype=np.uint8).reshape(-1, 16)
        count = targets.shape[0]
        self.probes_sent += count
        if not self._blocks.size:
            return np.zeros(count, dtype=bool)
        rows, known = self._block_rows(targets)
        chance = self._chance[rows]
        if self._addresses.size:
            spots = np.minimum(np.searchsorted(self._addresses, targets), self._addresses.size - 1)
            listed = self._addresses[spots] == targets
            chance = np.where(listed, self._address_chance[spots], chance)
        draws = self._rng.random(count)
        answered: NDArray[np.bool_] = known & self._up[rows] & (draws < chance)
        return answered


PROBER_KINDS: tuple[str, ...] = ("model", "live")


def make_prober(kind: str, **options: Any) -> Prober:
    """The prober named ``kind``, built from ``options``: the hook for live and testbed probing.

    ``model``: :class:`ModelProber` (options: ``blocks``, ``availability``, ``seed``, ...).
    ``live``: :class:`~liveness.monitor.live.LiveProber`, ICMP echo from this host (or
    namespace) through the scan engine (options: ``interface``, ``source_ip``,
    ``gateway_mac``, ``timeout_s``, ...; ``source_ip`` an IPv6 address: ICMPv6 echo).
    """
    if kind == "model":
        return ModelProber(**options)
    if kind == "live":
        from liveness.monitor.live import LiveProber  # opens sockets: load only when asked

        return LiveProber(**options)
    raise InputError(
        f"prober {kind!r} is not available yet (known: {', '.join(PROBER_KINDS)}); use --model"
    )
