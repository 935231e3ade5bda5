"""dissect.extfs and dissect.fat as independent oracles for imgdiff's ext4 and FAT parsers, on every fixture image.

For each image of each pair, every ext4 and FAT filesystem imgdiff finds (bare or in a GPT partition) is opened a
second time with dissect at the same offset, and the two readers must agree path by path (ext4: paths, inode
numbers, i_mode, uid/gid, link counts, sizes, symlink targets, xattrs, content SHA-256; FAT: paths, DIR_Attr,
sizes, first clusters, raw times, content SHA-256).  The comparison lives in ``tests/oracles/crosscheck.py``,
which also lists the dissect gaps it works around.  ``FILESYSTEMS`` holds the literal number of paths compared
per filesystem, so the test cannot pass by comparing nothing; ``DISSECT_GAPS`` lists, literally, the few
disagreements that are dissect's known limitations.  Compressed inputs are read decompressed, as imgdiff reads
them.  What the same comparison found on e2fsprogs' test images is in ``tests/oracles/E2FSPROGS.md``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import all_pairs
from .oracles.crosscheck import Disagreement, FsResult, Values, compare, crosscheck_image

# (format, byte offset, paths both readers list) per filesystem, the same in A and B unless given per side.
FILESYSTEMS: dict[str, tuple[tuple[str, int, int], ...] | dict[str, tuple[tuple[str, int, int], ...]]] = {
    "compressed-gzip-mtime": (("vfat", 0, 4),),  # the same FAT image inside both compressed files
    "compressed-xz-extreme": (("vfat", 0, 4),),
    "compressed-xz-threads": (("vfat", 0, 4),),
    "compressed-xz-vfat": (("vfat", 0, 11),),  # read decompressed, as imgdiff reads it
    "compressed-zstd-level": (("vfat", 0, 4),),
    "compressed-zstd-ext4": (("ext4", 0, 7),),
    "content-formats": (("vfat", 1 << 20, 7), ("ext4", 35 << 20, 24)),
    "ext4-defaults": (("ext4", 0, 40),),
    "ext4-device-number": (("ext4", 0, 7),),
    "ext4-file-attrs": (("ext4", 0, 8),),
    "ext4-file-content": (("ext4", 0, 7),),
    "ext4-file-mtime": (("ext4", 0, 8),),
    "ext4-hardlinks": (("ext4", 0, 12),),
    "ext4-hash-seed": (("ext4", 0, 7),),
    "ext4-htree": (("ext4", 0, 405),),
    "ext4-inline-data": (("ext4", 0, 3),),  # dissect cannot list the inline /etc: see DISSECT_GAPS
    "ext4-kernel": (("ext4", 0, 29),),
    "ext4-random-uuid": (("ext4", 0, 429),),
    "ext4-label": (("ext4", 0, 4),),
    "ext4-order": (("ext4", 0, 10),),
    "ext4-owner-mode": (("ext4", 0, 8),),
    "ext4-resize-grown": (("ext4", 0, 7),),
    "ext4-shifted": {"a": (("ext4", 0, 14),), "b": (("ext4", 0, 15),)},  # B holds one more file
    "ext4-staging-many": (("ext4", 0, 282),),
    "ext4-staging-htree": (("ext4", 0, 628),),
    "ext4-staging-nocsum": (("ext4", 0, 115),),
    "ext4-staging-times": (("ext4", 0, 22),),
    "ext4-stale-free": (("ext4", 0, 4),),
    "ext4-symlink-target": (("ext4", 0, 8),),
    "ext4-tree-mtimes": (("ext4", 0, 22),),
    "ext4-xattr": (("ext4", 0, 7),),
    # the ESP appended to the ISO as GPT partition 2 (xorriso -append_partition), at 2 MiB
    "iso-content": (("vfat", 2 << 20, 4),),
    "iso-eltorito": (("vfat", 2 << 20, 4),),
    "iso-esp-volid": (("vfat", 2 << 20, 4),),
    "iso-file-mtime": (("vfat", 2 << 20, 4),),
    "iso-gpt-guid": (("vfat", 2 << 20, 4),),
    "iso-no-sde": (("vfat", 2 << 20, 4),),
    "iso-sde-dates": (("vfat", 2 << 20, 4),),
    "iso-sort-weight": (("vfat", 2 << 20, 4),),
    "iso-walk-order": (("vfat", 2 << 20, 4),),
    "nested-esp-zstd-initrd": (("vfat", 1 << 20, 7),),
    # the FAT image inside /boot/efi.img is parsed by the engine only when two images are compared: not checked
    "nested-ext4-vfat": (("ext4", 0, 6),),
    # an empty ESP: only the volume label entry, which is not a path
    "repart-esp-root-random": (("vfat", 1 << 20, 0), ("ext4", 41 << 20, 47)),
    "repart-esp-root-seeded": (("vfat", 1 << 20, 0), ("ext4", 41 << 20, 47)),
    "report-esp-root": (("vfat", 1 << 20, 7), ("ext4", 35 << 20, 10)),
    "squashfs-in-ext4": (("ext4", 0, 5),),
    "squashfs-in-iso": (("vfat", 2 << 20, 4),),  # the squashfs inside is cross-checked by tests/test_squashfs.py
    "verity-data-byte": (("ext4", 1 << 20, 7),),  # the dm-verity data partition's ext4
    "verity-repart-salt": (("ext4", 1 << 20, 7),),
    "vfat-build-clock": (("vfat", 0, 11),),
    "vfat-deleted": (("vfat", 0, 5),),
    "vfat-dirtimes": (("vfat", 0, 11),),
    "vfat-fat12-filetimes": (("vfat", 0, 11),),
    "vfat-fat16-content": {"a": (("vfat", 0, 11),), "b": (("vfat", 0, 12),)},
    "vfat-file-grows": (("vfat", 0, 11),),
    "vfat-file-mtime-hour": (("vfat", 0, 11),),
    "vfat-geometry": (("vfat", 0, 11),),
    "vfat-geometry-content": {"a": (("vfat", 0, 11),), "b": (("vfat", 0, 13),)},
    "vfat-label-time": (("vfat", 0, 11),),
    "vfat-order": (("vfat", 0, 13),),
    "vfat-regenerated-file": (("vfat", 0, 11),),
    "vfat-repart-seeds": (("vfat", 1 << 20, 0),),
    "vfat-stale-free": (("vfat", 0, 5),),
    "vfat-tz": (("vfat", 0, 11),),
    "vfat-volid": (("vfat", 0, 11),),
}
DISSECT_GAPS: dict[str, set[tuple[str, str, object, object]]] = {
    # dissect.extfs reads an inline-data directory's i_block as a dirent block: the parent inode number at its
    # start becomes an entry with an empty name, and the real entries are lost (both images)
    "ext4-inline-data": {
        ("/etc/", "path", "present", "absent"),
        ("/etc/big", "path", "absent", "present"),
        ("/etc/os-release", "path", "absent", "present"),
        ("/etc/small", "path", "absent", "present"),
    },
}
"""Disagreements that are dissect's known gaps (see tests/oracles/E2FSPROGS.md), listed literally per pair."""
MIN_FIELDS = {"ext4": 6, "vfat": 5}
"""Fields compared on every path at least (ext4: ino, mode, uid, gid, links, size; FAT: type, attr, cluster, times)."""


