"""Content recognisers on bytes made by real tools (gzip, xz, zstd, cpio, gcc/ld/strip, osslsigncode, py_compile).

Values that the inputs pin (times, names, flags, offsets fixed by a spec) are asserted literally; values that
depend on the tool version (compressed sizes, build IDs) are cross-checked against the tool's own reading
(readelf, objdump) or against the committed content-formats fixture pair.
"""

from __future__ import annotations

import os
import re
import struct
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from imgdiff import content
from imgdiff.content import ContentField, inspect
from imgdiff.content.cpio import compare as cpio_compare
from imgdiff.content.elf import build_id
from imgdiff.content.pe import pe_headers

from .conftest import have

T0, T1 = 1700000000, 1700086400


def run(cmd: list[str] | str, cwd: Path, env: dict[str, str] | None = None, stdin: bytes | None = None) -> bytes:
    """Run a real tool and return its stdout (fails the test on a non-zero exit)."""
    full = dict(os.environ, TZ="UTC", LC_ALL="C")
    full.pop("SOURCE_DATE_EPOCH", None)
    full.update(env or {})
    proc = subprocess.run(cmd, cwd=cwd, env=full, input=stdin, capture_output=True, shell=isinstance(cmd, str), check=False)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return proc.stdout


def fields(path: str, a: bytes, b: bytes) -> list[ContentField]:
    """Return what the registered recognisers report for two whole files."""
    return inspect(path, a, b, len(a), len(b))


def by_name(fs: list[ContentField]) -> dict[str, ContentField]:
    return {f.field: f for f in fs}


def touch(p: Path, t: int) -> None:
    os.utime(p, (t, t))


# -- gzip -------------------------------------------------------------------------------------------------------------


@pytest.mark.skipif(not have("gzip"), reason="gzip not installed")
def test_gzip_mtime_of_the_input_file(tmp_path: Path) -> None:
    src = tmp_path / "tool.1"
    src.write_text("".join(f".TP\nentry {i}\n" for i in range(2000)))
    touch(src, T0)
    a = run(["gzip", "-9", "-c", "tool.1"], tmp_path)
    touch(src, T1)
    b = run(["gzip", "-9", "-c", "tool.1"], tmp_path)
    assert a[:4] == b"\x1f\x8b\x08\x08"  # deflate, FNAME
    fs = fields("/usr/share/man/man1/tool.1.gz", a, b)
    assert fs == [ContentField("content.gzip", "MTIME", 4, 4, T0, T1, "2023-11-14 22:13:20 UTC", "2023-11-15 22:13:20 UTC")]


@pytest.mark.skipif(not have("gzip"), reason="gzip not installed")
def test_gzip_named_file_versus_pipe(tmp_path: Path) -> None:
    src = tmp_path / "README"
    src.write_text("".join(f"README line {i}\n" for i in range(1500)))
    touch(src, T0)
    a = run(["gzip", "-9", "-c", "README"], tmp_path)
    b = run("gzip -9 | cat", tmp_path, stdin=src.read_bytes())  # a pipe: no name, no time
    f = by_name(fields("/x/README.gz", a, b))
    assert (f["FLG"].a, f["FLG"].b, f["FLG"].display_a, f["FLG"].display_b) == (8, 0, "FNAME", "none")
    assert (f["MTIME"].a, f["MTIME"].b, f["MTIME"].display_b) == (T0, 0, "0 (no time stored)")
    assert (f["FNAME"].offset, f["FNAME"].size, f["FNAME"].a, f["FNAME"].b) == (10, 7, "README", None)
    moved = f["compressed data"]
    assert moved.offset == 17 and moved.size == len(a) - 17
    assert moved.display_a == "identical deflate stream and trailer, moved by -7 bytes by the header"
    assert "OS" not in f and "XFL" not in f


@pytest.mark.skipif(not have("gzip"), reason="gzip not installed")
def test_gzip_levels_same_payload(tmp_path: Path) -> None:
    data = "".join(f"changelog entry {i}\n" for i in range(5000)).encode()
    a = run(["gzip", "-n", "-1"], tmp_path, stdin=data)
    b = run(["gzip", "-n", "-9"], tmp_path, stdin=data)
    f = by_name(fields("/x/changelog.gz", a, b))
    assert (f["XFL"].a, f["XFL"].b, f["XFL"].display_a, f["XFL"].display_b) == (
        4, 2, "4 (fastest)", "2 (slowest, best compression)",
    )
    same = f["compressed data"]
    assert (same.offset, same.a, same.b) == (10, len(data), len(data))
    assert same.display_a == f"same {len(data)}-byte payload, compressed differently"
    assert set(f) == {"XFL", "compressed data"}


