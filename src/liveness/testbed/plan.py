"""The plan: which address gets which behaviour and loss, the infrastructure addresses, the truth.

Everything here is pure computation over numpy arrays of addresses, done before a single
namespace exists: ``up`` builds from the plan, ``truth`` reads it, and tests can check it
without root. IPv4 addresses are uint32 (host order). An IPv6 host is ``::1`` of a /64, so it
is held as the /64's upper 64 bits (uint64); :func:`host6_bytes` and :func:`host6_text` give
its address.

Hosts pair by rank (see ``spec.py``): host *k* owns the *k*-th IPv4 target and the *k*-th IPv6
host, and an assignment or loss entry picks hosts, then the addresses of its families.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from liveness.errors import InputError
from liveness.testbed.behaviours import PROBES, answers, service_probes
from liveness.testbed.spec import AnyNet, Selection, TestbedSpec
from liveness.testbed.truth_schema import ADDR6, SCHEDULE_SCHEMA, TRUTH_SCHEMA

__all__ = ["Plan", "host6_bytes", "host6_text", "make_plan"]

Addrs = NDArray[np.uint32]
Hosts6 = NDArray[np.uint64]
Net = ipaddress.IPv4Network
Net6 = ipaddress.IPv6Network


def host6_bytes(prefixes: Hosts6) -> NDArray[np.uint8]:
    """(n, 16) network-order bytes of the hosts ``<prefix>::1``."""
    out = np.zeros((len(prefixes), 16), dtype=np.uint8)
    out[:, :8] = prefixes.astype(">u8").view(np.uint8).reshape(-1, 8)
    out[:, 15] = 1
    return out


def host6_text(prefixes: Hosts6) -> list[str]:
    """RFC 5952 text of the hosts ``<prefix>::1``. With a non-zero fourth group the zeros to
    compress are groups 5 to 7, unless the first three are zero too (then ``ipaddress``)."""
    out = []
    for v in prefixes.tolist():
        if v & 0xFFFF and v >> 16:
            out.append(
                f"{v >> 48:x}:{(v >> 32) & 0xFFFF:x}:{(v >> 16) & 0xFFFF:x}:{v & 0xFFFF:x}::1"
            )
        else:
            out.append(ipaddress.IPv6Address(int(v) << 64 | 1).compressed)
    return out


def _bytes6_array(rows: NDArray[np.uint8]) -> pa.Array[Any]:
    return pa.FixedSizeBinaryArray.from_buffers(
        ADDR6, len(rows), [None, pa.py_buffer(np.ascontiguousarray(rows).tobytes())]
    )


@dataclass(frozen=True)
class Plan:
    """A spec resolved to addresses."""

    spec: TestbedSpec
    population: Addrs  # sorted target addresses (population minus infrastructure)
    assigned: dict[str, Addrs]  # behaviour name -> its sorted IPv4 addresses (non-empty only)
    loss_masks: tuple[NDArray[np.bool_], ...]  # per loss entry, over ``population``
    router_ip: str
    inet_ip: str
    vp_ips: dict[str, str]
    targets: list[str]  # CIDRs covering ``population``
    population6: Hosts6 = field(default_factory=lambda: np.empty(0, np.uint64))  # /64s, sorted
    assigned6: dict[str, Hosts6] = field(default_factory=dict)  # behaviour -> its IPv6 hosts
    loss_masks6: tuple[NDArray[np.bool_], ...] = ()  # per loss entry, over ``population6``
    router_ip6: str | None = None
    inet_ip6: str | None = None
    vp_ips6: dict[str, str] = field(default_factory=dict)
    targets6: list[str] = field(default_factory=list)  # CIDRs covering ``population6``'s /64s

    @property
    def has_ipv6(self) -> bool:
        """The testbed carries IPv6 (the spec has an IPv6 population)."""
        return self.router_ip6 is not None

    @property
    def behaviour_names(self) -> list[str]:
        """Every behaviour with at least one address, in either family."""
        return list(dict.fromkeys([*self.assigned, *self.assigned6]))

    @property
    def udp_services(self) -> list[str]:
        """The UDP services (``snmp``, ``ssdp``, ...) some address serves."""
        served = {
            s for name in self.behaviour_names for s in self.spec.behaviours[name].udp_services
        }
        return sorted(served)

    @property
    def tcp_services(self) -> dict[str, list[int]]:
        """Protocol (``http``, ...) -> the probed ports some address serves it on."""
        served: dict[str, set[int]] = {}
        for name in self.behaviour_names:
            for port, proto in self.spec.behaviours[name].tcp_services.items():
                served.setdefault(proto, set()).add(port)
        return {proto: sorted(ports) for proto, ports in sorted(served.items())}

    @property
    def probes(self) -> tuple[str, ...]:
        """The probes the truth has rows for: the study's, and with UDP services the generic
        ``udp:PORT:NAME`` probes."""
        return (*PROBES, *service_probes()) if self.udp_services else PROBES

    def vp_loss(self, vp: str, af: int = 4) -> NDArray[np.float64]:
        """The loss probability from ``vp`` to each population address of a family (entries
        compound)."""
        masks = self.loss_masks6 if af == 6 else self.loss_masks
        size = len(self.population6 if af == 6 else self.population)
        delivered = np.ones(size, dtype=np.float64)
        for entry, mask in zip(self.spec.losses, masks, strict=True):
            if vp in entry.vps:
                delivered[mask] *= 1.0 - entry.loss_rate
        return 1.0 - delivered

    def hosts6(self) -> list[str]:
        """Every IPv6 host address of the population (a hitlist)."""
        return host6_text(self.population6)

    def truth(self) -> pa.Table:
        """One row per (address, probe, VP) that gets a reply (``TRUTH_SCHEMA``): for each VP
        its IPv4 rows, then its IPv6 rows, each sorted by address and probe."""
        per_vp: list[pa.Table] = []
        v4 = self._answers(self.assigned, 4)
        v6 = self._answers(self.assigned6, 6)
        for vp in self.vp_ips:
            if v4 is not None:
                per_vp.append(self._family_table(v4, vp, 4))
            if v6 is not None:
                per_vp.append(self._family_table(v6, vp, 6))
        if not per_vp:
            return TRUTH_SCHEMA.empty_table()
        return pa.concat_tables(per_vp)

    def _answers(
        self, assigned: Mapping[str, NDArray[Any]], af: int
    ) -> dict[str, NDArray[Any]] | None:
        cols: dict[str, list[NDArray[Any]]] = {
            k: [] for k in ("target", "probe", "reply", "by_router", "code", "app", "proto")
        }
        probes = self.probes
        services = len(probes) > len(PROBES)
        for name, addrs in assigned.items():
            for probe, answer in answers(self.spec.behaviours[name], af, services).items():
                if answer is None:
                    continue
                n = len(addrs)
                cols["target"].append(addrs)
                cols["probe"].append(np.full(n, probes.index(probe), dtype=np.int8))
                cols["reply"].append(np.full(n, answer.reply, dtype=object))
                cols["by_router"].append(np.full(n, answer.by_router, dtype=np.bool_))
                cols["code"].append(np.full(n, answer.icmp_code, dtype=np.int16))
                cols["app"].append(np.full(n, answer.app_valid, dtype=np.bool_))
                cols["proto"].append(np.full(n, answer.app_proto, dtype=object))
        if not cols["target"]:
            return None
        target = np.concatenate(cols["target"])
        probe_idx = np.concatenate(cols["probe"])
        order = np.lexsort((probe_idx, target))
        out = {k: np.concatenate(v)[order] for k, v in cols.items()}
        population = self.population6 if af == 6 else self.population
        out["position"] = np.searchsorted(population, out["target"])
        return out

    def _family_table(self, rows: dict[str, NDArray[Any]], vp: str, af: int) -> pa.Table:
        n = len(rows["target"])
        by_router = rows["by_router"].astype(np.bool_)
        if af == 4:
            router = np.uint32(int(ipaddress.IPv4Address(self.router_ip)))
            target4 = rows["target"].astype(np.uint32)
            responder4 = np.where(by_router, router, target4).astype(np.uint32)
            target6: pa.Array[Any] = pa.nulls(n, ADDR6)
            responder6: pa.Array[Any] = target6
        else:
            assert self.router_ip6 is not None
            target4 = responder4 = np.zeros(n, dtype=np.uint32)
            raw = host6_bytes(rows["target"].astype(np.uint64))
            router6 = np.frombuffer(ipaddress.IPv6Address(self.router_ip6).packed, np.uint8)
            target6 = _bytes6_array(raw)
            responder6 = _bytes6_array(np.where(by_router[:, None], router6[None, :], raw))
        probe_names = np.array(self.probes, dtype=object)[rows["probe"].astype(np.intp)]
        return pa.table(
            {
                "target": pa.array(target4, pa.uint32()),
                "probe": pa.array(probe_names, pa.string()),
                "vp": pa.array(np.full(n, vp, dtype=object), pa.string()),
                "reply": pa.array(rows["reply"], pa.string()),
                "responder": pa.array(responder4, pa.uint32()),
                "icmp_code": pa.array(rows["code"], pa.int16()),
                "app_valid": pa.array(rows["app"], pa.bool_()),
                "loss": pa.array(self.vp_loss(vp, af)[rows["position"]], pa.float64()),
                "af": pa.array(np.full(n, af, dtype=np.uint8), pa.uint8()),
                "target6": target6,
                "responder6": responder6,
                "app_proto": pa.array(rows["proto"], pa.string()),
            },
            schema=TRUTH_SCHEMA,
        )

    def schedule(self) -> pa.Table:
        """One row per scheduled event and address family (``SCHEDULE_SCHEMA``)."""
        rows: dict[str, list[object]] = {name: [] for name in SCHEDULE_SCHEMA.names}
        all_vps = list(self.vp_ips)
        for event in self.spec.events:
            for af in event.families:
                if event.kind == "island":
                    scope = event.vps[0]
                    down = [vp for vp in all_vps if vp != scope]
                else:
                    scope = ",".join(str(b) for b in event.blocks if b.version == af)
                    down = list(event.vps)
                rows["kind"].append(event.kind)
                rows["scope"].append(scope)
                rows["vps_down"].append(",".join(down))
                rows["start"].append(event.start)
                rows["end"].append(event.end)
                rows["af"].append(af)
        return pa.table(rows, schema=SCHEDULE_SCHEMA)


def _net_range(net: Net) -> tuple[int, int]:
    return int(net.network_address), int(net.broadcast_address) + 1


def _host6_range(net: Net6) -> tuple[np.uint64, np.uint64]:
    """The /64 prefixes ``p`` whose host ``p::1`` lies in ``net``, as a half-open range."""
    lo, hi = int(net.network_address), int(net.broadcast_address) + 1
    first = (lo - 1 + (1 << 64) - 1) >> 64 if lo else 0  # smallest p with p << 64 | 1 >= lo
    last = ((hi - 2) >> 64) + 1  # one past the largest p with p << 64 | 1 < hi
    return np.uint64(first), np.uint64(max(first, last))


def _positions(population: Addrs, nets: tuple[AnyNet, ...]) -> NDArray[np.intp]:
    """Indices into ``population`` of the IPv4 addresses inside the IPv4 ones of ``nets``."""
    ranges = [_net_range(net) for net in nets if isinstance(net, Net)]
    return _inside(population, ranges)


def _positions6(population6: Hosts6, nets: tuple[AnyNet, ...]) -> NDArray[np.intp]:
    """Indices into ``population6`` of the IPv6 hosts inside the IPv6 ones of ``nets``."""
    ranges = [_host6_range(net) for net in nets if isinstance(net, Net6)]
    return _inside(population6, ranges)


def _inside(sorted_values: NDArray[Any], ranges: list[tuple[Any, Any]]) -> NDArray[np.intp]:
    """Indices of the ``sorted_values`` inside any half-open range ``[lo, hi)``, sorted."""
    parts = [
        np.arange(
            np.searchsorted(sorted_values, lo), np.searchsorted(sorted_values, hi), dtype=np.intp
        )
        for lo, hi in ranges
    ]
    return np.unique(np.concatenate(parts)) if parts else np.empty(0, dtype=np.intp)


def _target_nets(spec: TestbedSpec) -> list[Net]:
    nets: list[Net] = []
    infra = spec.infrastructure
    for net in ipaddress.collapse_addresses(spec.population):
        if net.subnet_of(infra):
            continue
        if infra.subnet_of(net):
            nets.extend(net.address_exclude(infra))
        else:
            nets.append(net)
    return sorted(ipaddress.collapse_addresses(nets))


def _target_nets6(spec: TestbedSpec) -> list[Net6]:
    """The population6 minus every /64 that ``infrastructure6`` touches, as /64-or-shorter CIDRs."""
    infra = spec.infrastructure6
    if infra.prefixlen > 64:
        infra = infra.supernet(new_prefix=64)
    nets: list[Net6] = []
    for net in ipaddress.collapse_addresses(spec.population6):
        if net.subnet_of(infra):
            continue
        if infra.subnet_of(net):
            nets.extend(net.address_exclude(infra))
        else:
            nets.append(net)
    return sorted(ipaddress.collapse_addresses(nets))


def make_plan(spec: TestbedSpec) -> Plan:
    """Resolve a spec to addresses; InputError when a selection cannot be satisfied."""
    nets = _target_nets(spec)
    nets6 = _target_nets6(spec)
    if spec.population and not nets:
        raise InputError(f"{spec.source}: population has no address outside the infrastructure")
    if spec.population6 and not nets6:
        raise InputError(
            f"{spec.source}: population6 has no /64 outside infrastructure6 {spec.infrastructure6}"
        )
    population = (
        np.concatenate([np.arange(*_net_range(n), dtype=np.uint64) for n in nets]).astype(np.uint32)
        if nets
        else np.empty(0, dtype=np.uint32)
    )
    population6 = (
        np.concatenate(
            [
                np.arange(
                    int(n.network_address) >> 64,
                    (int(n.broadcast_address) >> 64) + 1,
                    dtype=np.uint64,
                )
                for n in nets6
            ]
        )
        if nets6
        else np.empty(0, dtype=np.uint64)
    )
    sizes = {4: len(population), 6: len(population6)}
    owners = {af: np.full(n, -1, dtype=np.int32) for af, n in sizes.items()}
    for i, assign in enumerate(spec.assigns):  # explicit blocks and addresses first
        if assign.selection.nets:
            _assign_hosts(
                i, assign.families, assign.selection.nets, population, population6, owners, spec
            )
    hosts = max(sizes.values())
    free_any = np.zeros(hosts, dtype=np.bool_)
    for af, n in sizes.items():
        free_any[:n] |= owners[af] < 0
    rng = np.random.default_rng(spec.seed)
    order = rng.permutation(np.flatnonzero(free_any))
    for i, assign in enumerate(spec.assigns):
        if assign.selection.fraction:
            base = min(sizes[af] for af in assign.families)
            fits = np.ones(len(order), dtype=np.bool_)
            if assign.selection.within:  # a share of the hosts of these blocks only
                region = _region(hosts, population, population6, assign.selection.within)
                base = int(region.sum())
                fits &= region[order]
            count = round(assign.selection.fraction * base)
            for af in assign.families:
                inside = order < sizes[af]
                fits &= inside
                fits[inside] &= owners[af][order[inside]] < 0
            chosen = order[fits]
            if count > len(chosen):
                raise InputError(f"{spec.source}: assign[{i}]: not enough unassigned addresses")
            for af in assign.families:
                owners[af][chosen[:count]] = i
    assigned: dict[int, dict[str, list[NDArray[Any]]]] = {4: {}, 6: {}}
    for af, pop in ((4, population), (6, population6)):
        for i, assign in enumerate(spec.assigns):
            if spec.behaviours[assign.behaviour].silent:
                continue
            addrs = pop[owners[af] == i]
            if len(addrs):
                assigned[af].setdefault(assign.behaviour, []).append(addrs)
    loss_masks: list[NDArray[np.bool_]] = []
    loss_masks6: list[NDArray[np.bool_]] = []
    for k, entry in enumerate(spec.losses):
        mask = _select(hosts, population, population6, entry.selection, spec.seed + 1 + k)
        loss_masks.append(mask[: sizes[4]] & (4 in entry.families))
        loss_masks6.append(mask[: sizes[6]] & (6 in entry.families))
    infra = spec.infrastructure
    base = int(infra.network_address)
    vp_ips = {vp.name: str(ipaddress.IPv4Address(base + 1 + k)) for k, vp in enumerate(spec.vps)}
    router_ip6 = inet_ip6 = None
    vp_ips6: dict[str, str] = {}
    if spec.population6:
        base6 = int(spec.infrastructure6.network_address)
        router_ip6 = str(ipaddress.IPv6Address(base6 + 0xFE))
        inet_ip6 = str(ipaddress.IPv6Address(base6 + 0xFD))
        vp_ips6 = {
            vp.name: str(ipaddress.IPv6Address(base6 + 1 + k)) for k, vp in enumerate(spec.vps)
        }
    return Plan(
        spec=spec,
        population=population,
        assigned={k: np.sort(np.concatenate(v)) for k, v in assigned[4].items()},
        loss_masks=tuple(loss_masks),
        router_ip=str(infra.broadcast_address - 1),
        inet_ip=str(infra.broadcast_address - 2),
        vp_ips=vp_ips,
        targets=[str(n) for n in nets],
        population6=population6,
        assigned6={k: np.sort(np.concatenate(v)) for k, v in assigned[6].items()},
        loss_masks6=tuple(loss_masks6),
        router_ip6=router_ip6,
        inet_ip6=inet_ip6,
        vp_ips6=vp_ips6,
        targets6=[str(n) for n in nets6],
    )


def _assign_hosts(
    i: int,
    families: tuple[int, ...],
    nets: tuple[AnyNet, ...],
    population: Addrs,
    population6: Hosts6,
    owners: dict[int, NDArray[np.int32]],
    spec: TestbedSpec,
) -> None:
    """Give assign ``i`` the hosts its blocks and addresses name, in each of its families."""
    where = f"{spec.source}: assign[{i}]"
    hosts = np.union1d(_positions(population, nets), _positions6(population6, nets))
    given = 0
    for af in families:
        mine = hosts[hosts < len(owners[af])]
        if (owners[af][mine] >= 0).any():
            raise InputError(f"{where}: overlaps an earlier assign")
        owners[af][mine] = i
        given += len(mine)
    if not given:
        raise InputError(f"{where}: its blocks hold no population address")


def _region(
    hosts: int, population: Addrs, population6: Hosts6, nets: tuple[AnyNet, ...]
) -> NDArray[np.bool_]:
    """A mask over the ``hosts`` host ranks: the hosts with an address inside ``nets``."""
    mask = np.zeros(hosts, dtype=np.bool_)
    mask[_positions(population, nets)] = True
    mask[_positions6(population6, nets)] = True
    return mask


def _select(
    hosts: int, population: Addrs, population6: Hosts6, selection: Selection, seed: int
) -> NDArray[np.bool_]:
    """A mask over the ``hosts`` host ranks: every one, the ones its nets name, or a fraction."""
    mask = np.zeros(hosts, dtype=np.bool_)
    if selection.everything:
        mask[:] = True
    elif selection.nets:
        mask[_positions(population, selection.nets)] = True
        mask[_positions6(population6, selection.nets)] = True
    else:
        count = round(selection.fraction * hosts)
        mask[np.random.default_rng(seed).choice(hosts, count, replace=False)] = True
    return mask
