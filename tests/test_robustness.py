"""Bad input end to end: not-an-image paths, truncated images whose signature survives, hostile file names,
bad ``--rules`` and argument errors.  Each gets exit 2 with one line, or a partial result saying what is missing;
never a traceback, never a hang.
"""

from __future__ import annotations

import json
import os
import shutil
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


NAME = b"/n\xffme"
"""A file name that is not UTF-8 (byte 0xff), as the ext4 directory entry holds it."""


@pytest.fixture(scope="module")
def ext4_odd_names(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two ext4 images by ``mke2fs -d``, identical but for the content of ``/n\\xffme`` and ``/café``."""
    if not shutil.which("mke2fs"):
        pytest.skip("mke2fs (e2fsprogs) is not installed")
    top = tmp_path_factory.mktemp("odd-names")
    images = []
    for side, data in (("a", b"x"), ("b", b"y")):
        tree = top / f"tree-{side}"
        tree.mkdir()
        for name in (NAME, "/café".encode()):
            with open(os.fsencode(tree) + name, "wb") as fh:
                fh.write(data)
        img = top / f"{side}.img"
        seed = "11111111-2222-3333-4444-555555555555"
        subprocess.run(
            ["mke2fs", "-q", "-F", "-t", "ext4", "-U", seed, "-E", f"hash_seed={seed}", "-d", str(tree), str(img), "4M"],
            check=True,
            capture_output=True,
            env={**os.environ, "E2FSPROGS_FAKE_TIME": "1700000000"},
        )
        images.append(img)
    return images[0], images[1]


def test_non_utf8_file_name_gives_strict_utf8_json(ext4_odd_names: tuple[Path, Path]) -> None:
    """The JSON writes the byte as the escape \\udcff (surrogateescape): strict UTF-8, and lossless."""
    a, b = ext4_odd_names
    r = run("explain", "--json", str(a), str(b))
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout.decode("utf-8", errors="strict"))
    assert b'"/n\\udcffme"' in r.stdout and b'"/caf\xc3\xa9"' in r.stdout
    assert doc["summary"] == {"bytes_compared": 4194304, "bytes_differing": 2, "bytes_unexplained": 0}
    [f] = doc["findings"]
    assert f["rule"] == "EXT014" and f["paths"] == ["/caf\u00e9", "/n\udcffme"]
    assert [os.fsencode(p) for p in f["paths"]] == ["/café".encode(), NAME]


@pytest.mark.parametrize("env", [{"PYTHONIOENCODING": "ascii"}, {"LC_ALL": "C", "PYTHONUTF8": "0"}])
def test_outputs_on_a_stdout_that_is_not_utf8(ext4_odd_names: tuple[Path, Path], env: dict[str, str]) -> None:
    """Text and markdown show the byte as \\xff (and é, which ASCII lacks, as \\xe9); JSON escapes everything."""
    a, b = ext4_odd_names
    text = run("explain", str(a), str(b), env=env)
    assert (text.returncode, text.stderr) == (1, b"")
    assert b"    paths: /caf\\xe9, /n\\xffme\n" in text.stdout
    md = run("report", str(a), str(b), env=env)
    assert (md.returncode, md.stderr) == (1, b"")
    assert b"`/caf\\xe9`, `/n\\xffme`" in md.stdout
    js = run("explain", "--json", str(a), str(b), env=env)
    assert (js.returncode, js.stderr) == (1, b"")
    js.stdout.decode("ascii")  # every character escaped: valid in any ASCII-compatible encoding, UTF-8 included
    assert json.loads(js.stdout)["findings"][0]["paths"] == ["/caf\u00e9", "/n\udcffme"]


def test_non_utf8_image_path(pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The image's own path (from argv, surrogateescape) takes the same road: JSON escape, text \\xff."""
    a, b = pair("vfat-volid")
    odd = os.fsencode(tmp_path) + b"/img\xff.img"
    with open(odd, "wb") as fh:
        fh.write(b.read_bytes())
    r = run("explain", "--json", str(a), os.fsdecode(odd))
    assert r.returncode == 1, r.stderr
    assert os.fsencode(json.loads(r.stdout.decode("utf-8", errors="strict"))["b"]) == odd
    r = run("explain", str(a), os.fsdecode(odd))
    assert r.returncode == 1 and f" and {tmp_path}/img\\xff.img differ: ".encode() in r.stdout
    missing = os.fsdecode(os.fsencode(tmp_path) + b"/gone\xff.img")
    msg = one_line_error(run("explain", str(a), missing))
    assert msg == f"{tmp_path}/gone\\xff.img: No such file or directory"