@pytest.mark.skipif(not have("gzip"), reason="gzip not installed")
def test_gzip_larger_than_the_head_reports_headers_only(tmp_path: Path) -> None:
    src = tmp_path / "big"
    src.write_bytes(os.urandom(3 << 20))
    touch(src, T0)
    a = run(["gzip", "-1", "-c", "big"], tmp_path)
    touch(src, T1)
    b = run(["gzip", "-1", "-c", "big"], tmp_path)
    head = content.INSPECT_BYTES
    fs = inspect("/big.gz", a[:head], b[:head], len(a), len(b))
    assert [f.field for f in fs] == ["MTIME"]


# -- xz and zstd ------------------------------------------------------------------------------------------------------


@pytest.mark.skipif(not have("xz"), reason="xz not installed")
def test_xz_threads(tmp_path: Path) -> None:
    data = "".join(f"changelog entry {i}\n" for i in range(20000)).encode()
    a = run(["xz", "-6", "-T1", "-c"], tmp_path, stdin=data)
    b = run(["xz", "-6", "-T2", "-c"], tmp_path, stdin=data)
    f = by_name(fields("/x/changelog.xz", a, b))
    hdr = f["Block Header"]
    assert hdr.offset == 12
    assert hdr.display_a == "no sizes recorded (single-threaded xz); filters LZMA2 (dictionary 8 MiB)"
    assert re.fullmatch(
        rf"sizes recorded: compressed \d+, uncompressed {len(data)} \(multi-threaded xz\); filters LZMA2 \(dictionary 8 MiB\)",
        hdr.display_b or "",
    )
    same = f["compressed data"]
    assert same.display_a == f"same {len(data)}-byte payload, compressed differently: 1 block(s)"
    assert same.display_b == f"same {len(data)}-byte payload: 1 block(s)"
    assert "Stream Flags" not in f


@pytest.mark.skipif(not have("xz"), reason="xz not installed")
def test_xz_check_type(tmp_path: Path) -> None:
    data = b"kernel module\n" * 1000
    a = run(["xz", "--check=crc32", "-c"], tmp_path, stdin=data)
    b = run(["xz", "--check=crc64", "-c"], tmp_path, stdin=data)
    f = by_name(fields("/lib/modules/x.ko.xz", a, b))
    flags = f["Stream Flags"]
    assert (flags.offset, flags.size, flags.a, flags.b) == (6, 6, 1, 4)
    assert (flags.display_a, flags.display_b) == ("check CRC32", "check CRC64")
    assert f["compressed data"].display_a.startswith(f"same {len(data)}-byte payload")  # type: ignore[union-attr]


@pytest.mark.skipif(not have("zstd"), reason="zstd not installed")
def test_zstd_file_versus_pipe(tmp_path: Path) -> None:
    src = tmp_path / "NEWS"
    src.write_text("".join(f"news item {i}\n" for i in range(300)))
    a = run(["zstd", "-q", "-3", "-c", "NEWS"], tmp_path)
    b = run("cat NEWS | zstd -q -3 -c", tmp_path)
    f = by_name(fields("/x/NEWS.zst", a, b))
    fhd = f["Frame_Header_Descriptor"]
    assert fhd.offset == 4
    size = src.stat().st_size
    assert fhd.display_a == f"content size {size}, single segment, checksum"
    assert (fhd.display_b or "").startswith("content size not recorded, window ")
    assert a[4] & 0x20 and not b[4] & 0x20  # single segment only when the size is known


# -- cpio -------------------------------------------------------------------------------------------------------------


def _tree(root: Path, t: int) -> None:
    (root / "kernel" / "x86" / "microcode").mkdir(parents=True, exist_ok=True)
    (root / "kernel" / "x86" / "microcode" / "GenuineIntel.bin").write_bytes(bytes(range(256)) * 4)
    (root / "init").write_text("#!/bin/sh\nexec /bin/sh\n")
    for p in [root, *root.rglob("*")]:
        os.utime(p, (t, t), follow_symlinks=False)


