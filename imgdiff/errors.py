"""Exceptions imgdiff raises; the CLI turns every one of them into a one-line message and exit 2."""

from __future__ import annotations


class ImgdiffError(Exception):
    """Base class of every error imgdiff reports to the user."""


class ImageError(ImgdiffError):
    """An input image cannot be opened or read."""


class ParseError(ImgdiffError):
    """A structure is malformed; carries the offset and field where parsing stopped."""

    def __init__(self, message: str, offset: int | None = None, field: str | None = None) -> None:
        where = f" at 0x{offset:x}" if offset is not None else ""
        what = f" ({field})" if field else ""
        super().__init__(f"{message}{what}{where}")
        self.offset = offset
        self.field = field


class RuleError(ImgdiffError):
    """A rule file under rules/ is invalid."""
