"""The packet codec: frame layout, structured views, checksums and application payloads.

Everything here works on numpy batches; no per-packet Python objects.
"""

from liveness.packet.checksum import checksum_bytes, checksum_rows, finish, partial_sum
from liveness.packet.layout import field_view, mac_bytes, mac_text, struct_dtype

__all__ = [
    "checksum_bytes",
    "checksum_rows",
    "field_view",
    "finish",
    "mac_bytes",
    "mac_text",
    "partial_sum",
    "struct_dtype",
]
