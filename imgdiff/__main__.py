"""``python -m imgdiff``: the same as the ``imgdiff`` command."""

from __future__ import annotations

from imgdiff.cli import run

run()
