"""The testbed spec: a TOML file saying who scans, what every address answers, and when links fail.

A spec is checked completely before anything is built, so a bad one leaves nothing behind:
every IPv4 address must lie in 198.18.0.0/15 and every IPv6 address in 2001:2::/48, every
behaviour must be known, every VP named in an event or a loss entry must exist. Errors name the
file and the key (and the line, for TOML syntax errors).

Layout of a spec (see the shipped ``specs/*.toml``)::

    name = "small"
    version = 1                       # optional: the spec's version (an integer, default 1)
    seed = 1                          # assignment of fractions is a seeded shuffle
    population = ["198.18.0.0/22"]    # the addresses that exist (unassigned ones are silent)
    infrastructure = "198.19.255.0/24"  # VPs, router, Internet; excluded from the targets
    dns_name = "liveness.test"
    population6 = ["2001:2::/54"]     # optional: IPv6 hosts, one at ::1 of every /64 inside
                                      # (population = [] then makes an IPv6-only testbed)
    infrastructure6 = "2001:2:0:ff00::/56"  # the IPv6 VPs, router and Internet (the default)

    [[vp]]                            # one or more vantage points
    name = "vp1"
    lan = "198.18.3.0/24"             # optional: its own LAN block (kept reachable on an island)
    lan6 = "2001:2:0:300::/56"        # optional: its IPv6 LAN block, the same for IPv6

    [[assign]]                        # a behaviour for a fraction, blocks or addresses
    behaviour = "icmp_only"
    fraction = 0.1                    # or: blocks = ["198.18.1.0/24"], addresses = ["198.18.0.7"]
    within = ["198.18.0.0/23"]        # optional, with fraction: a share of these blocks' hosts
    families = ["4", "6"]             # "4" IPv4-only, "6" IPv6-only, both: dual-stack hosts

    [[loss]]                          # loss on the path to chosen addresses
    fraction = 0.02                   # or blocks / addresses; none of them: every address
    loss = 0.05                       # or gemodel = {good_ms, bad_ms, good_loss, bad_loss}
    delay_ms = 0                      # needs tc netem in the kernel
    vps = ["vp1"]                     # optional, default every VP
    families = ["6"]                  # optional, default every family of the spec

    [[event]]                         # connectivity schedule, seconds from start
    kind = "peninsula"                # outage | peninsula | island
    blocks = ["198.18.2.0/24"]        # outage, peninsula (IPv4 and/or IPv6 prefixes)
    vps = ["vp1"]                     # peninsula: the VPs cut; island: the one VP
    family = "6"                      # optional: cut only IPv6 (or "4"); default both
    start = 5
    end = 10                          # optional: until down

    [behaviour.my_host]               # optional custom behaviours (see behaviours.py)
    icmp = "reply"
    tcp = { "22" = "open", other = "closed" }
    udp_services = ["snmp", "ssdp"]   # optional: real UDP servers (behaviours.UDP_SERVICES)

IPv6 addressing. The IPv6 population is host ``::1`` of every /64 inside ``population6`` (minus
the /64s that ``infrastructure6`` touches), so a prefix walk over /64s finds every host. Hosts
pair by rank: host *k* is the *k*-th IPv4 target and the *k*-th IPv6 host, so with
``population = ["198.18.0.0/21"]`` and ``population6 = ["2001:2::/53"]`` the dual-stack twin of
198.18.X.Y is ``2001:2:0:XXYY::1`` (X and Y in two hex digits each). A VP *k* (from 0) has
``infrastructure6`` + 1 + *k*, the router + 0xfe, the Internet namespace + 0xfd.

Families. ``families`` (on ``[[assign]]`` and ``[[loss]]``: a list of ``"4"``/``"6"``) says which
addresses of the selected hosts it concerns; it defaults to every family the spec has a
population for (IPv4 only when there is no ``population6``). Blocks and addresses of either
family select hosts, and the entry applies to each selected host's address in every listed
family (an IPv4 block with ``families = ["4", "6"]`` takes the IPv6 twins along; an IPv6 block
of a loss entry needs ``families = ["6"]`` to spare the IPv4 twins); a fraction is a share of
the hosts that have every listed family. ``family`` on an ``[[event]]`` (``"4"`` or
``"6"``) limits it to one family: an outage or peninsula cuts the prefixes it names, each in its
own family; an island cuts the VP from everything but ``lan`` (IPv4) and ``lan6`` (IPv6), and
by default cuts every family of the spec (an IPv6 island is ``family = "6"``: the VP's IPv6
LAN works, the rest of IPv6 does not, IPv4 is untouched).
"""

