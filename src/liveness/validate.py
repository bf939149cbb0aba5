"""Keyed stateless validation, as ZMap does it: AES over (source, target, probe).

Each probe sent to a target carries bits of a 128-bit token ``AES_key(src | dst | probe_id | 0)``
(TCP sequence number, source port, ICMP id/seq, DNS id, NTP transmit timestamp). A reply is
genuine when the bits it echoes match the token recomputed from the reply itself, so the scanner
keeps no per-probe state. The attempt number is not in the token: it is added to the source port
(or ICMP sequence), so retransmissions share one token and a reply still tells which
transmission it answers.

A whole batch is encrypted in one AES-ECB call (one block per target).

IPv6 addresses do not fit one block with the probe id, so an IPv6 token is the CBC-MAC of three
blocks, ``E(E(E(src) ^ dst) ^ (probe_id | 0 | 0 | 6))``: ``E(src)`` is computed once per source,
then two ECB calls per batch (the chaining is done with numpy, one chain per target). The ``6``
in the last word keeps the two families' tokens apart. Tokens come out in the same ``(n, 4)``
word layout for both families, so every probe validates IPv6 replies with the code it uses for
IPv4.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from numpy.typing import NDArray

__all__ = ["KEY_LEN", "Validator", "derive_key"]

KEY_LEN = 16
_KEY_LABEL = b"liveness/validation/v1"


def derive_key(seed: int) -> bytes:
    """The 16-byte AES key of a scan seeded with ``seed`` (so ``decode --seed`` recomputes it)."""
    digest = hashlib.sha256(_KEY_LABEL + str(int(seed)).encode("ascii")).digest()
    return digest[:KEY_LEN]


class Validator:
    """Tokens for batches of (source, target, probe id) under one key, for either family."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_LEN:
            raise ValueError(f"validation key must have {KEY_LEN} bytes, not {len(key)}")
        self._cipher = Cipher(algorithms.AES(key), modes.ECB())
        self._first_blocks: dict[bytes, NDArray[np.uint8]] = {}

    def tokens(
        self, src: int, dst: NDArray[np.integer[Any]], probe_id: int | NDArray[np.integer[Any]]
    ) -> NDArray[np.uint32]:
        """Tokens as an ``(n, 4)`` uint32 array (words in little-endian order of the cipher text).

        ``probe_id`` is one id for the whole batch or one per target.
        """
        n = len(dst)
        if n == 0:
            return np.zeros((0, 4), dtype=np.uint32)
        blocks = np.zeros((n, 4), dtype=">u4")
        blocks[:, 0] = src
        blocks[:, 1] = dst
        blocks[:, 2] = probe_id
        # a fresh encryptor and output per call: safe to share one Validator across threads
        out = np.empty(n * 16 + 15, dtype=np.uint8)
        encryptor = self._cipher.encryptor()
        encryptor.update_into(blocks.view(np.uint8).reshape(-1).data, out.data)
        return out[: n * 16].view("<u4").reshape(n, 4).astype(np.uint32)

    def tokens6(
        self,
        src: bytes,
        dst: NDArray[np.uint8],
        probe_id: int | NDArray[np.integer[Any]],
    ) -> NDArray[np.uint32]:
        """IPv6 tokens: ``src`` the 16-byte source, ``dst`` an ``(n, 16)`` uint8 array of
        targets (network byte order); the result as for :meth:`tokens`."""
        return self.tokens6_from_chain(self.chain6(src, dst), probe_id)

    def chain6(self, src: bytes, dst: NDArray[np.uint8]) -> NDArray[np.uint8]:
        """``E(E(src) ^ dst)`` of each target: the part of the IPv6 token every probe of one
        target shares (a batch's frames for nine probes cost one such call, not nine)."""
        if len(src) != 16:
            raise ValueError(f"an IPv6 source has 16 bytes, not {len(src)}")
        n = len(dst)
        if n == 0:
            return np.zeros((0, 16), dtype=np.uint8)
        first = self._source_block(src)
        chained = np.bitwise_xor(np.asarray(dst, dtype=np.uint8).reshape(n, 16), first)
        return self._ecb(chained)

    def tokens6_from_chain(
        self, chain: NDArray[np.uint8], probe_id: int | NDArray[np.integer[Any]]
    ) -> NDArray[np.uint32]:
        """The tokens of targets whose :meth:`chain6` is ``chain``, for ``probe_id``."""
        n = len(chain)
        if n == 0:
            return np.zeros((0, 4), dtype=np.uint32)
        last = np.zeros((n, 4), dtype=">u4")
        last[:, 0] = probe_id
        last[:, 3] = 6
        third = self._ecb(chain ^ last.view(np.uint8).reshape(n, 16))
        return third.view("<u4").reshape(n, 4).astype(np.uint32)

    def _source_block(self, src: bytes) -> NDArray[np.uint8]:
        """``E(src)``, cached: a scan has one IPv6 source."""
        cached = self._first_blocks.get(src)
        if cached is None:
            cached = self._ecb(np.frombuffer(src, dtype=np.uint8).reshape(1, 16))[0]
            self._first_blocks[src] = cached
        return cached

    def _ecb(self, blocks: NDArray[np.uint8]) -> NDArray[np.uint8]:
        """AES of each 16-byte row of ``blocks`` (an ``(n, 16)`` uint8 array)."""
        n = len(blocks)
        data = np.ascontiguousarray(blocks, dtype=np.uint8)
        out = np.empty(n * 16 + 15, dtype=np.uint8)
        encryptor = self._cipher.encryptor()
        encryptor.update_into(data.reshape(-1).data, out.data)
        return out[: n * 16].reshape(n, 16)
