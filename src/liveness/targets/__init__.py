"""The target space of a scan: which addresses, in which order, on which shard.

- :class:`TargetSpace`: positional CIDRs, allow/block lists (default blocklist: the IANA
  special-purpose ranges) and the list of IPs turned into sorted intervals, with a vectorised
  index <-> address mapping that holds the full IPv4 space in constant memory.
- :class:`Permutation`: a keyed bijection on ``[0, n)`` (the scan order, from ``-e/--seed``).
- :class:`Shard`: ``--shards N --shard i``.
- :func:`iter_target_batches`: the three combined, batch by batch, resumable from an offset.
"""

from liveness.targets.batches import iter_target_batches
from liveness.targets.blocklist import BlocklistEntry, default_blocklist, default_intervals
from liveness.targets.cidr import (
    CidrList,
    parse_cidr,
    parse_cidr_list,
    parse_cidrs,
    read_cidr_file,
    read_cidr_list,
)
from liveness.targets.permutation import Permutation
from liveness.targets.shard import Shard
from liveness.targets.space import TargetSpace

__all__ = [
    "BlocklistEntry",
    "CidrList",
    "Permutation",
    "Shard",
    "TargetSpace",
    "default_blocklist",
    "default_intervals",
    "iter_target_batches",
    "parse_cidr",
    "parse_cidr_list",
    "parse_cidrs",
    "read_cidr_file",
    "read_cidr_list",
]
