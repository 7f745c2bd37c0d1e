"""What Partner Center accepts, bulkref never refuses: referrals created in the
sandbox (over its HTTP API) with unusual values that the service takes are
exported, and the exported sheet plans back as unchanged, row for row."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import RunningSandbox, http, referral_body

from bulkref.export.referrals import export_referrals
from bulkref.plan.make import make_plan
from bulkref.validation.check import check_file

# Phone numbers as CRMs hold them: Partner Center keeps phoneNumber as free text.
PHONES = [
    "(425) 555-0100 ext. 12",
    "+49 (0)89 1234-5678",
    "1",
    "555.0100 x12",
    "+1 425 555 0100",
    "0049-89-1234 5678 / 12",
    "tel: +33 1 23 45 67 89",
    "ask reception",  # no digit: a warning, still sent and held as written
]


def unusual(i: int, phone: str) -> dict[str, Any]:
    base = referral_body(
        name=f"Überseehandel № {i} – «Phase 2»",
        externalReferenceId=f"CRM-ODD-{i}",
    )
    base["customerProfile"] = {
        **base["customerProfile"],
        "name": "O'Brien & Søn GmbH",
        "address": {
            "addressLine1": "Straße des 17. Juni 135",
            "city": "Zürich",
            "postalCode": "00501",
            "country": "CH",
        },
        "team": [
            {
                "firstName": "José",
                "lastName": "Núñez-García",
                "email": "jose.nunez+crm@mail.example.co.uk",
                "phoneNumber": phone,
                "title": "=Head of IT",
            }
        ],
    }
    base["details"] = {
        **base["details"],
        "notes": 'Line one\nLine two; with a semicolon, and "quotes"',
        "dealValue": 10000.75,
        "currency": "CHF",
    }
    return base


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
def test_unusual_accepted_values_export_and_plan_back_unchanged(
    sandbox: RunningSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    monkeypatch.setenv("BULKREF_ACCESS_TOKEN", sandbox.token)
    accepted = []
    for i, phone in enumerate(PHONES):
        response = http.post(sandbox.url, json=unusual(i, phone), headers=sandbox.headers)
        assert response.status_code == 201, response.text  # the service takes every one
        accepted.append(response.json())
    out = tmp_path / f"odd{suffix}"
    export_referrals(out, api_url=sandbox.url)

    checked = check_file(out)
    assert checked.valid, [(p.row, p.column, p.message) for p in checked.report.errors]
    held = {d["externalReferenceId"]: d["customerProfile"]["team"][0]["phoneNumber"] for d in accepted}
    read = dict(zip(checked.values["external_id"], checked.values["contact.1.phone"], strict=True))
    assert read == held

    plan = make_plan(out, api_url=sandbox.url)
    assert len(plan.rows) == len(PHONES)
    assert {str(r.action) for r in plan.rows} == {"unchanged"}, [
        (r.row, r.external_id, r.action, r.reason, r.changes)
        for r in plan.rows
        if str(r.action) != "unchanged"
    ]