from __future__ import annotations

import ipaddress
import math
import re
import tomllib
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from liveness.errors import InputError
from liveness.safety import (
    BENCHMARK_NET,
    require_benchmark_net,
    require_benchmark_range,
    require_benchmark_range6,
)
from liveness.targets.inputs import check_input_file, excerpt
from liveness.testbed.behaviours import BUILTIN_BEHAVIOURS, Behaviour, parse_behaviour

__all__ = [
    "AssignSpec",
    "EventSpec",
    "LossSpec",
    "TestbedSpec",
    "VpSpec",
    "load_spec",
    "shipped_specs",
]

Net = ipaddress.IPv4Network
Net6 = ipaddress.IPv6Network
AnyNet = Net | Net6
VP_NAME = re.compile(r"^[a-z][a-z0-9_]{0,11}$")
EVENT_KINDS = ("outage", "peninsula", "island")
MAX_VPS = 32
MAX_LOSS_ENTRIES = 64
GEMODEL_KEYS = ("good_ms", "bad_ms", "good_loss", "bad_loss")
DEFAULT_INFRA6 = "2001:2:0:ff00::/56"
_DEFAULT_INFRA6_NET = ipaddress.IPv6Network(DEFAULT_INFRA6)


@dataclass(frozen=True)
class VpSpec:
    """A vantage point: a name, and optionally its own LAN blocks (IPv4, IPv6)."""

    name: str
    lan: Net | None = None
    lan6: Net6 | None = None


@dataclass(frozen=True)
class Selection:
    """Which addresses an entry applies to: a fraction of the population, blocks, addresses."""

    fraction: float = 0.0
    nets: tuple[AnyNet, ...] = ()
    within: tuple[AnyNet, ...] = ()  # with ``fraction``: drawn from these blocks' hosts only

    @property
    def everything(self) -> bool:
        """No selector at all: every address."""
        return self.fraction == 0.0 and not self.nets


@dataclass(frozen=True)
class AssignSpec:
    """A behaviour given to a selection of hosts, in some address families (4, 6)."""

    behaviour: str
    selection: Selection
    families: tuple[int, ...] = (4,)


@dataclass(frozen=True)
class LossSpec:
    """Loss on the path from some VPs to a selection of addresses.

    Random loss is an nftables ``numgen random`` drop in the router. Bursty loss is a
    Gilbert-Elliott model in time: the path alternates between a good and a bad state whose
    durations are exponential (means ``good_ms``, ``bad_ms``), each with its own loss rate.
    Delay needs tc netem, which not every kernel has (``up`` says so when it is missing).
    """

    selection: Selection
    vps: tuple[str, ...]
    loss: float = 0.0
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    gemodel: tuple[float, float, float, float] | None = None  # good_ms, bad_ms, good/bad loss
    families: tuple[int, ...] = (4,)

    @property
    def loss_rate(self) -> float:
        """The long-run probability that a probe on this path is lost."""
        if self.gemodel is None:
            return self.loss
        good_ms, bad_ms, good, bad = self.gemodel
        return (good_ms * good + bad_ms * bad) / (good_ms + bad_ms)


@dataclass(frozen=True)
class EventSpec:
    """A scheduled connectivity event: outage, peninsula or island, from start to end seconds,
    in some address families (``blocks`` may hold prefixes of both)."""

    kind: str
    blocks: tuple[AnyNet, ...]
    vps: tuple[str, ...]
    start: float
    end: float
    families: tuple[int, ...] = (4,)


