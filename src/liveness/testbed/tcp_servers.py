"""The real TCP services of the Internet namespace: nginx (HTTP, TLS), sshd (SSH), socat (Telnet).

Each server listens once per family on an *internal* port, :func:`internal_port` (protocol
base + the probed port: HTTP on 80 is 10080, HTTP on 7547 is 17547, SSH on 443 is 30443), on
the wildcard address, so it answers from any address of the range. nftables decides per
address which service a probed port reaches, statelessly and without conntrack: after the
behaviour's chain has let a packet in, the ``service`` map (address -> the behaviour's
``s_NAME`` chain) rewrites its destination port to the internal one, and on the way out the
source port of every packet from an internal port is written back (``rules.py``). So the
accept-and-close listener keeps the probed ports for open-without-service hosts, and one
address can serve HTTP on 22 while another serves SSH there.

Keys and certificates are made at ``up`` in the testbed's state folder (removed at ``down``):
a self-signed EC certificate for TLS (``openssl req -x509``), an Ed25519 host key for SSH
(``ssh-keygen``). Every server is built for scan rates (hundreds of new connections a second,
each ended by the scanner's RST): nginx with large backlogs and no access log, sshd without
re-exec and with ``MaxStartups`` raised, socat forking a child per connection that sends the
Telnet banner and waits (``-T`` idle timeout) for the client to go away.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from liveness.errors import RunError

__all__ = [
    "SERVICE_BASE",
    "TELNET_BANNER",
    "internal_port",
    "nginx_conf",
    "socat_argv",
    "sshd_argv",
    "sshd_conf",
]

SERVICE_BASE = {"http": 10000, "tls": 20000, "ssh": 30000, "telnet": 40000}
"""Protocol -> the base of its internal ports (internal port = base + probed port)."""

TELNET_BANNER = (
    # IAC DO TERMINAL-TYPE, DO TERMINAL-SPEED, DO X-DISPLAY-LOCATION, DO NEW-ENVIRON,
    # IAC WILL ECHO, WILL SUPPRESS-GO-AHEAD: what a BusyBox or BSD telnetd sends first
    b"\xff\xfd\x18\xff\xfd\x20\xff\xfd\x23\xff\xfd\x27\xff\xfb\x01\xff\xfb\x03"
    b"\r\nliveness testbed (emulated CPE)\r\n\r\nlogin: "
)
HTTP_BODY = "liveness testbed HTTP server\\n"
BACKLOG = 65535
SOCAT_IDLE_S = 30  # a Telnet child exits after this long without traffic
SSH_GRACE_S = 10  # an SSH connection that does not authenticate is closed after this long


def internal_port(proto: str, port: int) -> int:
    """The port the server of ``proto`` listens on for the probed ``port``."""
    return SERVICE_BASE[proto] + port


def nginx_conf(work: Path, http: list[int], tls: list[int], ipv6: bool) -> str:
    """nginx's whole configuration: HTTP on the internal ports of ``http``, TLS (and HTTP
    inside it) on those of ``tls``; every file it writes is in ``work``."""
    listens = []
    for ports, ssl in ((http, ""), (tls, " ssl")):
        for port in ports:
            inner = internal_port("tls" if ssl else "http", port)
            listens.append(f"listen {inner}{ssl} backlog={BACKLOG};")
            if ipv6:
                listens.append(f"listen [::]:{inner}{ssl} ipv6only=on backlog={BACKLOG};")
    temp = work / "nginx"
    paths = "".join(
        f"    {kind}_temp_path {temp / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    body = "".join(f"        {line}\n" for line in listens)
    return (
        "daemon off;\nmaster_process on;\nworker_processes 2;\n"
        f"pid {work / 'nginx.pid'};\nerror_log {work / 'nginx.log'} error;\n"
        "worker_rlimit_nofile 65536;\n"
        "events {\n    worker_connections 16384;\n    multi_accept on;\n}\n"
        "http {\n    access_log off;\n    keepalive_timeout 5;\n"
        + paths
        + f"    ssl_certificate {work / 'tls.crt'};\n"
        f"    ssl_certificate_key {work / 'tls.key'};\n"
        "    server {\n" + body + "        server_name _;\n        default_type text/plain;\n"
        f'        location / {{\n            return 200 "{HTTP_BODY}";\n        }}\n'
        "    }\n}\n"
    )


def sshd_conf(work: Path, ports: list[int], ipv6: bool) -> str:
    """sshd's configuration: the internal ports of ``ports``, a host key from ``work``, and
    nobody can log in (no authentication method is offered to anyone)."""
    listens = [f"ListenAddress 0.0.0.0:{internal_port('ssh', p)}\n" for p in ports]
    if ipv6:
        listens += [f"ListenAddress [::]:{internal_port('ssh', p)}\n" for p in ports]
    return "".join(listens) + (
        f"HostKey {work / 'ssh_host_ed25519_key'}\n"
        f"PidFile {work / 'sshd.pid'}\n"
        "UsePAM no\nUseDNS no\nPermitRootLogin no\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPubkeyAuthentication no\nAuthorizedKeysFile none\n"
        "DenyUsers *\nAllowTcpForwarding no\nX11Forwarding no\nPermitTunnel no\n"
        f"LoginGraceTime {SSH_GRACE_S}\nMaxStartups 10000\nPerSourceMaxStartups none\n"
        "LogLevel ERROR\n"
    )


def sshd_argv(conf: Path) -> list[str]:
    """sshd in the foreground, logging to stderr, without re-exec per connection (cheaper at
    scan rates); by absolute path, as sshd requires."""
    sshd = shutil.which("sshd")
    if sshd is None:
        raise RunError("testbed: sshd is missing (apt-get install openssh-server)")
    return [sshd, "-D", "-e", "-r", "-f", str(conf)]


def socat_argv(banner: Path, port: int, ipv6: bool) -> list[str]:
    """One socat listening for Telnet on the internal port of ``port`` in one family: each
    connection gets the banner file, then waits (input discarded) until the client leaves."""
    listen = (
        f"TCP6-LISTEN:{internal_port('telnet', port)},ipv6only=1"
        if ipv6
        else f"TCP4-LISTEN:{internal_port('telnet', port)}"
    )
    return [
        "socat",
        "-T",
        str(SOCAT_IDLE_S),
        f"{listen},fork,reuseaddr,backlog={BACKLOG}",
        f"OPEN:{banner},rdonly,ignoreeof!!OPEN:/dev/null,wronly",
    ]
