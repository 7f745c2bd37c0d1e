"""Hostile inputs, generated here: each gets exit 1 or 2 and one sentence,
within 10 s and 1 GB, measured on the real command in a child process."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import openpyxl
import pytest

from bulkref.spec.columns import SPEC

SECONDS = 10
BYTES = 1024**3

Make = Callable[[Path], Path]


def base_workbook(path: Path) -> Path:
    """A template-shaped workbook with one invalid row: readable, it exits 1."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Referrals"
    ws.append([c.label for c in SPEC.columns()])
    ws.append(["CRM-1", None, None, "Deal", "Private"])
    wb.save(path)
    return path


def rewrite(
    path: Path, change: Callable[[str, bytes], bytes | None], extra: dict[str, bytes] | None = None
) -> Path:
    with zipfile.ZipFile(path) as z:
        items = [(i.filename, z.read(i.filename)) for i in z.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in items:
            if (new := change(name, data)) is not None:
                z.writestr(name, new)
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return path


SHEET = "xl/worksheets/sheet1.xml"


def fifo(tmp: Path) -> Path:
    path = tmp / "pipe.csv"
    os.mkfifo(path)
    return path


def endless_device(tmp: Path) -> Path:
    path = tmp / "zero.csv"
    path.symlink_to("/dev/zero")
    return path


def zip_bomb(tmp: Path) -> Path:
    """Shared strings that inflate to 300 MB from ~300 KB, sizes declared honestly."""
    path = base_workbook(tmp / "bomb.xlsx")
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as z, z.open("xl/sharedStrings.xml", "w") as f:
        f.write(b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><si><t>')
        block = b"a" * (1 << 20)
        for _ in range(300):
            f.write(block)
        f.write(b"</t></si></sst>")
    return path


def lying_zip_bomb(tmp: Path) -> Path:
    """The same bomb in the worksheet part, its directory claiming 100 KB
    inflated: the ratio check cannot see it, the bounded inflation must."""
    path = base_workbook(tmp / "liar.xlsx")
    with zipfile.ZipFile(path) as z:
        sheet = z.read(SHEET)
    head, tail = sheet.split(b"</sheetData>")
    rewrite(path, lambda n, d: None if n == SHEET else d)
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as z, z.open(SHEET, "w", force_zip64=False) as f:
        f.write(head)
        block = b"<row><c><v>1</v></c></row>" * 40_000
        for _ in range(300):
            f.write(block)
        f.write(b"</sheetData>" + tail)
    with zipfile.ZipFile(path) as z:
        info = z.getinfo(SHEET)
    with path.open("r+b") as f:
        # The local header's uncompressed size, then the central directory's.
        f.seek(info.header_offset + 22)
        f.write(struct.pack("<I", 100_000))
        end = f.seek(0, os.SEEK_END)
        start = f.seek(max(0, end - 65536))
        directory = f.read()
        at = directory.find(b"PK\x01\x02")
        while at >= 0:
            (name_len,) = struct.unpack_from("<H", directory, at + 28)
            if directory[at + 46 : at + 46 + name_len] == SHEET.encode():
                f.seek(start + at + 24)
                f.write(struct.pack("<I", 100_000))
                break
            at = directory.find(b"PK\x01\x02", at + 4)
    with zipfile.ZipFile(path) as z:
        assert z.getinfo(SHEET).file_size == 100_000
    return path


def xml_bomb(tmp: Path) -> Path:
    """Billion laughs in the shared strings."""
    lol = ['<!ENTITY lol0 "lol">'] + [f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)]
    doc = (
        '<?xml version="1.0"?><!DOCTYPE sst [' + "".join(lol) + "]>"
        '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><si><t>&lol9;</t></si></sst>'
    ).encode()
    path = base_workbook(tmp / "laughs.xlsx")

    def shared(name: str, data: bytes) -> bytes:
        if name != SHEET:
            return data
        cell = b'<c r="A2" t="inlineStr"><is><t>CRM-1</t></is></c>'
        assert cell in data
        return data.replace(cell, b'<c r="A2" t="s"><v>0</v></c>')

    return rewrite(path, shared, {"xl/sharedStrings.xml": doc})


def dimension_bomb(tmp: Path) -> Path:
    path = base_workbook(tmp / "dimension.xlsx")
    return rewrite(
        path,
        lambda n, d: (
            d.replace(b'<dimension ref="A1:', b'<dimension ref="A1:XFD1048576" x="') if n == SHEET else d
        ),
    )


def far_cell(tmp: Path) -> Path:
    """One cell at XFD1048576: a dense reader allocates 17 billion cells."""
    path = base_workbook(tmp / "far.xlsx")
    far = b'<row r="1048576"><c r="XFD1048576" t="inlineStr"><is><t>x</t></is></c></row></sheetData>'
    return rewrite(path, lambda n, d: d.replace(b"</sheetData>", far) if n == SHEET else d)


def sparse_range(tmp: Path) -> Path:
    """One cell at CV1000000: a dense range of 100 million cells, 3 GB in calamine."""
    path = base_workbook(tmp / "sparse.xlsx")
    far = b'<row r="1000000"><c r="CV1000000" t="inlineStr"><is><t>x</t></is></c></row></sheetData>'
    return rewrite(path, lambda n, d: d.replace(b"</sheetData>", far) if n == SHEET else d)


def truncated(tmp: Path) -> Path:
    path = base_workbook(tmp / "cut.xlsx")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def malformed_sheet(tmp: Path) -> Path:
    path = base_workbook(tmp / "malformed.xlsx")
    return rewrite(path, lambda n, d: b"<worksheet><sheetData><row><c r=" if n == SHEET else d)


def malformed_workbook_part(tmp: Path) -> Path:
    path = base_workbook(tmp / "nobook.xlsx")
    return rewrite(path, lambda n, d: b"\x00\xff garbage" if n == "xl/workbook.xml" else d)


def huge_line(tmp: Path) -> Path:
    path = tmp / "line.csv"
    with path.open("wb") as f:
        f.write(b"External Reference ID,Name\r\n")
        for _ in range(40):
            f.write(b"x" * (1 << 20))
    return path


def delimiter_line(tmp: Path) -> Path:
    """A line of 30 million commas: as many empty fields."""
    path = tmp / "commas.csv"
    with path.open("wb") as f:
        f.write(b"External Reference ID,Name\r\n")
        for _ in range(30):
            f.write(b"," * (1 << 20))
    return path


def many_columns_csv(tmp: Path) -> Path:
    path = tmp / "wide.csv"
    names = [c.label for c in SPEC.columns()] + [f"extra {i}" for i in range(50_000)]
    path.write_text(",".join(names) + "\r\n" + ",".join("v" for _ in names) + "\r\n", encoding="utf-8")
    return path


def many_columns_xlsx(tmp: Path) -> Path:
    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet("Referrals")
    names = [c.label for c in SPEC.columns()] + [f"extra {i}" for i in range(16_000)]
    ws.append(names)
    ws.append(["v"] * len(names))
    path = tmp / "wide.xlsx"
    wb.save(path)
    return path


def encrypted(tmp: Path) -> Path:
    from msoffcrypto.format.ooxml import OOXMLFile

    plain = base_workbook(tmp / "plain.xlsx")
    locked = tmp / "locked.xlsx"
    with plain.open("rb") as src, locked.open("wb") as out:
        OOXMLFile(src).encrypt("secret", out)
    return locked


POSIX_ONLY = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes and /dev/zero are POSIX")
CASES = [
    pytest.param(fifo, "named pipe", marks=POSIX_ONLY, id="fifo"),
    pytest.param(
        endless_device,
        "is a device",
        marks=pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero"),
        id="dev-zero",
    ),
    pytest.param(zip_bomb, "zip bomb", id="zip-bomb"),
    pytest.param(lying_zip_bomb, "is not read because", id="zip-bomb-lying-sizes"),
    pytest.param(xml_bomb, "DOCTYPE", id="xml-bomb"),
    pytest.param(dimension_bomb, None, id="dimension-bomb"),
    pytest.param(far_cell, "larger than bulkref reads safely", id="far-cell"),
    pytest.param(
        sparse_range,
        "larger than bulkref reads safely",
        marks=pytest.mark.skipif(sys.platform != "linux", reason="the memory limit is enforced on Linux"),
        id="sparse-range",
    ),
    pytest.param(truncated, "is damaged", id="truncated"),
    pytest.param(malformed_sheet, "is damaged", id="malformed-sheet"),
    pytest.param(malformed_workbook_part, "is damaged", id="malformed-workbook-part"),
    pytest.param(huge_line, "could not be read as CSV", id="huge-line"),
    pytest.param(delimiter_line, "more than any spreadsheet holds", id="delimiter-line"),
    pytest.param(many_columns_csv, None, id="many-columns-csv"),
    pytest.param(many_columns_xlsx, None, id="many-columns-xlsx"),
    pytest.param(encrypted, "password-protected", id="encrypted"),
]


# Runs the command and reports its peak memory. A launcher of its own, because
# a child's ru_maxrss starts from its parent's at fork: measured straight from
# pytest (which built a 300 MB bomb a moment ago) it would report pytest's size.
LAUNCHER = """
import json, subprocess, sys
try:
    import resource
except ImportError:
    resource = None
args, out, err, timeout = json.loads(sys.argv[1])
with open(out, "wb") as o, open(err, "wb") as e:
    try:
        code = subprocess.run(args, stdout=o, stderr=e, stdin=subprocess.DEVNULL, timeout=timeout).returncode
    except subprocess.TimeoutExpired:
        code = None
# RUSAGE_CHILDREN: the largest of the command and the children it waited for.
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss if resource else 0
print(json.dumps([code, peak * (1 if sys.platform == "darwin" else 1024)]))
"""


def run_bounded(
    path: Path, env: dict[str, str] | None = None, *flags: str
) -> tuple[int, str, str, float, int]:
    """(exit code, stdout, stderr, seconds, peak RSS in bytes of the command and
    its children; 0 where the platform cannot tell)."""
    out_file, err_file = path.with_name("stdout.txt"), path.with_name("stderr.txt")
    args = [sys.executable, "-m", "bulkref", "validate", str(path), *flags]
    start = time.monotonic()
    launched = subprocess.run(
        [sys.executable, "-c", LAUNCHER, json.dumps([args, str(out_file), str(err_file), SECONDS * 3])],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=SECONDS * 6,
    )
    seconds = time.monotonic() - start
    code, peak = json.loads(launched.stdout)
    if code is None:
        pytest.fail(f"{path.name}: no answer in {SECONDS * 3} s")
    return code, out_file.read_text(), err_file.read_text(), seconds, peak


@pytest.mark.slow
@pytest.mark.parametrize(("make", "said"), CASES)
def test_hostile_file_is_answered_in_bounded_time_and_memory(
    tmp_path: Path, make: Make, said: str | None
) -> None:
    path = make(tmp_path)
    code, out, err, seconds, peak = run_bounded(path)
    assert code in (1, 2), (code, out, err)
    assert "Traceback" not in out + err and "panicked" not in out + err
    if code == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("bulkref: ") and lines[0].endswith("."), err
        if said is not None:
            assert said in lines[0], lines[0]
    else:
        assert said is None, f"read, though it should have been refused: {out[:300]}"
    print(
        f"{path.name}: exit {code} in {seconds:.1f} s, {peak / 1024**2:.0f} MB: {err.strip() or out[-200:]}"
    )
    assert seconds < SECONDS, f"{path.name} took {seconds:.1f} s"
    assert peak < BYTES, f"{path.name} peaked at {peak / 1024**2:.0f} MB"


@pytest.mark.slow
def test_size_limit_from_the_environment_and_the_flag(tmp_path: Path) -> None:
    path = huge_line(tmp_path)
    code, _, err, _, _ = run_bounded(path, {"BULKREF_MAX_FILE_SIZE": "1MB"})
    assert code == 2 and "more than the 1 MB bulkref reads" in err and "--max-file-size" in err
    code, _, err, _, _ = run_bounded(path, None, "--max-file-size", "100KB")
    assert code == 2 and "is 40 MB, more than the 102,400 bytes bulkref reads" in err
    code, _, err, _, _ = run_bounded(path, None, "--max-file-size", "lots")
    assert code == 2 and "is not a size" in err