@dataclass(frozen=True)
class TestbedSpec:
    """A parsed, checked spec (see the module docstring for the TOML layout)."""

    name: str
    source: str
    seed: int
    population: tuple[Net, ...]
    infrastructure: Net
    dns_name: str
    vps: tuple[VpSpec, ...]
    assigns: tuple[AssignSpec, ...]
    losses: tuple[LossSpec, ...] = ()
    events: tuple[EventSpec, ...] = ()
    behaviours: dict[str, Behaviour] = field(default_factory=dict)
    text: str = ""  # the TOML text it was read from (kept with a running testbed)
    population6: tuple[Net6, ...] = ()
    infrastructure6: Net6 = _DEFAULT_INFRA6_NET
    version: int = 1  # a shipped spec's version, raised when its population changes

    @property
    def families(self) -> tuple[int, ...]:
        """The address families the spec has a population in."""
        return tuple(af for af, pop in ((4, self.population), (6, self.population6)) if pop)

    __test__ = False  # not a pytest test class despite its name


def shipped_specs() -> list[str]:
    """Names of the specs shipped with the package."""
    folder = resources.files("liveness.testbed") / "specs"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def load_spec(name_or_path: str | Path) -> TestbedSpec:
    """Read a shipped spec by name (``paper``) or a TOML file by path, and check it fully."""
    text, where = _read(name_or_path)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{where}: malformed TOML: {exc}") from None
    return replace(parse_spec(raw, where), text=text)


def _read(name_or_path: str | Path) -> tuple[str, str]:
    path = Path(name_or_path)
    if isinstance(name_or_path, str) and "/" not in name_or_path and not path.suffix:
        if name_or_path not in shipped_specs():
            raise InputError(
                f"spec {name_or_path!r}: no such shipped spec ({', '.join(shipped_specs())}) "
                "and not a path to a .toml file"
            )
        resource = resources.files("liveness.testbed") / "specs" / f"{name_or_path}.toml"
        return resource.read_text(encoding="utf-8"), f"spec {name_or_path}"
    check_input_file(path, "spec")
    try:
        return path.read_text(encoding="utf-8"), str(path)
    except OSError as exc:
        raise InputError(f"spec {path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise InputError(
            f"spec {path}: not a TOML file (byte {exc.start} is not UTF-8 text)"
        ) from None


_TOP_KEYS = {
    "name",
    "seed",
    "population",
    "infrastructure",
    "dns_name",
    "vp",
    "assign",
    "loss",
    "event",
    "behaviour",
    "description",
    "population6",
    "infrastructure6",
    "version",
}


def parse_spec(raw: dict[str, Any], where: str) -> TestbedSpec:
    """Check a decoded TOML document and build the spec; InputError names the key at fault."""
    _no_unknown(raw, _TOP_KEYS, where)
    population = tuple(_nets4(raw.get("population", [str(BENCHMARK_NET)]), f"{where}: population"))
    population6 = tuple(_nets6(raw.get("population6", []), f"{where}: population6"))
    for net in population6:
        if net.prefixlen > 64:
            raise InputError(
                f"{where}: population6: {net} is longer than /64 (hosts are ::1 of each /64)"
            )
    if not population and not population6:
        raise InputError(f"{where}: population and population6 are both empty")
    infra = require_benchmark_range(
        _str(raw.get("infrastructure", "198.19.255.0/24"), f"{where}: infrastructure"),
        f"{where}: infrastructure",
    )
    if infra.prefixlen > 26:
        raise InputError(f"{where}: infrastructure {infra} is too small (at most /26)")
    infra6 = require_benchmark_range6(
        _str(raw.get("infrastructure6", DEFAULT_INFRA6), f"{where}: infrastructure6"),
        f"{where}: infrastructure6",
    )
    if infra6.prefixlen > 120:
        raise InputError(f"{where}: infrastructure6 {infra6} is too small (at most /120)")
    families = tuple(af for af, pop in ((4, population), (6, population6)) if pop)
    behaviours = dict(BUILTIN_BEHAVIOURS)
    custom = raw.get("behaviour", {})
    if not isinstance(custom, dict):
        raise InputError(f"{where}: behaviour must be a table of named behaviours")
    for bname, body in custom.items():
        behaviours[bname] = parse_behaviour(bname, body, f"{where}: behaviour.{bname}")
    vps = _vps(raw.get("vp"), families, where)
    vp_names = tuple(vp.name for vp in vps)
    assigns = tuple(
        _assign(entry, behaviours, families, f"{where}: assign[{i}]")
        for i, entry in enumerate(_tables(raw.get("assign", []), f"{where}: assign"))
    )
    for af in families:
        spread = [a for a in assigns if af in a.families and not a.selection.within]
        if sum(a.selection.fraction for a in spread) > 1.0 + 1e-9:
            raise InputError(f"{where}: assign: the fractions add up to more than 1")
    losses = tuple(
        _loss(entry, vp_names, families, f"{where}: loss[{i}]")
        for i, entry in enumerate(_tables(raw.get("loss", []), f"{where}: loss"))
    )
    if len(losses) > MAX_LOSS_ENTRIES:
        raise InputError(f"{where}: loss: at most {MAX_LOSS_ENTRIES} entries")
    events = tuple(
        _event(entry, vps, families, f"{where}: event[{i}]")
        for i, entry in enumerate(_tables(raw.get("event", []), f"{where}: event"))
    )
    return TestbedSpec(
        name=_str(raw.get("name", Path(where).stem), f"{where}: name"),
        source=where,
        seed=_int(raw.get("seed", 0), f"{where}: seed"),
        population=population,
        infrastructure=infra,
        dns_name=_str(raw.get("dns_name", "liveness.test"), f"{where}: dns_name"),
        vps=vps,
        assigns=assigns,
        losses=losses,
        events=events,
        behaviours=behaviours,
        population6=population6,
        infrastructure6=infra6,
        version=_version(raw.get("version", 1), f"{where}: version"),
    )


