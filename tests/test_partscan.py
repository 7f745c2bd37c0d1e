"""The pass over a workbook's parts in its own child process gives what the pass in this
process gives: hidden rows, uncalculated formulas, and the refusal of a hostile part."""

from __future__ import annotations

import zipfile
from pathlib import Path

import openpyxl
import pytest

from bulkref.sheets import partscan
from bulkref.sheets.reader import _worksheet_parts
from bulkref.sheets.xlsxcheck import ZipTrouble, scan_parts


def workbook(path: Path) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Referrals"
    ws.append(["External Reference ID", "Name"])
    for i in range(2, 40):
        ws.append([f"CRM-{i}", f"Deal {i}"])
    ws.row_dimensions[5].hidden = True
    ws.row_dimensions[17].hidden = True
    ws["C9"] = "=A9&B9"  # openpyxl writes no cached value: uncalculated
    wb.save(path)
    return path


def test_the_child_finds_what_the_pass_in_this_process_finds(tmp_path: Path) -> None:
    path = workbook(tmp_path / "book.xlsx")
    parts = _worksheet_parts(path)
    apart = partscan.scan_parts_apart(path, parts)
    assert apart == scan_parts(path, parts)
    assert apart["Referrals"].hidden == [5, 17]
    assert apart["Referrals"].uncalculated == [(9, 2)]


def test_a_hostile_part_is_refused_by_the_child_with_the_same_sentence(tmp_path: Path) -> None:
    path = workbook(tmp_path / "book.xlsx")
    with zipfile.ZipFile(path) as z:
        items = [(i.filename, z.read(i.filename)) for i in z.infolist()]
    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "a">]><x/>'
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in items:
            z.writestr(name, bomb if name == "xl/styles.xml" else data)
    parts = _worksheet_parts(path)
    with pytest.raises(ZipTrouble) as here:
        scan_parts(path, parts)
    with pytest.raises(ZipTrouble) as apart:
        partscan.scan_parts_apart(path, parts)
    assert "DOCTYPE" in str(apart.value) and str(apart.value) == str(here.value)


def test_without_a_child_to_start_the_pass_runs_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = workbook(tmp_path / "book.xlsx")
    parts = _worksheet_parts(path)
    monkeypatch.setattr(partscan.sys, "executable", str(tmp_path / "no-such-python"))
    assert partscan.scan_parts_apart(path, parts)["Referrals"].hidden == [5, 17]
    monkeypatch.setattr(partscan.sys, "executable", "")
    assert partscan.scan_parts_apart(path, parts)["Referrals"].hidden == [5, 17]


@pytest.mark.slow
def test_a_stopped_pass_ends_its_child_and_answers_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = workbook(tmp_path / "book.xlsx")
    monkeypatch.setattr(partscan, "POLL", 0.0)  # asked before the child can have started
    started = []
    real = partscan.subprocess.Popen

    def popen(*args: object, **kwargs: object) -> object:
        started.append(real(*args, **kwargs))  # type: ignore[call-overload]
        return started[-1]

    monkeypatch.setattr(partscan.subprocess, "Popen", popen)
    assert partscan.scan_parts_apart(path, _worksheet_parts(path), stopped=lambda: True) == {}
    assert started and started[0].poll() is not None  # killed and reaped, not left running
