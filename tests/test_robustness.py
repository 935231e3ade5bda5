"""Bad input end to end: not-an-image paths, truncated images whose signature survives, hostile file names,
bad ``--rules`` and argument errors.  Each gets exit 2 with one line, or a partial result saying what is missing;
never a traceback, never a hang.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def run(*args: str, env: dict[str, str] | None = None, **kw: object) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-m", "imgdiff", *args],
        capture_output=True,
        timeout=60,
        check=False,
        env=None if env is None else {**os.environ, **env},
        **kw,
    )


def one_line_error(r: subprocess.CompletedProcess[bytes]) -> str:
    """Assert exit 2, nothing on stdout and exactly one line on stderr; return that line."""
    assert r.returncode == 2, r.stderr
    assert r.stdout == b""
    err = r.stderr.decode()
    assert err.count("\n") == 1 and err.startswith("imgdiff: error: "), err
    return err[len("imgdiff: error: ") : -1]


def test_fifo_input_exit_2_without_blocking(pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a, _ = pair("vfat-volid")
    fifo = tmp_path / "b.fifo"
    os.mkfifo(fifo)
    # Nobody ever writes to the FIFO: the old open() blocked here until the 60 s timeout.
    msg = one_line_error(run("explain", "--json", str(a), str(fifo)))
    assert msg == f"{fifo}: is a named pipe (FIFO), not an image file; save it to a file first (cmd > a.img) and pass that file"


def test_process_substitution_pipe_exit_2(pair) -> None:  # type: ignore[no-untyped-def]
    """What bash hands the program for ``<(cat a.img)``: a /dev/fd path to the read end of a pipe."""
    a, _ = pair("vfat-volid")
    r, w = os.pipe()
    try:
        os.write(w, a.read_bytes()[:4096])
        msg = one_line_error(run("explain", str(a), f"/dev/fd/{r}", pass_fds=(r,)))
    finally:
        os.close(r)
        os.close(w)
    assert msg == (
        f"/dev/fd/{r}: is a pipe (from <(cmd) or a pipeline), not an image file; "
        "save it to a file first (cmd > a.img) and pass that file"
    )


@pytest.mark.parametrize("dev", ["/dev/zero", "/dev/null"])
def test_character_device_input_exit_2(pair, dev: str) -> None:  # type: ignore[no-untyped-def]
    a, _ = pair("vfat-volid")
    msg = one_line_error(run("explain", dev, str(a)))
    assert msg == f"{dev}: is a character device, not an image file or block device; pass one of those"


def cut(src: Path, dest: Path, length: int) -> Path:
    with open(src, "rb") as fh:
        dest.write_bytes(fh.read(length))
    return dest


@pytest.mark.parametrize(
    ("pair_name", "length", "fmt", "error"),
    [
        (
            "vfat-volid",
            2708,
            "vfat (truncated)",
            "B: vfat boot sector found, but the image ends at 2708 bytes; the volume needs 35651584 bytes (truncated?)",
        ),
        (
            "gpt-geometry",
            1017,
            "gpt (truncated)",
            "B: GPT header found, but the image ends at 1017 bytes; the disk needs 54525952 bytes (truncated?)",
        ),
        (
            "ext4-defaults",
            1777,
            "ext4 (truncated)",
            (
                "B: ext4 superblock found, but the image ends at 1777 bytes; "
                "the filesystem needs 25165824 bytes (truncated?)"
            ),
        ),
        (  # the magic (bytes 1080-1081) survives, s_rev_level does not
            "ext4-defaults",
            1090,
            "ext4 (truncated)",
            (
                "B: ext4 superblock found, but the image ends at 1090 bytes; "
                "the filesystem needs 25165824 bytes (truncated?)"
            ),
        ),
        (  # the GPT signature survives, the header's AlternateLBA does not
            "gpt-geometry",
            530,
            "gpt (truncated)",
            "B: GPT header found, but the image ends at 530 bytes; that is too short for the disk (truncated?)",
        ),
    ],
)
def test_truncated_image_whose_signature_survives(  # type: ignore[no-untyped-def]
    pair, tmp_path: Path, pair_name: str, length: int, fmt: str, error: str
) -> None:
    """Too short for the parser, yet the magic is there: say what was found and what is missing (not `raw`)."""
    from imgdiff.engine.analysis import analyze

    a, b = pair(pair_name)
    rep = analyze(a, cut(b, tmp_path / "b.img", length))
    assert rep.b.format == fmt and rep.a.format == pair_name.split("-")[0]
    assert rep.errors == [error]
    assert rep.summary.bytes_compared == a.stat().st_size


def test_truncated_vfat_that_fails_to_parse_says_both(pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from imgdiff.engine.analysis import analyze

    a, b = pair("vfat-volid")
    rep = analyze(a, cut(b, tmp_path / "b.img", 5000))
    assert rep.b.format == "vfat (truncated)"
    [parse_error, truncated] = rep.errors
    assert parse_error.startswith("B: image: vfat could not be parsed: ")  # the parser's own words
    assert truncated == (
        "B: vfat boot sector found, but the image ends at 5000 bytes; the volume needs 35651584 bytes (truncated?)"
    )


def test_truncated_partition_names_the_partition(pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The disk is cut 2708 bytes into the ESP (which starts at LBA 2048): the ESP row says so."""
    from imgdiff.engine.analysis import analyze

    a, _ = pair("repart-esp-root-seeded")
    rep = analyze(a, cut(a, tmp_path / "b.img", 2048 * 512 + 2708))
    assert rep.b.format == "gpt"
    assert rep.errors[0] == (
        "B: esp: vfat boot sector found, but the region is 2708 bytes; the volume needs 41943040 bytes (truncated?)"
    )
    assert "B: partition 1 ends beyond the end of the image; truncated to the image" in rep.errors
