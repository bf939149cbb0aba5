"""ONC RPC portmapper (program 100000 version 2) ``DUMP`` with AUTH_NULL; the xid is token
word 0. Valid: an RPC reply (message type 1, accepted or denied) carrying our xid."""

from __future__ import annotations

import struct

import numpy as np
from numpy.typing import NDArray

from liveness.packet.udp_payloads import Patch, UdpPayload, be32

CALL, REPLY = 0, 1
PMAP_PROG, PMAP_VERS, PMAPPROC_DUMP = 100000, 2, 4
AUTH_NULL = struct.pack("!II", 0, 0)  # flavor 0, body length 0


def _check(
    payload: NDArray[np.uint8], payload_len: NDArray[np.int64], tokens: NDArray[np.uint32]
) -> NDArray[np.bool_]:
    ours = be32(payload, 0) == tokens[:, 0]
    reply = (be32(payload, 4) == REPLY) & (be32(payload, 8) <= 1)
    valid: NDArray[np.bool_] = (payload_len >= 12) & ours & reply
    return valid


PAYLOAD = UdpPayload(
    "portmapper",
    struct.pack("!IIIIII", 0, CALL, 2, PMAP_PROG, PMAP_VERS, PMAPPROC_DUMP) + AUTH_NULL * 2,
    port=111,
    description="ONC RPC portmapper DUMP",
    patches=(Patch(0, 4, 0),),
    check=_check,
)
