"""Files: each regular file's cluster chain split into its data, the slack up to the cluster end, and surplus clusters.

The ``vfat.file`` node (key: the file's path) owns the file's clusters: ``data`` (the first DIR_FileSize bytes, in
chain order; valued by their SHA-256, so the engine runs the content recognisers on it), ``slack`` (the rest of the
last cluster; all-zero slack is declared derived from the data, whose length places it) and ``excess`` clusters
the chain holds past DIR_FileSize.

References:
    Microsoft FAT specification (fatgen103), section 6 (DIR_FstClusHI/DIR_FstClusLO, DIR_FileSize) and section 4
    (cluster chains).
"""

from __future__ import annotations

import hashlib

from imgdiff.formats.vfat.volume import Volume
from imgdiff.model import Derived, Extent, Field, Node, Value


def file_node(vol: Volume, path: str, first: int, fsize: int) -> tuple[Extent, ...]:
    """Build the file node of ``path``; return the extents of its data (for the entry's DIR_FileSize)."""
    vol.files += 1
    attrs: dict[str, Value] = {"path": path, "content": True, "size": fsize, "first_cluster": first}
    node = Node(kind="vfat.file", key=path, label=f"file {path}", attrs=attrs)
    runs: list[list[int]] = []
    if first != 0:
        runs = vol.chain(first, vol.owner_id(path), f"file {path}")
    elif fsize:
        vol.errors.append(f"file {path}: DIR_FileSize {fsize} but no first cluster")
    exts = vol.cluster_ext(runs)
    have = sum(e.length for e in exts)
    if have < fsize:
        vol.errors.append(f"file {path}: chain holds {have} bytes but DIR_FileSize is {fsize}")
        node.errors.append(vol.errors[-1])
    data, rest = split(exts, fsize)
    needed = -(-fsize // vol.csize) * vol.csize if fsize else 0
    slack, excess = split(rest, max(0, needed - fsize))
    data_c, slack_c, excess_c = vol.clip(data), vol.clip(slack), vol.clip(excess)
    fields = [Field("data", vol.hash_extents(data), data_c, f"{fsize} bytes")]
    nz = 0
    if slack_c:
        blob = b"".join(vol.ctx.read(e.offset, e.length) for e in slack_c)
        nz = len(blob) - blob.count(0)
        fields.append(
            Field(
                "slack",
                hashlib.sha256(blob).hexdigest(),
                slack_c,
                f"{len(blob)} bytes" + (f", {nz} non-zero" if nz else ", all zero"),
            )
        )
    if excess_c:
        n = sum(e.length for e in excess_c)
        fields.extend(vol.area("excess", excess_c, lambda n: f"{n // vol.csize} clusters past DIR_FileSize"))
        vol.errors.append(f"file {path}: chain is {n // vol.csize} cluster(s) longer than DIR_FileSize")
    node.fields = tuple(fields)
    node.extents = vol.clip(exts)
    if slack_c and data_c and not nz:
        # all-zero slack carries nothing of its own: where it starts and ends is the data's length
        node.derived = (Derived("slack", covers=data_c),)
    attrs["clusters"] = sum(r[1] for r in runs)
    vol.nodes.append(node)
    return data_c


def split(exts: list[Extent], n: int) -> tuple[list[Extent], list[Extent]]:
    """Return the first ``n`` bytes of ``exts`` and the rest, as two extent lists."""
    head: list[Extent] = []
    rest: list[Extent] = []
    for e in exts:
        if n <= 0:
            rest.append(e)
        elif e.length <= n:
            head.append(e)
            n -= e.length
        else:
            head.append(Extent(e.offset, n))
            rest.append(Extent(e.offset + n, e.length - n))
            n = 0
    return head, rest