def _version(value: Any, where: str) -> int:
    version = _int(value, where)
    if version < 1:
        raise InputError(f"{where}: must be a positive integer, got {version}")
    return version


def _vps(value: Any, families: tuple[int, ...], where: str) -> tuple[VpSpec, ...]:
    entries = _tables(value if value is not None else [], f"{where}: vp")
    if not entries:
        raise InputError(f"{where}: vp: at least one [[vp]] is needed")
    if len(entries) > MAX_VPS:
        raise InputError(f"{where}: vp: at most {MAX_VPS} vantage points")
    vps = []
    for i, entry in enumerate(entries):
        key = f"{where}: vp[{i}]"
        _no_unknown(entry, {"name", "lan", "lan6"}, key)
        name = _str(entry.get("name"), f"{key}.name")
        if not VP_NAME.match(name):
            raise InputError(f"{key}.name: {excerpt(name)} must match {VP_NAME.pattern}")
        lan = entry.get("lan")
        lan6 = entry.get("lan6")
        if lan6 is not None and 6 not in families:
            raise InputError(f"{key}.lan6: the spec has no population6")
        vps.append(
            VpSpec(
                name,
                None if lan is None else _nets4([lan], f"{key}.lan")[0],
                None if lan6 is None else _nets6([lan6], f"{key}.lan6")[0],
            )
        )
    names = [vp.name for vp in vps]
    if len(set(names)) != len(names):
        raise InputError(f"{where}: vp: names must be unique ({', '.join(names)})")
    return tuple(vps)


def _selection(entry: dict[str, Any], families: tuple[int, ...], where: str) -> Selection:
    fraction = float(_num(entry.get("fraction", 0.0), f"{where}.fraction"))
    if not 0.0 <= fraction <= 1.0:
        raise InputError(f"{where}.fraction: {fraction} is not within [0, 1]")
    nets: list[AnyNet] = []
    for key in ("blocks", "addresses"):
        for net in _nets(entry.get(key, []), f"{where}.{key}"):
            _need_family(net.version, families, f"{where}.{key}: {net}")
            nets.append(net)
    if fraction and nets:
        raise InputError(f"{where}: give either fraction or blocks/addresses, not both")
    return Selection(fraction, tuple(nets))


def _families(value: Any, spec_families: tuple[int, ...], where: str) -> tuple[int, ...]:
    """A ``families`` list (``["4"]``, ``["6"]``, ``["4", "6"]``), checked against the spec's."""
    if value is None:
        return spec_families
    if not isinstance(value, list) or not value:
        raise InputError(f'{where}: must be a non-empty list of "4" and "6"')
    chosen = set()
    for item in value:
        af = _family(item, where)
        _need_family(af, spec_families, where)
        chosen.add(af)
    return tuple(sorted(chosen))


def _need_family(af: int, spec_families: tuple[int, ...], where: str) -> None:
    if af not in spec_families:
        missing = "population6" if af == 6 else "population"
        raise InputError(f"{where}: IPv{af} needs a {missing} in the spec")


