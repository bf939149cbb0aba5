"""The Internet core: the strongly connected component holding more than half the active addresses.

Input is a reachability relation between groups (blocks, VPs, ASes or countries): rows
``(src_group, dst_group, reachable)``, and a weight per group (its active addresses). Groups are
nodes; ``reachable`` rows are directed edges. The core is the strongly connected component whose
weight is strictly more than ``threshold`` (one half) of all weight, if there is one; groups
outside it are islands; ordered pairs inside it measured as not reaching each other directly are
peninsulas (pairs never measured are unknown, not peninsulas). ``core_without`` answers the
secession question: if these groups were cut off (all their edges removed, their weight kept in
the total), would a core remain?

There are two Internets, one per address family, so :class:`FamilyCores` keeps one relation per
family (rows and weights tagged ``af``) and computes each core on its own: the IPv4 core holds
more than half of the active IPv4 addresses, the IPv6 core more than half of the active IPv6
ones, and a group (a VP, an AS) may be in one and an island of the other.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from liveness.errors import InputError
from liveness.targets.inputs import excerpt

__all__ = ["FAMILIES", "CoreResult", "FamilyCores", "Reachability"]

FAMILIES: tuple[int, ...] = (4, 6)


@dataclass(frozen=True)
class CoreResult:
    """The strongly connected components and the core, if any."""

    has_core: bool
    core: list[str]
    core_weight: float
    total_weight: float
    largest_share: float
    """Weight share of the heaviest component (the core's share when there is a core)."""
    islands: list[str]
    peninsulas: list[tuple[str, str]]
    components: list[list[str]] = field(default_factory=list)
    """All components, heaviest first."""
    cut: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dictionary."""
        return {
            "has_core": self.has_core,
            "core": self.core,
            "core_weight": self.core_weight,
            "total_weight": self.total_weight,
            "largest_share": self.largest_share,
            "islands": self.islands,
            "peninsulas": [list(pair) for pair in self.peninsulas],
            "components": self.components,
            "cut": self.cut,
        }


@dataclass(frozen=True)
class Reachability:
    """A directed reachability relation between weighted groups (indices into ``groups``)."""

    groups: list[str]
    weights: NDArray[np.float64]
    src: NDArray[np.int64]
    dst: NDArray[np.int64]
    reachable: NDArray[np.bool_]

    @classmethod
    def build(
        cls,
        src: Sequence[str],
        dst: Sequence[str],
        reachable: Sequence[bool],
        weights: Mapping[str, float],
    ) -> Reachability:
        """From relation rows and a weight per group; every group in the relation needs one."""
        if not len(src) == len(dst) == len(reachable):
            raise InputError("relation columns src, dst and reachable differ in length")
        named = set(src) | set(dst)
        missing = sorted(named - set(weights))
        if missing:
            shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
            raise InputError(f"no weight for group(s) {shown}")
        bad = [g for g, w in weights.items() if not np.isfinite(w) or w < 0]
        if bad:
            raise InputError(f"weight of group {excerpt(bad[0])} is not a non-negative number")
        groups = sorted(weights)
        index = {g: i for i, g in enumerate(groups)}
        return cls(
            groups=groups,
            weights=np.array([float(weights[g]) for g in groups], np.float64),
            src=np.array([index[g] for g in src], np.int64),
            dst=np.array([index[g] for g in dst], np.int64),
            reachable=np.array(reachable, bool),
        )

    def core(self, threshold: float = 0.5) -> CoreResult:
        """The components and the core of the whole relation."""
        return self._core(np.zeros(len(self.groups), bool), threshold)

    def core_without(self, cut: Iterable[str], threshold: float = 0.5) -> CoreResult:
        """The core if the groups in ``cut`` were cut off from everyone (their weight stays)."""
        cut_list = list(cut)
        unknown = sorted(set(cut_list) - set(self.groups))
        if unknown:
            raise InputError(f"--without: unknown group(s) {', '.join(unknown)}")
        index = {g: i for i, g in enumerate(self.groups)}
        is_cut = np.zeros(len(self.groups), bool)
        is_cut[[index[g] for g in cut_list]] = True
        return self._core(is_cut, threshold)

    def _core(self, is_cut: NDArray[np.bool_], threshold: float) -> CoreResult:
        n = len(self.groups)
        edge = self.reachable & (self.src != self.dst) & ~is_cut[self.src] & ~is_cut[self.dst]
        graph = coo_matrix(
            (np.ones(int(edge.sum()), np.int8), (self.src[edge], self.dst[edge])), shape=(n, n)
        ).tocsr()
        n_comp, label = connected_components(graph, directed=True, connection="strong")
        comp_weight = np.bincount(label, weights=self.weights, minlength=n_comp)
        total = float(self.weights.sum())
        order = np.argsort(-comp_weight, kind="stable")
        components = [[self.groups[i] for i in np.flatnonzero(label == c)] for c in order]
        heaviest = int(order[0]) if n_comp else -1
        largest_share = float(comp_weight[heaviest] / total) if n_comp and total > 0 else 0.0
        has_core = largest_share > threshold
        in_core = (label == heaviest) if has_core else np.zeros(n, bool)
        # A pair is a peninsula when measured, never reachable, and both ends are in the core.
        pair_key = self.src * n + self.dst
        ever = np.unique(pair_key[self.reachable])
        never = np.setdiff1d(np.unique(pair_key[~self.reachable & (self.src != self.dst)]), ever)
        a, b = never // n, never % n
        inside = in_core[a] & in_core[b]
        return CoreResult(
            has_core=bool(has_core),
            core=[self.groups[i] for i in np.flatnonzero(in_core)],
            core_weight=float(comp_weight[heaviest]) if has_core else 0.0,
            total_weight=total,
            largest_share=largest_share,
            islands=[self.groups[i] for i in np.flatnonzero(~in_core)],
            peninsulas=[
                (self.groups[i], self.groups[j]) for i, j in zip(a[inside], b[inside], strict=True)
            ],
            components=components,
            cut=[self.groups[i] for i in np.flatnonzero(is_cut)],
        )


@dataclass(frozen=True)
class FamilyCores:
    """One :class:`Reachability` per address family (both always present; a family with no
    rows and no weights is empty and has no core)."""

    relations: dict[int, Reachability]

    @classmethod
    def build(
        cls,
        src: Sequence[str],
        dst: Sequence[str],
        reachable: Sequence[bool],
        af: Sequence[int],
        weights: Mapping[int, Mapping[str, float]],
    ) -> FamilyCores:
        """From relation rows tagged with their family and a weight per group and family."""
        if not len(src) == len(dst) == len(reachable) == len(af):
            raise InputError("relation columns src, dst, reachable and af differ in length")
        families = np.asarray(af, dtype=np.int64)
        bad = sorted(set(families.tolist()) - set(FAMILIES)) + sorted(set(weights) - set(FAMILIES))
        if bad:
            raise InputError(f"af {bad[0]} is not 4 or 6")
        relations = {}
        for family in FAMILIES:
            rows = np.flatnonzero(families == family).tolist()
            try:
                relations[family] = Reachability.build(
                    [src[i] for i in rows],
                    [dst[i] for i in rows],
                    [reachable[i] for i in rows],
                    weights.get(family, {}),
                )
            except InputError as exc:
                raise InputError(f"IPv{family}: {exc}") from None
        return cls(relations)

    def measured(self, af: int) -> bool:
        """Whether the family has any group (relation rows or weights)."""
        return bool(self.relations[af].groups)

    def cores(self, threshold: float = 0.5) -> dict[int, CoreResult]:
        """Each family's components and core."""
        return {af: graph.core(threshold) for af, graph in self.relations.items()}

    def cores_without(self, cut: Iterable[str], threshold: float = 0.5) -> dict[int, CoreResult]:
        """Each family's core with the groups of ``cut`` cut off; a group absent from a family
        is not cut there (its ``cut`` list says which were). Unknown in every family: error."""
        cut_list = list(cut)
        known = set().union(*(graph.groups for graph in self.relations.values()))
        unknown = sorted(set(cut_list) - known)
        if unknown:
            raise InputError(f"--without: unknown group(s) {', '.join(unknown)}")
        return {
            af: graph.core_without([g for g in cut_list if g in set(graph.groups)], threshold)
            for af, graph in self.relations.items()
        }
