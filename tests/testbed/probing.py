"""Send scapy probes from inside a testbed VP (``scapy_probe.py`` run in its namespace)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from liveness.testbed import Testbed

PROBER = Path(__file__).with_name("scapy_probe.py")


def probe_from_vp(
    tb: Testbed, vp: str, probes: list[list[str]], **extra: object
) -> list[list[Any]]:
    """Send scapy probes (IPv4 or IPv6 by target) from inside a VP; the replies it saw."""
    point = tb.vps[vp]
    request = {
        "iface": point.ifname,
        "src": point.src_ip,
        "src6": point.src_ip6,
        "gateway_mac": point.gateway_mac,
        "dns_name": tb.spec.dns_name,
        "probes": probes,
        **extra,
    }
    done = tb.run(
        vp, [sys.executable, str(PROBER)], input=json.dumps(request), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    seen: list[list[Any]] = json.loads(done.stdout)
    return seen
