"""construct declaration of the LUKS2 binary header (cryptsetup's ``struct luks2_hdr_disk``).

Declarations only; :mod:`imgdiff.formats.luks2` turns them into nodes.  Field names are cryptsetup's; integers are
big-endian on disk.

References:
    cryptsetup lib/luks2/luks2.h (``struct luks2_hdr_disk``, 4096 bytes, followed by the JSON area);
    LUKS2 On-Disk Format Specification version 1.1.x, section 2 (binary header) and 3 (JSON area).
"""

from __future__ import annotations

import construct as c

LUKS2_MAGIC_1ST = b"LUKS\xba\xbe"
LUKS2_MAGIC_2ND = b"SKUL\xba\xbe"
LUKS2_HDR_BIN_LEN = 4096
LUKS2_HDR_OFFSETS = (0x4000, 0x8000, 0x10000, 0x20000, 0x40000, 0x80000, 0x100000, 0x200000, 0x400000)
"""Where the secondary header may start (the allowed header sizes: 16 KiB .. 4 MiB)."""

LUKS2_HDR_DISK = c.Struct(
    "magic" / c.Bytes(6),
    "version" / c.Int16ub,
    "hdr_size" / c.Int64ub,
    "seqid" / c.Int64ub,
    "label" / c.Bytes(48),
    "checksum_alg" / c.Bytes(32),
    "salt" / c.Bytes(64),
    "uuid" / c.Bytes(40),
    "subsystem" / c.Bytes(48),
    "hdr_offset" / c.Int64ub,
    "_padding" / c.Bytes(184),
    "csum" / c.Bytes(64),
    "_padding4096" / c.Bytes(7 * 512),
)
