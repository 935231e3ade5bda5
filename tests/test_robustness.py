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
