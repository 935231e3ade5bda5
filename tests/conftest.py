"""Shared test fixtures: fixture image pairs (decompressed once per session) and analysis helpers."""

from __future__ import annotations

import lzma
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAIRS = ROOT / "fixtures" / "pairs"


def _unpack(xz: Path, dest: Path) -> Path:
    """Decompress ``xz`` to ``dest`` writing zero blocks as holes, so 1 GiB fixtures stay cheap."""
    if dest.exists() and dest.stat().st_mtime >= xz.stat().st_mtime:
        return dest
    tmp = dest.with_suffix(".part")
    with lzma.open(xz) as src, open(tmp, "wb") as out:
        while True:
            block = src.read(1 << 16)
            if not block:
                break
            if block.count(0) == len(block):
                out.seek(len(block), 1)
            else:
                out.write(block)
        out.truncate()
    tmp.rename(dest)
    return dest


def pair_paths(name: str, cache: Path) -> tuple[Path, Path]:
    """Return the (a, b) image paths of fixture pair ``name``, unpacked into ``cache``."""
    d = PAIRS / name
    if not d.is_dir():
        raise FileNotFoundError(f"no fixture pair {name!r} under {PAIRS}")
    out = cache / name
    out.mkdir(parents=True, exist_ok=True)
    return _unpack(d / "a.img.xz", out / "a.img"), _unpack(d / "b.img.xz", out / "b.img")


@pytest.fixture(scope="session")
def pair_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Directory where fixture pairs are unpacked for this test session."""
    return tmp_path_factory.mktemp("pairs")


@pytest.fixture(scope="session")
def pair(pair_cache: Path):  # type: ignore[no-untyped-def]
    """Return a function ``pair(name) -> (Path a, Path b)``."""

    def get(name: str) -> tuple[Path, Path]:
        return pair_paths(name, pair_cache)

    return get


@pytest.fixture(scope="session")
def analyzed(pair):  # type: ignore[no-untyped-def]
    """Return a cached function ``analyzed(name, seed=None) -> Report``."""
    from imgdiff.engine.analysis import analyze

    cache: dict[tuple[str, str | None], object] = {}

    def get(name: str, seed: str | None = None):  # type: ignore[no-untyped-def]
        key = (name, seed)
        if key not in cache:
            a, b = pair(name)
            cache[key] = analyze(a, b, seed=seed)
        return cache[key]

    return get


def all_pairs() -> list[str]:
    """Return the names of every fixture pair."""
    return sorted(p.name for p in PAIRS.iterdir() if (p / "a.img.xz").exists())


def have(tool: str) -> bool:
    """Return True when ``tool`` is on PATH."""
    return shutil.which(tool) is not None
