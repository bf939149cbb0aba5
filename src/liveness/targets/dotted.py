"""Vectorised parsing of canonical dotted quads (``a.b.c.d`` or ``a.b.c.d/p``) in bulk.

A list of millions of addresses (``-I``) would take seconds per million through
:mod:`ipaddress`. Here the entries become a fixed-width byte matrix and a small state machine
runs column by column over all rows at once. Only the canonical form is accepted (decimal
octets <= 255 without leading zeros, prefix 0-32 without leading zeros, no host bits set);
every other row is reported as not parsed, for the caller's slow path to accept (other
notations) or word the error.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

__all__ = ["parse_dotted"]

WIDTH = len("255.255.255.255/32")
_ZERO, _NINE, _DOT, _SLASH = ord("0"), ord("9"), ord("."), ord("/")
_PREFIX_FIELD = 4  # fields 0-3 are octets, field 4 the prefix length


def parse_dotted(entries: Sequence[str]) -> tuple[NDArray[np.uint64], NDArray[np.bool_]]:
    """Parse stripped entries: ``(k, 2)`` uint64 ``[start, end)`` rows, and which rows parsed.

    Rows that did not parse hold zeros; the caller handles them one by one.
    """
    count = len(entries)
    rows = np.zeros((count, 2), dtype=np.uint64)
    if count == 0:
        return rows, np.zeros(0, dtype=np.bool_)
    try:
        # One extra column: an entry longer than WIDTH leaves a non-NUL byte there.
        matrix = np.array(entries, dtype=f"S{WIDTH + 1}").view(np.uint8).reshape(count, WIDTH + 1)
    except UnicodeEncodeError:
        return rows, np.zeros(count, dtype=np.bool_)

    value = np.zeros(count, dtype=np.uint64)  # the field being read
    digits = np.zeros(count, dtype=np.uint8)  # its number of digits so far
    field = np.zeros(count, dtype=np.uint8)  # which field is being read
    address = np.zeros(count, dtype=np.uint64)
    prefix = np.full(count, 32, dtype=np.uint64)
    bad = np.zeros(count, dtype=np.bool_)
    done = np.zeros(count, dtype=np.bool_)
    for column in np.ascontiguousarray(matrix.T):
        active = ~done
        is_digit = (column >= _ZERO) & (column <= _NINE) & active
        is_dot = (column == _DOT) & active
        is_slash = (column == _SLASH) & active
        is_end = (column == 0) & active
        bad |= active & ~(is_digit | is_dot | is_slash | is_end)

        bad |= is_digit & (digits >= 1) & (value == 0)  # leading zero
        value = np.where(is_digit, value * np.uint64(10) + (column - _ZERO), value)
        digits += is_digit
        bad |= digits > 3

        closes = is_dot | is_slash | is_end
        bad |= closes & (digits == 0)
        octet = closes & (field < _PREFIX_FIELD)
        bad |= octet & (value > 255)
        address = np.where(octet, (address << np.uint64(8)) | value, address)
        prefix = np.where(closes & (field == _PREFIX_FIELD), value, prefix)
        bad |= is_dot & (field >= 3)
        bad |= is_slash & (field != 3)
        bad |= is_end & (field < 3)
        field += closes
        value[closes] = 0
        digits[closes] = 0
        done |= is_end
    bad |= ~done | (prefix > 32)
    size = np.uint64(1) << (np.uint64(32) - np.minimum(prefix, np.uint64(32)))
    bad |= (address & (size - np.uint64(1))) != 0
    ok = ~bad
    rows[ok, 0] = address[ok]
    rows[ok, 1] = address[ok] + size[ok]
    return rows, ok
