"""The target space of a scan: which addresses, in which order, on which shard; IPv4 and IPv6.

- :class:`TargetSpace`: positional CIDRs and IPv6 prefix walks (``2001:db8::/32-64``),
  allow/block lists (default blocklist: the IANA special-purpose registries, both families) and
  the list of IPs (a hitlist, families mixed), with a vectorised index -> address mapping
  (:meth:`TargetSpace.lookup` gives a :class:`TargetBatch`) that holds the full IPv4 space, or
  up to ``2**64`` IPv6 targets, in constant memory.
- :class:`IidMode` / :func:`parse_iid`: which address of each walked prefix is probed (``--iid``).
- :class:`Permutation`: a keyed bijection on ``[0, n)``, ``n <= 2**64`` (the scan order, from
  ``-e/--seed``).
- :class:`Shard`: ``--shards N --shard i``.
- :func:`iter_target_batches` / :func:`iter_target_lookups`: the three combined, batch by batch,
  resumable from an offset (IPv4 addresses / :class:`TargetBatch` es of both families).
"""

from liveness.targets.batches import iter_target_batches, iter_target_lookups
from liveness.targets.blocklist import (
    BlocklistEntry,
    default_blocklist,
    default_blocklist6,
    default_intervals,
    default_intervals6,
)
from liveness.targets.cidr import (
    CidrList,
    Net6List,
    parse_cidr,
    parse_cidr6,
    parse_cidr_list,
    parse_cidrs,
    read_cidr_file,
    read_cidr_list,
)
from liveness.targets.iid import IID_LOW, IID_RANDOM, IidMode, parse_iid
from liveness.targets.permutation import Permutation
from liveness.targets.shard import Shard
from liveness.targets.space import TargetBatch, TargetSpace
from liveness.targets.space6 import Space6, Walk

__all__ = [
    "IID_LOW",
    "IID_RANDOM",
    "BlocklistEntry",
    "CidrList",
    "IidMode",
    "Net6List",
    "Permutation",
    "Shard",
    "Space6",
    "TargetBatch",
    "TargetSpace",
    "Walk",
    "default_blocklist",
    "default_blocklist6",
    "default_intervals",
    "default_intervals6",
    "iter_target_batches",
    "iter_target_lookups",
    "parse_cidr",
    "parse_cidr6",
    "parse_cidr_list",
    "parse_cidrs",
    "parse_iid",
    "read_cidr_file",
    "read_cidr_list",
]
