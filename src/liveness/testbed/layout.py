"""Names, addresses and MACs of one testbed: what lives where, before anything is built.

Namespace names carry the testbed id (``lv<id>-inet``, ``lv<id>-rtr``, ``lv<id>-<vp>``), so several
testbeds coexist; interfaces are created inside their namespaces, so their names never clash.
MACs are fixed and locally administered: each link has its own pair, and every neighbour entry
(ARP and NDP alike) is permanent.
"""

from __future__ import annotations

from dataclasses import dataclass

from liveness.testbed.plan import Plan
from liveness.testbed.state import NETNS_PREFIX

__all__ = ["VP_IFNAME", "Layout", "VpLink", "layout_for"]

VP_IFNAME = "eth0"


@dataclass(frozen=True)
class VpLink:
    """One VP's link: its namespace, the interface on each side and their MACs, and its
    addresses (``ip6`` None when the testbed has no IPv6)."""

    name: str
    netns: str
    ip: str
    ifname: str
    mac: str
    router_ifname: str
    router_mac: str
    ip6: str | None = None


@dataclass(frozen=True)
class Layout:
    """Names and MACs of one testbed (namespace names carry the testbed id)."""

    testbed_id: str
    inet_ns: str
    router_ns: str
    vps: tuple[VpLink, ...]
    router_inet_mac: str = "02:4c:56:ff:00:01"
    inet_mac: str = "02:4c:56:ff:00:02"

    @property
    def namespaces(self) -> list[str]:
        """Every namespace, the Internet and the router first."""
        return [self.inet_ns, self.router_ns, *(vp.netns for vp in self.vps)]


def layout_for(plan: Plan, testbed_id: str) -> Layout:
    """The names and MACs a plan is built with."""
    prefix = f"{NETNS_PREFIX}{testbed_id}"
    vps = tuple(
        VpLink(
            name=vp,
            netns=f"{prefix}-{vp}",
            ip=ip,
            ifname=VP_IFNAME,
            mac=f"02:4c:56:00:{k:02x}:01",
            router_ifname=f"r-{vp}",
            router_mac=f"02:4c:56:00:{k:02x}:02",
            ip6=plan.vp_ips6.get(vp),
        )
        for k, (vp, ip) in enumerate(plan.vp_ips.items())
    )
    return Layout(testbed_id, f"{prefix}-inet", f"{prefix}-rtr", vps)
