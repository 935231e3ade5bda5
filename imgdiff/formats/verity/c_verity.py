"""construct declaration of the dm-verity hash device superblock (cryptsetup's ``struct verity_sb``).

Declarations only; :mod:`imgdiff.formats.verity` turns them into nodes.  Field names are cryptsetup's.

References:
    cryptsetup lib/verity/verity.c (``struct verity_sb``: 512 bytes at the start of the hash device, all integers
    little-endian); https://gitlab.com/cryptsetup/cryptsetup/-/wikis/DMVerity (on-disk format).
"""

from __future__ import annotations

import construct as c

VERITY_SIGNATURE = b"verity\x00\x00"
VERITY_SB_SIZE = 512

VERITY_SB = c.Struct(
    "signature" / c.Bytes(8),
    "version" / c.Int32ul,
    "hash_type" / c.Int32ul,
    "uuid" / c.Bytes(16),
    "algorithm" / c.Bytes(32),
    "data_block_size" / c.Int32ul,
    "hash_block_size" / c.Int32ul,
    "data_blocks" / c.Int64ul,
    "salt_size" / c.Int16ul,
    "_pad1" / c.Bytes(6),
    "salt" / c.Bytes(256),
    "_pad2" / c.Bytes(168),
)

HASH_TYPES = {0: "Chrome OS (data then salt)", 1: "normal (salt then data)"}