@pytest.mark.skipif(not have("cpio"), reason="cpio not installed")
def test_cpio_mtimes(tmp_path: Path) -> None:
    _tree(tmp_path / "t", T0)
    listing = b".\ninit\nkernel\nkernel/x86\nkernel/x86/microcode\nkernel/x86/microcode/GenuineIntel.bin\n"
    a = run(["cpio", "--quiet", "--reproducible", "-o", "-H", "newc"], tmp_path / "t", stdin=listing)
    _tree(tmp_path / "t", T1)
    b = run(["cpio", "--quiet", "--reproducible", "-o", "-H", "newc"], tmp_path / "t", stdin=listing)
    fs = fields("/boot/initrd", a, b)
    assert [f.field for f in fs] == ["c_mtime"] * 6
    assert fs[0] == ContentField("content.cpio", "c_mtime", 46, 8, T0, T1, ".: 2023-11-14 22:13:20 UTC", ".: 2023-11-15 22:13:20 UTC")
    assert fs[1].display_a == "init: 2023-11-14 22:13:20 UTC"
    assert a[fs[1].offset : fs[1].offset + 8] == b"6553F100"
    assert cpio_compare(a, b).explained


@pytest.mark.skipif(not have("cpio"), reason="cpio not installed")
def test_cpio_inode_numbers_without_reproducible(tmp_path: Path) -> None:
    """The same tree archived from two copies: c_ino comes from the staging filesystem unless --reproducible."""
    for side in ("a", "b"):
        _tree(tmp_path / side, T0)
    listing = b".\ninit\nkernel\nkernel/x86\nkernel/x86/microcode\nkernel/x86/microcode/GenuineIntel.bin\n"
    a = run(["cpio", "--quiet", "-o", "-H", "newc"], tmp_path / "a", stdin=listing)
    b = run(["cpio", "--quiet", "-o", "-H", "newc"], tmp_path / "b", stdin=listing)
    names = {f.field for f in fields("/boot/initrd", a, b)}
    assert "c_ino" in names and names <= {"c_ino", "c_nlink", "c_devmajor", "c_devminor"}
    ra = run(["cpio", "--quiet", "--reproducible", "-o", "-H", "newc"], tmp_path / "a", stdin=listing)
    rb = run(["cpio", "--quiet", "--reproducible", "-o", "-H", "newc"], tmp_path / "b", stdin=listing)
    assert ra == rb and fields("/boot/initrd", ra, rb) == []


@pytest.mark.skipif(not (have("cpio") and have("gzip")), reason="cpio/gzip not installed")
def test_cpio_order_inside_gzip(tmp_path: Path) -> None:
    _tree(tmp_path / "t", T0)
    names = [".", "init", "kernel", "kernel/x86", "kernel/x86/microcode", "kernel/x86/microcode/GenuineIntel.bin"]
    a = run("cpio --quiet --reproducible -o -H newc | gzip -n -9", tmp_path / "t", stdin="\n".join(names).encode())
    b = run("cpio --quiet --reproducible -o -H newc | gzip -n -9", tmp_path / "t",
            stdin="\n".join(reversed(names)).encode())
    fs = fields("/boot/initrd.gz", a, b)
    assert len(fs) == 1
    f = fs[0]
    assert (f.kind, f.field, f.offset, f.size) == ("content.cpio", "member order", 10, max(len(a), len(b)) - 10)
    assert (f.a, f.b) == (".", "kernel/x86/microcode/GenuineIntel.bin")
    assert f.display_a == "in the gzip-compressed cpio: 6 members from #1 in another order: ., init, kernel, kernel/x86, …"


# -- ELF --------------------------------------------------------------------------------------------------------------


