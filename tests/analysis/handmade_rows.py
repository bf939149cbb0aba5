"""The small hand-made scan of ``test_analysis_handmade.py``, whose answers are worked out by
hand there; other analysis tests reuse its rows.

Hosts (198.18.0.x unless said):
  A .1   echo reply; SYN-ACK on 80; RST on 22, 23, 443, 7547; own port-unreachable for DNS
  B .2   tarpit: SYN-ACK on the five ports and the random port
  C .3   RST-only host (port 22)
  D .4   DNS payload that is not a valid reply (active, not alive); valid NTP reply
  R .254 router: host unreachable for echo to 198.18.1.5 (the target is NOT alive)
  F .6   own port unreachable for NTP
  G .7   echo reply to a retransmission only (found only by retransmission)
  H .8   echo reply to the retransmission arrives first, then to attempt 0 (no gain)
  I .9   own admin-prohibited (code 13) for port 22
  .253   router: admin-prohibited for 443 to 198.18.2.9
  .252   router: time exceeded for DNS to 198.18.3.10
  K .11  SYN-ACK on 80 and its own parameter problem for 23
"""

from __future__ import annotations

from analysis_replies import Row

N = "198.18.0."
ROWS: list[Row] = [
    ("icmp_echo", N + "1", N + "1", "echo_reply", -1, 0, False),
    ("tcp_syn:80", N + "1", N + "1", "synack", -1, 0, False),
    *[(f"tcp_syn:{p}", N + "1", N + "1", "rst", -1, 0, False) for p in (22, 23, 443, 7547)],
    ("udp_dns", N + "1", N + "1", "icmp_unreach", 3, 0, False),
    *[
        (f"tcp_syn:{p}", N + "2", N + "2", "synack", -1, 0, False)
        for p in ("22", "23", "80", "443", "7547", "random")
    ],
    ("tcp_syn:22", N + "3", N + "3", "rst", -1, 0, False),
    ("udp_dns", N + "4", N + "4", "udp", -1, 0, False),
    ("udp_ntp", N + "4", N + "4", "udp", -1, 0, True),
    ("icmp_echo", "198.18.1.5", N + "254", "icmp_unreach", 1, 0, False),
    ("udp_ntp", N + "6", N + "6", "icmp_unreach", 3, 0, False),
    ("icmp_echo", N + "7", N + "7", "echo_reply", -1, 1, False),
    ("icmp_echo", N + "8", N + "8", "echo_reply", -1, 1, False),
    ("icmp_echo", N + "8", N + "8", "echo_reply", -1, 0, False),
    ("tcp_syn:22", N + "9", N + "9", "icmp_unreach", 13, 0, False),
    ("tcp_syn:443", "198.18.2.9", N + "253", "icmp_unreach", 13, 0, False),
    ("udp_dns", "198.18.3.10", N + "252", "icmp_time_exceeded", 0, 0, False),
    ("tcp_syn:80", N + "11", N + "11", "synack", -1, 0, False),
    ("tcp_syn:23", N + "11", N + "11", "icmp_param_problem", 0, 0, False),
]
