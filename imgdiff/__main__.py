"""``python -m imgdiff``: the same as the ``imgdiff`` command."""

from __future__ import annotations

import sys

from imgdiff.cli import main

sys.exit(main())