@pytest.mark.skipif(not (have("gcc") and have("strip") and have("readelf")), reason="gcc/binutils not installed")
def test_elf_build_id_from_the_build_directory(tmp_path: Path) -> None:
    src = 'int main(void) { return 0; }\n'
    out = {}
    for side in ("a", "b"):
        d = tmp_path / f"build-{side}" / "src"
        d.mkdir(parents=True)
        (d / "hello.c").write_text(src)
        run(["gcc", "-g", "-O2", "-Wl,--build-id=sha1", "hello.c", "-o", "hello"], d)
        run(["strip", "hello"], d)
        out[side] = (d / "hello").read_bytes()
    a, b = out["a"], out["b"]
    assert len(a) == len(b)
    fs = fields("/usr/bin/hello", a, b)
    assert [f.field for f in fs] == ["GNU_BUILD_ID"]
    f = fs[0]
    # The tool's own reading: readelf -n prints the build ID, readelf -S the note section's offset.
    notes = run(["readelf", "-n", str(tmp_path / "build-a" / "src" / "hello")], tmp_path).decode()
    assert f.a == bytes.fromhex(re.search(r"Build ID: ([0-9a-f]+)", notes).group(1))  # type: ignore[union-attr]
    sections = run(["readelf", "-SW", str(tmp_path / "build-a" / "src" / "hello")], tmp_path).decode()
    off = int(re.search(r"\.note\.gnu\.build-id\s+NOTE\s+[0-9a-f]+ ([0-9a-f]+)", sections).group(1), 16)  # type: ignore[union-attr]
    assert (f.offset, f.size) == (off + 16, 20)  # 12-byte note header + "GNU\0"
    diff = [i for i in range(len(a)) if a[i] != b[i]]
    assert diff and all(f.offset <= i < f.offset + f.size for i in diff)


@pytest.mark.skipif(not (have("gcc") and have("readelf")), reason="gcc/binutils not installed")
def test_elf_relocatable_without_program_headers(tmp_path: Path) -> None:
    (tmp_path / "m.c").write_text("int f(void) { return 1; }\n")
    run(["gcc", "-c", "m.c", "-o", "m.o"], tmp_path)
    run(["ld", "-r", "--build-id=sha1", "m.o", "-o", "m1.o"], tmp_path)
    data = (tmp_path / "m1.o").read_bytes()
    found = build_id(data)
    sections = run(["readelf", "-SW", "m1.o"], tmp_path).decode()
    m = re.search(r"\.note\.gnu\.build-id\s+NOTE\s+[0-9a-f]+ ([0-9a-f]+)", sections)
    if m is None:
        pytest.skip("this ld writes no build ID into relocatable output")
    assert found is not None and found[0] == int(m.group(1), 16) + 16


# -- PE/COFF ----------------------------------------------------------------------------------------------------------


def _efi(tmp_path: Path, name: str, *ld_args: str, retval: int = 0) -> bytes:
    (tmp_path / "efi.c").write_text(
        "typedef unsigned long long UINT64;\n"
        f"UINT64 efi_main(void *image, void *systab) {{ (void)image; (void)systab; return {retval}; }}\n"
    )
    run(["gcc", "-c", "-O2", "-fno-ident", "-ffreestanding", "-fno-stack-protector", "-fpic", "-mno-red-zone",
         "efi.c", "-o", "efi.o"], tmp_path)
    run(["ld", "-m", "i386pep", *ld_args, "--subsystem", "10", "-e", "efi_main", "-o", name, "efi.o"], tmp_path)
    return (tmp_path / name).read_bytes()


def _ld_has_pe() -> bool:
    if not (have("gcc") and have("ld")):
        return False
    out = subprocess.run(["ld", "-V"], capture_output=True, text=True, check=False).stdout
    return "i386pep" in out


@pytest.mark.skipif(not _ld_has_pe(), reason="GNU ld without the i386pep (PE32+) emulation")
def test_pe_link_timestamp(tmp_path: Path) -> None:
    a = _efi(tmp_path, "a.efi", "--no-insert-timestamp")
    b = _efi(tmp_path, "b.efi")  # ld stamps the current time (binutils ignores SOURCE_DATE_EPOCH for PE)
    (lfanew,) = struct.unpack_from("<I", a, 0x3C)
    f = by_name(fields("/EFI/BOOT/BOOTX64.EFI", a, b))
    ts = f["TimeDateStamp"]
    assert (ts.offset, ts.size, ts.a, ts.display_a) == (lfanew + 8, 4, 0, "0 (no time stored)")
    assert isinstance(ts.b, int) and abs(ts.b - int(time.time())) < 600
    if have("objdump"):  # the tool's own reading of the stamp
        m = re.search(r"Time/Date\s+(.+)", run(["objdump", "-x", "b.efi"], tmp_path).decode())
        assert m is not None
        stamp = datetime.strptime(m.group(1).strip(), "%a %b %d %H:%M:%S %Y").replace(tzinfo=UTC)
        assert int(stamp.timestamp()) == ts.b
    ck = f["CheckSum"]
    assert ck.offset == lfanew + 24 + 64 and ck.a == pe_headers(a).checksum
    diff = [i for i in range(len(a)) if a[i] != b[i]]
    assert all(any(x.offset <= i < x.offset + x.size for x in f.values()) for i in diff)


