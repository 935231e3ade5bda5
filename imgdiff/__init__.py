"""imgdiff: explain why two Linux disk images differ, down to the on-disk field, and who should fix it."""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
