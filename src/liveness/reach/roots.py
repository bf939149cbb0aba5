"""The 13 DNS root letters: their addresses and RIPE Atlas built-in measurement ids.

An Atlas result names its root letter either through a built-in measurement id or through its
destination address. Built-in ids are ``prefix * 100 + offset``: the prefix gives the address
family and transport (100 IPv4 UDP, 101 IPv4 TCP, 110 IPv6 UDP, 111 IPv6 TCP), the offset the
letter (K 01, F 04, I 05, M 06, L 08, A 09, B 10, C 11, D 12, E 13, G 14, H 15, J 16); so
10001 is K-root over IPv4 UDP. Addresses include the letters' former addresses (B, D, H and L
renumbered) so that old results still resolve. A letter is named ``k.root``.
"""

from __future__ import annotations

import ipaddress
from typing import NamedTuple

__all__ = [
    "LETTERS",
    "ROOT_ADDRESSES",
    "BuiltinMeasurement",
    "builtin_measurement",
    "letter_from_address",
    "root_target",
]

LETTERS: tuple[str, ...] = tuple("abcdefghijklm")

# letter -> (IPv4 addresses, IPv6 addresses); the first of each is the current one.
ROOT_ADDRESSES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "a": (("198.41.0.4",), ("2001:503:ba3e::2:30",)),
    "b": (
        ("170.247.170.2", "199.9.14.201", "192.228.79.201"),
        ("2801:1b8:10::b", "2001:500:200::b", "2001:500:84::b"),
    ),
    "c": (("192.33.4.12",), ("2001:500:2::c",)),
    "d": (("199.7.91.13", "128.8.10.90"), ("2001:500:2d::d",)),
    "e": (("192.203.230.10",), ("2001:500:a8::e",)),
    "f": (("192.5.5.241",), ("2001:500:2f::f",)),
    "g": (("192.112.36.4",), ("2001:500:12::d0d",)),
    "h": (("198.97.190.53", "128.63.2.53"), ("2001:500:1::53", "2001:500:1::803f:235")),
    "i": (("192.36.148.17",), ("2001:7fe::53",)),
    "j": (("192.58.128.30",), ("2001:503:c27::2:30",)),
    "k": (("193.0.14.129",), ("2001:7fd::1",)),
    "l": (("199.7.83.42", "198.32.64.12"), ("2001:500:9f::42", "2001:500:3::42")),
    "m": (("202.12.27.33",), ("2001:dc3::35",)),
}

_OFFSETS: dict[int, str] = {
    1: "k",
    4: "f",
    5: "i",
    6: "m",
    8: "l",
    9: "a",
    10: "b",
    11: "c",
    12: "d",
    13: "e",
    14: "g",
    15: "h",
    16: "j",
}

# msm-id prefix -> (address family, transport)
_PREFIXES: dict[int, tuple[int, str]] = {
    100: (4, "UDP"),
    101: (4, "TCP"),
    110: (6, "UDP"),
    111: (6, "TCP"),
}

_BY_ADDRESS: dict[str, str] = {
    str(ipaddress.ip_address(address)): letter
    for letter, (v4, v6) in ROOT_ADDRESSES.items()
    for address in (*v4, *v6)
}


class BuiltinMeasurement(NamedTuple):
    """What a built-in Atlas measurement id says: the letter, address family and transport."""

    letter: str
    af: int
    proto: str


def builtin_measurement(msm_id: int) -> BuiltinMeasurement | None:
    """The root letter, family and transport of a built-in measurement id, or None."""
    prefix, offset = divmod(msm_id, 100)
    if prefix not in _PREFIXES or offset not in _OFFSETS:
        return None
    af, proto = _PREFIXES[prefix]
    return BuiltinMeasurement(_OFFSETS[offset], af, proto)


def letter_from_address(address: str) -> str | None:
    """The root letter served at ``address`` (IPv4 or IPv6, any spelling), or None."""
    try:
        canonical = str(ipaddress.ip_address(address.strip()))
    except ValueError:
        return None
    return _BY_ADDRESS.get(canonical)


def root_target(letter: str) -> str:
    """The observation target naming a root letter: ``k`` -> ``k.root``."""
    return f"{letter}.root"
