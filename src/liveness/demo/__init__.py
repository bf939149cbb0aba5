"""The end-to-end demos: a scan of the testbed analysed and reported, and the connectivity demo
(monitoring from every VP, events found and compared with the testbed's schedule)."""

from liveness.demo.connectivity import match_schedule, run_connectivity_demo
from liveness.demo.scan_demo import run_scan_demo

__all__ = ["match_schedule", "run_connectivity_demo", "run_scan_demo"]
