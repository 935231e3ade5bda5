"""The whole pipeline for one pair: compare bytes -> parse both -> attribute -> explain -> :class:`Report`."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Iterator
from pathlib import Path

from imgdiff.engine.attribute import Attributor
from imgdiff.engine.explain import explain
from imgdiff.formats import image_format, parse_image
from imgdiff.formats.base import ParseContext
from imgdiff.model import Change, Difference, Extent, ImageInfo, Report, Summary, merge_extents
from imgdiff.ruleset.predicates import ExplainContext
from imgdiff.ruleset.schema import RuleSet, load_rules
from imgdiff.source import ImageSource, compare_regions

Progress = Callable[[str, int, int], None]


def analyze(
    path_a: str | Path,
    path_b: str | Path,
    *,
    seed: str | None = None,
    rules: RuleSet | None = None,
    progress: Progress | None = None,
    context: dict[str, str] | None = None,
) -> Report:
    """Compare two images and return the explained report (raises ImgdiffError on unreadable input)."""
    rules = rules or load_rules()
    with gc_paused(), ImageSource(str(path_a)) as src_a, ImageSource(str(path_b)) as src_b:
        common = min(src_a.size, src_b.size)
        longest = max(src_a.size, src_b.size)

        def step(done: int, total: int) -> None:
            if progress is not None:
                progress("comparing", done, total)

        dm = compare_regions(src_a, src_b, 0, 0, common, step)
        if longest > common:
            dm.add_run(common, longest)
        if progress is not None:
            progress("parsing", 0, 2)
        ctx_a = ParseContext(src=src_a, diff=dm, side="a", options={"seed": seed})
        tree_a = parse_image(ctx_a)
        if progress is not None:
            progress("parsing", 1, 2)
        ctx_b = ParseContext(src=src_b, diff=dm, side="b", options={"seed": seed})
        tree_b = parse_image(ctx_b)
        def stage(name: str) -> Callable[[int, int], None] | None:
            if progress is None:
                return None
            report_to = progress
            return lambda done, total: report_to(name, done, total)

        given = [_size_difference(src_a.size, src_b.size, common, longest)] if src_a.size != src_b.size else []
        diffs = Attributor(tree_a, tree_b, dm, src_a, src_b).run(given, stage("attributing")) if dm.total else []
        ectx = ExplainContext(options={"seed": seed}, tree_a=tree_a, tree_b=tree_b)
        findings = explain(diffs, rules, ectx, dm, stage("explaining"))
        raw = merge_extents([e for d in diffs if d.change == Change.RAW for e in d.extents_a])
        summary = Summary(
            bytes_compared=longest,
            bytes_differing=dm.total,
            bytes_unexplained=sum(dm.count_in(e) for e in raw),
        )
        errors = [f"A: {m}" for m in dict.fromkeys(ctx_a.errors)] + [f"B: {m}" for m in dict.fromkeys(ctx_b.errors)]
        return Report(
            a=ImageInfo(str(path_a), src_a.size, image_format(tree_a)),
            b=ImageInfo(str(path_b), src_b.size, image_format(tree_b)),
            summary=summary,
            findings=findings,
            errors=errors,
            tree_a=tree_a,
            tree_b=tree_b,
            context=dict(context or {}, **({"seed": seed} if seed else {})),
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
