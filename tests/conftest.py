"""Shared test helpers: build real workbooks and CSV files from header -> value rows."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Callable, Sequence
from pathlib import Path

import openpyxl
import pytest

# The local Partner Center sandbox, served over loopback HTTP for the client tests.
from sandbox_fixture import (  # noqa: F401
    sandbox,
    sandbox_as_sent,
    sandbox_as_sent_server,
    sandbox_factory,
    sandbox_server,
)

# One valid new Partner-led referral, by the header a person would type.
VALID_ROW: dict[str, object] = {
    "External Reference ID": "CRM-1",
    "Referral Name": "Contoso ERP",
    "Deal Type": "Partner-led",
    "Status": "New",
    "Substatus": "Pending",
    "Customer Name": "Contoso Ltd",
    "Address Line 1": "1 Main St",
    "City": "Seattle",
    "Country": "US",
    "Customer Size": "51to500employees",
    "Customer Contact 1 First Name": "Sue",
    "Customer Contact 1 Last Name": "Smith",
    "Customer Contact 1 Email": "sue@contoso.com",
    "Customer Contact 1 Phone": "+1 425 555 0100",
    "Share With Microsoft Sellers": "Yes",
    "Deal Value": 50000,
    "Currency": "USD",
    "Closing Date": dt.datetime(2027, 3, 31),
    "Marketplace Purchase Intent": "HaveNotDecided",
    "Help Needed": None,
    "Partner Role": None,
    "Solution Area": None,
    "Solution Play": None,
}


def row(**changes: object) -> dict[str, object]:
    """VALID_ROW with some cells changed; keys use the header with _ for spaces."""
    out = dict(VALID_ROW)
    for k, v in changes.items():
        out[k.replace("_", " ")] = v
    return out


def write_xlsx(
    path: Path,
    rows: Sequence[dict[str, object]],
    sheet: str = "Referrals",
    headers: Sequence[str] | None = None,
) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = sheet
    headers = list(headers or dict.fromkeys(k for r in rows for k in r))
    ws.append(headers)
    for r in rows:
        ws.append([r.get(h) for h in headers])
    wb.save(path)
    return path


def write_csv(
    path: Path, rows: Sequence[dict[str, object]], encoding: str = "utf-8", delimiter: str = ","
) -> Path:
    headers = list(dict.fromkeys(k for r in rows for k in r))
    with path.open("w", encoding=encoding, newline="") as f:
        w = csv.writer(f, delimiter=delimiter)
        w.writerow(headers)
        for r in rows:
            w.writerow(
                [
                    ""
                    if r.get(h) is None
                    else (r[h].date().isoformat() if isinstance(r[h], dt.datetime) else r[h])
                    for h in headers
                ]
            )
    return path


@pytest.fixture(autouse=True)
def _shipped_taxonomy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test sees the solution areas and plays bulkref ships, whatever the shell
    sets (the committed template is compared with a generated one)."""
    monkeypatch.delenv("BULKREF_TAXONOMY", raising=False)


@pytest.fixture
def xlsx(tmp_path: Path) -> Callable[..., Path]:
    counter = iter(range(10_000))

    def make(rows: Sequence[dict[str, object]], **kw: object) -> Path:
        return write_xlsx(tmp_path / f"sheet{next(counter)}.xlsx", rows, **kw)  # type: ignore[arg-type]

    return make
