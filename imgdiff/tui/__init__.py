"""The interactive diff browser (``imgdiff tui``), built on Textual.

:func:`imgdiff.tui.app.run` is the entry point; the package only reads a finished
:class:`~imgdiff.model.Report` (and raw bytes at given offsets for the hex view).
"""

from __future__ import annotations

__all__ = ["run"]


def run(a: str, b: str | None, seed: str | None = None, rules_dir: str | None = None) -> int:
    """Run the browser; see :func:`imgdiff.tui.app.run`."""
    from imgdiff.tui.app import run as _run

    return _run(a, b, seed=seed, rules_dir=rules_dir)
