"""The per-scan constants every probe and the reply classifier share.

The validation key is derived from the scan seed (``derive_key``), so ``liveness decode --seed``
recomputes it offline. Source ports are drawn from ``[sport_base, sport_base + sport_count)``;
the default is Linux's ephemeral range 32768-60999 (``net.ipv4.ip_local_port_range``), which a
host's own services do not listen on. The attempt number is added (modulo ``sport_count``) to a
keyed offset in that range, so ``max_attempts`` transmissions per probe are distinguishable.
"""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from liveness.errors import InputError
from liveness.probes.app_profiles import AppLayer
from liveness.validate import KEY_LEN, Validator, derive_key

__all__ = ["ScanContext"]


@dataclass(frozen=True)
class ScanContext:
    """Key, addresses and port range of one scan.

    ``src_ip`` is the IPv4 source (uint32 in host order; 0 when the scan sends no IPv4),
    ``src_ip6`` the 16-byte IPv6 source (None when the scan sends no IPv6), ``gw_mac6`` the
    IPv6 next hop's MAC when it differs from ``gw_mac``. ``app_layer`` holds the
    ``--app-layer`` settings (None: the scan stops at the SYN-ACK).
    """

    key: bytes
    src_ip: int
    src_mac: bytes
    gw_mac: bytes
    vp: str = ""
    ttl: int = 64
    sport_base: int = 32768
    sport_count: int = 28232
    max_attempts: int = 2
    seed: int | None = field(default=None, compare=False)
    src_ip6: bytes | None = None
    gw_mac6: bytes | None = None
    app_layer: AppLayer | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if len(self.key) != KEY_LEN:
            raise InputError(f"validation key must have {KEY_LEN} bytes, not {len(self.key)}")
        if not 0 <= self.src_ip < 2**32:
            raise InputError(f"source address {self.src_ip} is not an IPv4 address")
        if self.src_ip6 is not None and len(self.src_ip6) != 16:
            raise InputError(f"IPv6 source address must have 16 bytes, not {len(self.src_ip6)}")
        macs = [("source MAC", self.src_mac), ("gateway MAC", self.gw_mac)]
        if self.gw_mac6 is not None:
            macs.append(("IPv6 gateway MAC", self.gw_mac6))
        for name, mac in macs:
            if len(mac) != 6:
                raise InputError(f"{name} must have 6 bytes, not {len(mac)}")
        if not 1 <= self.ttl <= 255:
            raise InputError(f"TTL {self.ttl} must be 1..255")
        if not (self.sport_base >= 1 and self.sport_count >= 1):
            raise InputError("source port range must be non-empty and above port 0")
        if self.sport_base + self.sport_count > 65536:
            raise InputError(f"source ports {self.sport_base}+{self.sport_count} run past 65535")
        if not 1 <= self.max_attempts <= min(255, self.sport_count):
            raise InputError(
                f"max_attempts {self.max_attempts} must be 1..255 and at most the number of "
                f"source ports ({self.sport_count}): the attempt is in the source port"
            )

    @classmethod
    def from_seed(cls, seed: int, **kw: Any) -> ScanContext:
        """A context whose key is derived from ``seed`` (``kw``: the other fields)."""
        return cls(key=derive_key(seed), seed=seed, **kw)

    @classmethod
    def random(cls, **kw: Any) -> ScanContext:
        """A context with a fresh random seed (recorded in ``seed`` for the metadata)."""
        return cls.from_seed(secrets.randbits(63), **kw)

    def key_hex(self) -> str:
        """The key as hex, for the scan metadata and ``decode --key``."""
        return self.key.hex()

    @property
    def src_ip_text(self) -> str:
        """The source address in dotted form."""
        return str(ipaddress.IPv4Address(self.src_ip))

    @property
    def src_ip6_text(self) -> str:
        """The IPv6 source address as text ("" when the scan has none)."""
        return str(ipaddress.IPv6Address(self.src_ip6)) if self.src_ip6 is not None else ""

    @property
    def next_hop_mac6(self) -> bytes:
        """The MAC IPv6 frames go to."""
        return self.gw_mac6 if self.gw_mac6 is not None else self.gw_mac

    @cached_property
    def validator(self) -> Validator:
        """The AES token maker for this key (one encryptor, reused across batches)."""
        return Validator(self.key)