def _family(value: Any, where: str) -> int:
    if isinstance(value, str | int) and not isinstance(value, bool) and str(value) in ("4", "6"):
        return int(value)
    raise InputError(f'{where}: {excerpt(value)} is not a family ("4" or "6")')


def _assign(
    entry: dict[str, Any],
    behaviours: dict[str, Behaviour],
    spec_families: tuple[int, ...],
    where: str,
) -> AssignSpec:
    _no_unknown(
        entry, {"behaviour", "fraction", "blocks", "addresses", "families", "within"}, where
    )
    name = _str(entry.get("behaviour"), f"{where}.behaviour")
    if name not in behaviours:
        known = ", ".join(sorted(behaviours))
        raise InputError(f"{where}.behaviour: unknown behaviour {excerpt(name)} (known: {known})")
    selection = _selection(entry, spec_families, where)
    if "within" in entry:
        if not selection.fraction:
            raise InputError(f"{where}.within: needs a fraction (the share of these blocks)")
        within = tuple(_nets(entry["within"], f"{where}.within"))
        for net in within:
            _need_family(net.version, spec_families, f"{where}.within: {net}")
        selection = replace(selection, within=within)
    if selection.everything:
        raise InputError(f"{where}: needs fraction, blocks or addresses")
    default = (6,) if behaviours[name].ipv6_only and 6 in spec_families else spec_families
    families = _families(entry.get("families", list(default)), spec_families, f"{where}.families")
    if behaviours[name].ipv6_only and 4 in families:
        raise InputError(
            f'{where}.families: behaviour {name} exists in ICMPv6 only; use families = ["6"]'
        )
    return AssignSpec(name, selection, families)


def _loss(
    entry: dict[str, Any], vp_names: tuple[str, ...], spec_families: tuple[int, ...], where: str
) -> LossSpec:
    keys = {"fraction", "blocks", "addresses", "vps", "loss", "delay_ms", "jitter_ms", "gemodel"}
    _no_unknown(entry, keys | {"families"}, where)
    families = _families(entry.get("families"), spec_families, f"{where}.families")
    vps = _vp_list(entry.get("vps", list(vp_names)), vp_names, f"{where}.vps")
    loss = float(_num(entry.get("loss", 0.0), f"{where}.loss"))
    gemodel = None
    if "gemodel" in entry:
        ge = entry["gemodel"]
        if not isinstance(ge, dict):
            raise InputError(
                f"{where}.gemodel: must be a table {{good_ms, bad_ms, good_loss, bad_loss}}"
            )
        _no_unknown(ge, set(GEMODEL_KEYS), f"{where}.gemodel")
        defaults = {"good_ms": 1000.0, "bad_ms": 50.0, "good_loss": 0.0, "bad_loss": 1.0}
        values = [float(_num(ge.get(k, defaults[k]), f"{where}.gemodel.{k}")) for k in GEMODEL_KEYS]
        if values[0] <= 0 or values[1] <= 0:
            raise InputError(f"{where}.gemodel: good_ms and bad_ms must be > 0")
        gemodel = (values[0], values[1], values[2], values[3])
        if loss:
            raise InputError(f"{where}: give either loss or gemodel, not both")
    probabilities = [("loss", loss)]
    if gemodel is not None:
        probabilities += [("good_loss", gemodel[2]), ("bad_loss", gemodel[3])]
    for name, value in probabilities:
        if not 0.0 <= value <= 1.0:
            raise InputError(f"{where}: {name} = {value} is not a probability within [0, 1]")
    delay = float(_num(entry.get("delay_ms", 0.0), f"{where}.delay_ms"))
    jitter = float(_num(entry.get("jitter_ms", 0.0), f"{where}.jitter_ms"))
    if delay < 0 or jitter < 0:
        raise InputError(f"{where}: delay_ms and jitter_ms must be >= 0")
    selection = _selection(entry, spec_families, where)
    if (delay or jitter) and not selection.everything:
        raise InputError(f"{where}: delay_ms applies to a VP's whole path (no fraction/blocks)")
    if (delay or jitter) and "families" in entry:
        raise InputError(f"{where}.families: delay_ms delays a VP's link, every family")
    return LossSpec(selection, vps, loss, delay, jitter, gemodel, families)


