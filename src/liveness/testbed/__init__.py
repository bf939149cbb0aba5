"""An emulated Internet in Linux network namespaces, built from a TOML spec, with ground truth.

``load_spec`` reads a shipped spec (``paper``, ``connectivity``, ``small``, ``dualstack``) or a
TOML file; ``Testbed`` brings it up (a context manager, or ``Testbed.up``/``down``); ``down_all``
removes whatever the state directory records, also after a crash. A spec with ``population6``
builds IPv6 beside IPv4 (inside 2001:2::/48), ``dualstack`` being the shipped example.
"""

from liveness.testbed.spec import TestbedSpec, load_spec, shipped_specs
from liveness.testbed.testbed import Testbed, VantagePoint, down_all

__all__ = ["Testbed", "TestbedSpec", "VantagePoint", "down_all", "load_spec", "shipped_specs"]
