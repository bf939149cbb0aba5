"""Keyed stateless validation, as ZMap does it: AES over (source, target, probe).

Each probe sent to a target carries bits of a 128-bit token ``AES_key(src | dst | probe_id | 0)``
(TCP sequence number, source port, ICMP id/seq, DNS id, NTP transmit timestamp). A reply is
genuine when the bits it echoes match the token recomputed from the reply itself, so the scanner
keeps no per-probe state. The attempt number is not in the token: it is added to the source port
(or ICMP sequence), so retransmissions share one token and a reply still tells which
transmission it answers.

A whole batch is encrypted in one AES-ECB call (one block per target).
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
    """Tokens for batches of (source, target, probe id) under one key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_LEN:
            raise ValueError(f"validation key must have {KEY_LEN} bytes, not {len(key)}")
        self._cipher = Cipher(algorithms.AES(key), modes.ECB())

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