def _expected(name: str, side: str) -> tuple[tuple[str, int, int], ...]:
    exp = FILESYSTEMS[name]
    return exp[side] if isinstance(exp, dict) else exp


def _table(results: list[FsResult]) -> str:
    rows = [f"{r.fmt}@{r.base}: {d.path} {d.field}: dissect {d.dissect!r} vs imgdiff {d.imgdiff!r}"
            for r in results for d in r.disagreements[:20]]
    return "\n".join(rows)


def test_every_listed_pair_exists() -> None:
    assert set(FILESYSTEMS) <= set(all_pairs())


NO_FILESYSTEM = sorted(set(all_pairs()) - set(FILESYSTEMS))
"""Every other pair: it must hold no ext4 or FAT filesystem (a new pair that does fails until it is listed above,
with its path counts); the formats without one (GPT alone, erofs, LUKS2, btrfs, squashfs, ISO without an ESP) are
cross-checked by their own tests."""


@pytest.mark.parametrize("name", sorted(FILESYSTEMS))
def test_dissect_agrees_with_imgdiff(pair, name: str) -> None:  # type: ignore[no-untyped-def]
    for side, path in zip("ab", pair(name), strict=True):
        results = crosscheck_image(path)
        got = tuple((r.fmt, r.base, r.paths) for r in results)
        assert got == _expected(name, side), f"{name}/{side}: filesystems and paths compared"
        got_dis = {(d.path, d.field, d.dissect, d.imgdiff) for r in results for d in r.disagreements}
        assert got_dis == DISSECT_GAPS.get(name, set()), f"{name}/{side}:\n{_table(results)}"
        for r in results:
            assert r.dissect_errors == [] and r.imgdiff_errors == [], (r.dissect_errors, r.imgdiff_errors)
            assert r.skipped == []  # every fixture has 256-byte inodes: nothing is left out
            assert r.fields >= MIN_FIELDS[r.fmt] * r.paths


@pytest.mark.parametrize("name", NO_FILESYSTEM)
def test_no_filesystem_found(pair, name: str) -> None:  # type: ignore[no-untyped-def]
    for path in pair(name):
        assert crosscheck_image(Path(path)) == []


def test_compare_reports_every_kind_of_disagreement() -> None:
    theirs: dict[str, Values] = {"/": {"ino": 2}, "/a": {"ino": 12, "mode": 0o100644}, "/only-dissect": {"ino": 13}}
    ours: dict[str, Values] = {"/": {"ino": 2}, "/a": {"ino": 12, "mode": 0o100600, "xattr:user.x": b"1"},
                               "/only-imgdiff": {"ino": 14}}
    res = FsResult("ext4", 0, 0, 0, 0)
    compare(theirs, ours, res)
    assert res.paths == 2 and res.fields == 4
    assert res.disagreements == [
        Disagreement("/a", "mode", 0o100644, 0o100600),
        Disagreement("/a", "xattr:user.x", "<absent>", b"1"),
        Disagreement("/only-dissect", "path", "present", "absent"),
        Disagreement("/only-imgdiff", "path", "absent", "present"),
    ]
