"""The scan context: key derivation from the seed, checks, tokens."""

from __future__ import annotations

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from liveness.errors import InputError
from liveness.probes.context import ScanContext
from liveness.validate import Validator, derive_key

MACS = {"src_mac": b"\x02" * 6, "gw_mac": b"\x04" * 6}


def test_key_comes_from_the_seed() -> None:
    a = ScanContext.from_seed(1, src_ip=1, **MACS)
    assert a.key == ScanContext.from_seed(1, src_ip=2, **MACS).key == derive_key(1)
    assert a.key != ScanContext.from_seed(2, src_ip=1, **MACS).key
    assert len(a.key_hex()) == 32 and bytes.fromhex(a.key_hex()) == a.key
    assert ScanContext.random(src_ip=1, **MACS).seed is not None


def test_tokens_are_aes_of_src_dst_probe() -> None:
    key = derive_key(5)
    dst = np.array([1, 2, 0xFFFFFFFF], dtype=np.uint32)
    tokens = Validator(key).tokens(0xC6120001, dst, 7)
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    for row, d in enumerate(dst):
        block = (
            (0xC6120001).to_bytes(4, "big")
            + int(d).to_bytes(4, "big")
            + (7).to_bytes(4, "big")
            + bytes(4)
        )
        expected = np.frombuffer(encryptor.update(block), dtype="<u4")
        assert tokens[row].tolist() == expected.tolist()
    assert Validator(key).tokens(1, dst[:0], 7).shape == (0, 4)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"key": b"short"}, "16 bytes"),
        ({"src_mac": b"\x01"}, "source MAC"),
        ({"ttl": 0}, "TTL"),
        ({"sport_base": 60000, "sport_count": 10000}, "past 65535"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"src_ip": 2**32}, "not an IPv4"),
    ],
)
def test_bad_contexts(changes: dict[str, object], message: str) -> None:
    fields: dict[str, object] = {"key": bytes(16), "src_ip": 1, **MACS} | changes
    with pytest.raises(InputError, match=message):
        ScanContext(**fields)  # type: ignore[arg-type]