@pytest.mark.skipif(not (_ld_has_pe() and have("osslsigncode") and have("openssl")), reason="no PE signing tools")
def test_pe_signing_time(tmp_path: Path) -> None:
    _efi(tmp_path, "unsigned.efi", "--no-insert-timestamp")
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "db.key", "-out", "db.crt",
         "-days", "30", "-subj", "/CN=imgdiff test/"], tmp_path)
    for side, t in (("a", T0), ("b", T1)):
        run(["osslsigncode", "sign", "-certs", "db.crt", "-key", "db.key", "-time", str(t), "-in", "unsigned.efi",
             "-out", f"{side}.efi"], tmp_path)
    a, b = (tmp_path / "a.efi").read_bytes(), (tmp_path / "b.efi").read_bytes()
    f = by_name(fields("/EFI/Linux/nixos.efi", a, b))
    cert = f["WIN_CERTIFICATE"]
    ha = pe_headers(a)
    assert ha.cert is not None and cert.offset == ha.cert[0]
    assert cert.display_a == f"signingTime 2023-11-14 22:13:20 UTC, {ha.cert[1]} bytes"
    assert (cert.display_b or "").startswith("signingTime 2023-11-15 22:13:20 UTC, ")
    assert "CheckSum" in f and "TimeDateStamp" not in f


# -- pyc --------------------------------------------------------------------------------------------------------------


def _pyc(tmp_path: Path, side: str, mtime: int, sde: str | None) -> bytes:
    d = tmp_path / side
    (d / "tool").mkdir(parents=True)
    src = d / "tool" / "mod.py"
    src.write_text("VALUE = 42\n")
    touch(src, mtime)
    env = {"SOURCE_DATE_EPOCH": sde} if sde else None
    run([sys.executable, "-m", "py_compile", "tool/mod.py"], d, env=env)
    return next((d / "tool" / "__pycache__").glob("mod.*.pyc")).read_bytes()


def test_pyc_source_mtime(tmp_path: Path) -> None:
    a = _pyc(tmp_path, "a", T0, None)
    b = _pyc(tmp_path, "b", T1, None)
    fs = fields("/usr/lib/python3/tool/__pycache__/mod.cpython-311.pyc", a, b)
    assert fs == [ContentField("content.pyc", "mtime", 8, 4, T0, T1, "2023-11-14 22:13:20 UTC", "2023-11-15 22:13:20 UTC")]
    assert a[16:] == b[16:]


def test_pyc_source_date_epoch_switches_to_checked_hash(tmp_path: Path) -> None:
    a = _pyc(tmp_path, "a", T0, None)
    b = _pyc(tmp_path, "b", T0, str(T0))
    f = by_name(fields("/x/__pycache__/mod.cpython-311.pyc", a, b))
    assert (f["flags"].a, f["flags"].b, f["flags"].display_a, f["flags"].display_b) == (
        0, 3, "timestamp-based", "checked hash",
    )
    inv = f["invalidation_data"]
    assert (inv.offset, inv.size) == (8, 8)
    assert inv.display_a == "mtime 2023-11-14 22:13:20 UTC, source_size 11"
    import importlib.util

    assert inv.display_b == f"source_hash {importlib.util.source_hash(b'VALUE = 42' + bytes([10])).hex()}"


def test_recognisers_ignore_other_formats() -> None:
    assert inspect("/etc/os-release", b"NAME=NixOS\n", b"NAME=nixos\n", 11, 11) == []
    assert inspect("/x.gz", b"\x1f\x8b\x08", b"\x1f\x8b", 3, 2) == []  # truncated: not recognised, no error


# -- on the committed fixture pair ------------------------------------------------------------------------------------


