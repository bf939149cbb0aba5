"""IPv6 IP-set throughput at hitlist size: build, combine, mask, store (prints one JSON object).

Random addresses in 2001::/16 (distinct /64s mostly, as a hitlist is): building a set from an
array of 128-bit addresses and from a text hitlist (one RFC 5952 address a line, through
``ipset.from_text``), union and intersection of two sets, ``mask 64``, the CIDR cover and a
file round trip. Seconds are wall-clock on this machine, one process.

    python benchmarks/ipset.py                      # 10M and 30M addresses
    python benchmarks/ipset.py --sizes 1000000      # a quick run
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from liveness.analysis import ipset, ipset6
from liveness.analysis.ipset import IPSet
from liveness.output.addresses import format_ipv6

T = TypeVar("T")


def timed(work: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    result = work()
    return result, round(time.perf_counter() - start, 2)


def addresses(rng: np.random.Generator, n: int) -> tuple[Any, Any]:
    hi = rng.integers(0, 2**48, n, dtype=np.uint64) | np.uint64(0x2001 << 48)
    lo = rng.integers(0, 2**64 - 1, n, dtype=np.uint64, endpoint=True)
    return hi, lo


def write_hitlist(path: str, hi: Any, lo: Any) -> None:
    """One RFC 5952 address a line (formatted by Arrow kernels, written as a headerless CSV)."""
    packed = pa.py_buffer(ipset6.to_packed(hi, lo))
    texts = format_ipv6(
        pa.FixedSizeBinaryArray.from_buffers(pa.binary(16), len(hi), [None, packed])
    )
    options = pacsv.WriteOptions(include_header=False, quoting_style="none")
    pacsv.write_csv(pa.table({"address": texts}), path, options)


def run(size: int, folder: str) -> dict[str, Any]:
    rng = np.random.default_rng(size)
    hi, lo = addresses(rng, size)
    first, build = timed(lambda: ipset6.from_addresses(hi, lo))
    hitlist = os.path.join(folder, "hitlist.txt")
    write_hitlist(hitlist, hi, lo)
    text_bytes = os.path.getsize(hitlist)
    from_text, build_text = timed(lambda: ipset.from_text(hitlist))
    assert from_text.v6 == first and from_text.count6 == size
    os.unlink(hitlist)
    # A second set of the same size sharing half of the first's addresses.
    more_hi, more_lo = addresses(rng, size // 2)
    second = ipset6.union(ipset6.from_addresses(more_hi, more_lo), _every_other(first))
    both, union = timed(lambda: ipset6.union(first, second))
    common, intersect = timed(lambda: ipset6.intersect(first, second))
    _, difference = timed(lambda: ipset6.difference(first, second))
    _, masked = timed(lambda: ipset6.mask(first, 64))
    _, cover = timed(lambda: ipset6.cidr_cover(first))
    path = os.path.join(folder, "set.set")
    _, save = timed(lambda: ipset.save_set(IPSet(v6=first), path))
    loaded, load = timed(lambda: ipset.load_set(path))
    assert loaded.v6 == first
    file_bytes = os.path.getsize(path)
    os.unlink(path)
    return {
        "addresses": size,
        "build_from_array_s": build,
        "build_from_text_s": build_text,
        "text_bytes": text_bytes,
        "second_set": second.count,
        "union_s": union,
        "union_count": both.count,
        "intersect_s": intersect,
        "intersect_count": common.count,
        "difference_s": difference,
        "mask64_s": masked,
        "cidr_cover_s": cover,
        "save_s": save,
        "load_s": load,
        "file_bytes": file_bytes,
    }


def _every_other(addresses: ipset6.Set6) -> ipset6.Set6:
    """Half of a set of isolated addresses (every other interval)."""
    rows = addresses.words.reshape(-1, 2, 16)[::2].reshape(-1, 16)
    return ipset6.Set6(np.ascontiguousarray(rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000000,30000000", help="comma-separated sizes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        results = [run(int(size), folder) for size in args.sizes.split(",")]
    print(json.dumps({"benchmark": "ipset6", "cpus": os.cpu_count(), "runs": results}))


if __name__ == "__main__":
    main()
