"""The whole pipeline for one pair: compare bytes -> parse both -> attribute -> explain -> :class:`Report`."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Iterator
from pathlib import Path

from imgdiff.engine.attribute import Attributor, count_bytes
from imgdiff.engine.explain import explain
from imgdiff.engine.nesting import Nester
from imgdiff.engine.spaces import SpaceTable
from imgdiff.engine.stored import compare_stored
from imgdiff.formats import image_format, parse_image
from imgdiff.formats.base import ParseContext
from imgdiff.model import Change, Difference, Extent, ImageInfo, Report, SpaceInfo, Summary, merge_extents
from imgdiff.ruleset.predicates import ExplainContext
from imgdiff.ruleset.schema import RuleSet, load_rules
from imgdiff.source import LayeredSource, compare_regions
from imgdiff.streams import open_input

Progress = Callable[[str, int, int], None]


def analyze(
    path_a: str | Path,
    path_b: str | Path,
    *,
    seed: str | None = None,
    rules: RuleSet | None = None,
    progress: Progress | None = None,
    context: dict[str, str] | None = None,
    keep_open: bool = False,
) -> Report:
    """Compare two images and return the explained report (raises ImgdiffError on unreadable input).

    zstd/xz/gzip/bzip2-compressed inputs are decompressed first (into unnamed sparse scratch files under
    ``$TMPDIR``); every byte count then refers to the decompressed images.  With ``keep_open`` the report's
    ``sources`` stay readable (the TUI and hex excerpts read decoded bytes through them) until
    :meth:`Report.close`.
    """
    rules = rules or load_rules()
    src_a = open_input(str(path_a))
    try:
        src_b = open_input(str(path_b))
    except BaseException:
        src_a.close()
        raise
    layered = {"a": LayeredSource(src_a), "b": LayeredSource(src_b)}
    try:
        with gc_paused():
            report = _analyze(layered, str(path_a), str(path_b), seed, rules, progress, context)
    except BaseException:
        _close(layered)
        raise
    if keep_open:
        report.sources = (layered["a"], layered["b"])
    else:
        _close(layered)
    return report


def _close(layered: dict[str, LayeredSource]) -> None:
    for src in layered.values():
        src.close()
        src.base.close()


def _analyze(
    layered: dict[str, LayeredSource],
    path_a: str,
    path_b: str,
    seed: str | None,
    rules: RuleSet,
    progress: Progress | None,
    context: dict[str, str] | None,
) -> Report:
    src_a, src_b = layered["a"], layered["b"]
    common = min(src_a.size, src_b.size)
    longest = max(src_a.size, src_b.size)

    def stage(name: str) -> Callable[[int, int], None] | None:
        if progress is None:
            return None
        report_to = progress
        return lambda done, total: report_to(name, done, total)

    dm = compare_regions(src_a, src_b, 0, 0, common, stage("comparing"))
    if longest > common:
        dm.add_run(common, longest)
    if progress is not None:
        progress("parsing", 0, 2)
    table = SpaceTable(dict(layered), dm)
    ctx_a = ParseContext(src=src_a, diff=dm, side="a", options={"seed": seed}, spaces=table)
    tree_a = parse_image(ctx_a)
    if progress is not None:
        progress("parsing", 1, 2)
    ctx_b = ParseContext(src=src_b, diff=dm, side="b", options={"seed": seed}, spaces=table)
    tree_b = parse_image(ctx_b)
    Nester({"a": tree_a, "b": tree_b}, {"a": ctx_a, "b": ctx_b}, table, dm, stage("nested images")).run()

    given = [_size_difference(src_a.size, src_b.size, common, longest)] if src_a.size != src_b.size else []
    kind_a, kind_b = getattr(src_a.base, "decompressed", ""), getattr(src_b.base, "decompressed", "")
    damaged = bool(getattr(src_a.base, "decode_error", "") or getattr(src_b.base, "decode_error", ""))
    stored = compare_stored(path_a, kind_a, path_b, kind_b, dm.total == 0 and src_a.size == src_b.size,
                            damaged) if kind_a and kind_b else []
    diffs = Attributor(tree_a, tree_b, dm, src_a, src_b).run(given, stage("attributing")) if dm.total else given
    diffs.extend(stored)
    ectx = ExplainContext(options={"seed": seed}, tree_a=tree_a, tree_b=tree_b)
    findings = explain(diffs, rules, ectx, dm, stage("explaining"))
    raw = merge_extents([e for d in diffs if d.change == Change.RAW for e in d.extents_a])
    summary = Summary(
        bytes_compared=longest,
        bytes_differing=dm.total,
        bytes_unexplained=count_bytes(dm, raw, ()),
    )
    errors = [f"A: {m}" for m in dict.fromkeys(ctx_a.errors)] + [f"B: {m}" for m in dict.fromkeys(ctx_b.errors)]
    decode_errors = [
        f"{side}: {err}; the decompressed part was compared"
        for side, src in (("A", src_a.base), ("B", src_b.base))
        if (err := getattr(src, "decode_error", ""))
    ]
    errors = decode_errors + errors
    return Report(
        a=ImageInfo(path_a, src_a.size, image_format(tree_a), getattr(src_a.base, "decompressed", "")),
        b=ImageInfo(path_b, src_b.size, image_format(tree_b), getattr(src_b.base, "decompressed", "")),
        summary=summary,
        findings=findings,
        errors=errors,
        tree_a=tree_a,
        tree_b=tree_b,
        context=dict(context or {}, **({"seed": seed} if seed else {})),
        spaces=[SpaceInfo(sp.base, sp.label, dict(sp.sizes)) for sp in table.spaces],
    )


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a comparison builds millions of long-lived objects.

    Parsers create a few tuples per on-disk field and keep nearly all of them (the report holds both trees), so
    the collector's generational passes would only re-scan live objects: on an ext4 image with tens of thousands
    of differing inodes that was ~40% of the run time.  Reference counting still frees everything acyclic; the
    little cyclic garbage made meanwhile is collected by a later full collection.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            # Everything made meanwhile still sits in the youngest generation, so the first collection after
            # enabling would traverse all of it (~1.4 s on ext4-1g-20k-rebuilt).  It survived this long: move it
            # straight to the oldest generation (freeze, then unfreeze into generation 2) without a pass.
            gc.freeze()
            gc.enable()
            gc.unfreeze()


def _size_difference(size_a: int, size_b: int, common: int, longest: int) -> Difference:
    """Return the image-size difference; it owns the tail that only the longer image has."""
    tail = (Extent(common, longest - common),)
    return Difference(
        node_path="disk",
        kind="image",
        field="size",
        change=Change.MODIFIED,
        a=size_a,
        b=size_b,
        extents_a=tail if size_a > size_b else (),
        extents_b=tail if size_b > size_a else (),
        location="image",
        scope="disk",
        display_a=f"{size_a} bytes",
        display_b=f"{size_b} bytes",
    )


__all__ = ["Extent", "analyze"]