def test_content_formats_pair(analyzed) -> None:  # type: ignore[no-untyped-def]
    report = analyzed("content-formats")
    got: dict[tuple[str, str, str], list[object]] = {}
    rules: dict[tuple[str, str], str] = {}
    for f in report.findings:
        for d in f.causes:
            if d.kind.startswith("content."):
                got.setdefault((str(d.attrs["path"]), d.kind, d.field), []).append(d)
                rules[(d.kind, d.field)] = f.rule.id
    assert set(got) == {
        ("/EFI/BOOT/BOOTX64.EFI", "content.pe", "TimeDateStamp"),
        ("/EFI/BOOT/BOOTX64.EFI", "content.pe", "CheckSum"),
        ("/EFI/Linux/nixos.efi", "content.pe", "CheckSum"),
        ("/EFI/Linux/nixos.efi", "content.pe", "WIN_CERTIFICATE"),
        ("/EFI/systemd/systemd-bootx64.efi", "content.pe", "CheckSum"),
        ("/usr/share/man/man1/tool.1.gz", "content.gzip", "MTIME"),
        ("/usr/share/doc/tool/README.gz", "content.gzip", "FLG"),
        ("/usr/share/doc/tool/README.gz", "content.gzip", "FNAME"),
        ("/usr/share/doc/tool/README.gz", "content.gzip", "compressed data"),
        ("/usr/share/doc/tool/changelog.xz", "content.xz", "Block Header"),
        ("/usr/share/doc/tool/changelog.xz", "content.xz", "compressed data"),
        ("/usr/share/doc/tool/NEWS.zst", "content.zstd", "Frame_Header_Descriptor"),
        ("/usr/bin/hello", "content.elf", "GNU_BUILD_ID"),
        ("/boot/initrd", "content.cpio", "c_mtime"),
        ("/boot/initrd", "content.cpio", "member order"),
        ("/usr/lib/python3/tool/__pycache__/mod.cpython-311.pyc", "content.pyc", "mtime"),
        ("/usr/lib/python3/tool/__pycache__/util.cpython-311.pyc", "content.pyc", "flags"),
        ("/usr/lib/python3/tool/__pycache__/util.cpython-311.pyc", "content.pyc", "invalidation_data"),
    }
    assert rules == {
        ("content.pe", "TimeDateStamp"): "CNT004", ("content.pe", "CheckSum"): "CNT006",
        ("content.pe", "WIN_CERTIFICATE"): "CNT005", ("content.gzip", "MTIME"): "CNT001",
        ("content.gzip", "FLG"): "CNT002", ("content.gzip", "FNAME"): "CNT002",
        ("content.gzip", "compressed data"): "CNT003", ("content.xz", "Block Header"): "CNT003",
        ("content.xz", "compressed data"): "CNT003", ("content.zstd", "Frame_Header_Descriptor"): "CNT003",
        ("content.elf", "GNU_BUILD_ID"): "CNT007", ("content.cpio", "c_mtime"): "CNT008",
        ("content.cpio", "member order"): "CNT009", ("content.pyc", "mtime"): "CNT010",
        ("content.pyc", "flags"): "CNT011", ("content.pyc", "invalidation_data"): "CNT011",
    }
    assert len(got[("/boot/initrd", "content.cpio", "c_mtime")]) == 5
    (mtime,) = got[("/usr/share/man/man1/tool.1.gz", "content.gzip", "MTIME")]
    assert (mtime.a, mtime.b, mtime.bytes) == (T0, T1, 3)  # type: ignore[attr-defined]
    (pyc,) = got[("/usr/lib/python3/tool/__pycache__/mod.cpython-311.pyc", "content.pyc", "mtime")]
    assert (pyc.a, pyc.b, pyc.display_a) == (T0, T1, "2023-11-14 22:13:20 UTC")  # type: ignore[attr-defined]
    (cert,) = got[("/EFI/Linux/nixos.efi", "content.pe", "WIN_CERTIFICATE")]
    assert cert.display_a.startswith("signingTime 2023-11-14 22:13:20 UTC")  # type: ignore[attr-defined]
    # Files whose every differing byte is named lose their file-level data difference.
    data_paths = {str(d.attrs.get("path")) for f in report.findings for d in f.causes if d.field == "data"}
    assert "/usr/share/man/man1/tool.1.gz" not in data_paths and "/usr/bin/hello" not in data_paths
    assert "/EFI/BOOT/BOOTX64.EFI" not in data_paths and "/EFI/systemd/systemd-bootx64.efi" in data_paths
