"""Named checks that rules may use beyond globs, and annotations that add a verdict to a finding.

A predicate is ``fn(diff, ctx) -> bool``; an annotation is ``fn(finding, ctx) -> str``.  Both are registered by
function name and referenced from rule TOML (``[match] predicate = "name"``, ``annotate = "name"``).  Format
specific ones live in ``predicates_<format>.py`` modules, imported by :func:`load_all`.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from imgdiff.model import Difference, Finding, Node
    from imgdiff.source import DiffMap

Predicate = Callable[["Difference", "ExplainContext"], bool]
Annotation = Callable[["Finding", "ExplainContext"], str]

PREDICATES: dict[str, Predicate] = {}
ANNOTATIONS: dict[str, Annotation] = {}


@dataclass(slots=True)
class ExplainContext:
    """What predicates and annotations may look at: all differences, the options, the parsed trees."""

    differences: list[Difference] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    tree_a: Node | None = None
    tree_b: Node | None = None
    cache: dict[str, Any] = field(default_factory=dict)
    """Scratch space for predicates that compute something once per comparison."""
    diffmap: DiffMap | None = None
    """The byte comparison (A offsets; ``delta`` maps them to B), for checks on which bytes really differ."""


def predicate(fn: Predicate) -> Predicate:
    """Register ``fn`` as a rule predicate under its function name."""
    PREDICATES[fn.__name__] = fn
    return fn


def annotation(fn: Annotation) -> Annotation:
    """Register ``fn`` as a finding annotation under its function name."""
    ANNOTATIONS[fn.__name__] = fn
    return fn


def load_all() -> None:
    """Import every ``imgdiff.ruleset.predicates_*`` module so their checks are registered."""
    import imgdiff.ruleset as pkg

    for mod in pkgutil.iter_modules(pkg.__path__):
        if mod.name.startswith("predicates_"):
            importlib.import_module(f"imgdiff.ruleset.{mod.name}")