def _event(
    entry: dict[str, Any], vps: tuple[VpSpec, ...], spec_families: tuple[int, ...], where: str
) -> EventSpec:
    _no_unknown(entry, {"kind", "blocks", "vps", "start", "end", "family"}, where)
    kind = _str(entry.get("kind"), f"{where}.kind")
    if kind not in EVENT_KINDS:
        raise InputError(
            f"{where}.kind: unknown event kind {excerpt(kind)} ({', '.join(EVENT_KINDS)})"
        )
    names = tuple(vp.name for vp in vps)
    start = float(_num(entry.get("start", 0.0), f"{where}.start"))
    end = float(_num(entry.get("end", math.inf), f"{where}.end", allow_inf=True))
    if start < 0 or end <= start:
        raise InputError(f"{where}: needs 0 <= start < end (got {start}, {end})")
    blocks = tuple(_nets(entry.get("blocks", []), f"{where}.blocks"))
    if "family" in entry:
        families: tuple[int, ...] = (_family(entry["family"], f"{where}.family"),)
        _need_family(families[0], spec_families, f"{where}.family")
    elif blocks:
        families = tuple(sorted({b.version for b in blocks}))
        for af in families:
            _need_family(af, spec_families, f"{where}.blocks")
    else:
        families = spec_families
    for block in blocks:
        if block.version not in families:
            raise InputError(
                f'{where}.blocks: {block} is IPv{block.version} but family = "{families[0]}"'
            )
    if kind == "outage":
        chosen = names
        if "vps" in entry:
            raise InputError(f"{where}.vps: an outage cuts every VP; give no vps")
    else:
        chosen = _vp_list(entry.get("vps", []), names, f"{where}.vps")
        if not chosen:
            raise InputError(f"{where}.vps: a {kind} needs the VPs it concerns")
    if kind == "island":
        if len(chosen) != 1 or blocks:
            raise InputError(f"{where}: an island names exactly one VP and no blocks")
        vp = next(vp for vp in vps if vp.name == chosen[0])
        for af, lan, key in ((4, vp.lan, "lan"), (6, vp.lan6, "lan6")):
            if af in families and lan is None:
                raise InputError(
                    f"{where}: island VP {excerpt(chosen[0])} needs a {key} block in its [[vp]]"
                    + (' (or family = "4")' if af == 6 else "")
                )
    elif not blocks:
        raise InputError(f"{where}.blocks: a {kind} needs the blocks it cuts")
    return EventSpec(kind, blocks, chosen, start, end, families)


def _vp_list(value: Any, known: tuple[str, ...], where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InputError(f"{where}: must be a list of VP names")
    for name in value:
        if name not in known:
            raise InputError(f"{where}: unknown VP {excerpt(name)} (known: {', '.join(known)})")
    return tuple(value)


def _cidrs(value: Any, where: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise InputError(f"{where}: must be a CIDR or a list of CIDRs")
    return [_str(v, where) for v in value]


def _nets(value: Any, where: str) -> list[AnyNet]:
    """CIDRs of either family, each inside its benchmarking range."""
    return [require_benchmark_net(v, where) for v in _cidrs(value, where)]


def _nets4(value: Any, where: str) -> list[Net]:
    return [require_benchmark_range(v, where) for v in _cidrs(value, where)]


def _nets6(value: Any, where: str) -> list[Net6]:
    return [require_benchmark_range6(v, where) for v in _cidrs(value, where)]


def _tables(value: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise InputError(f"{where}: must be an array of tables ([[...]])")
    return value


def _no_unknown(entry: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise InputError(f"{where}: unknown key(s) {', '.join(unknown)}")


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise InputError(f"{where}: expected a string, got {excerpt(value)}")
    return value


def _int(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InputError(f"{where}: expected an integer, got {excerpt(value)}")
    return value


def _num(value: Any, where: str, *, allow_inf: bool = False) -> float:
    """A TOML number; nan never, inf only where it means "never" (an event's end)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise InputError(f"{where}: expected a number, got {excerpt(value)}")
    number = float(value)
    if math.isnan(number) or (math.isinf(number) and not allow_inf):
        raise InputError(f"{where}: expected a finite number, got {number}")
    return number
