"""Writes salesforce-opportunities.xlsx, an "Opportunities with Contacts" report
as Salesforce exports it (Export > Details Only > Excel): the same bytes every
time, so the committed file can be checked against a fresh one.

    .venv/bin/python examples/legacy/make_salesforce.py

Amounts and Created Date are real Excel numbers and dates; Close Date is text
in the US form (mm/dd/yyyy), as reports with a formatted date column export
it; Billing Street holds its lines in one cell.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import openpyxl

from bulkref.sheets.template import save_workbook

HERE = Path(__file__).resolve().parent
OUT = HERE / "salesforce-opportunities.xlsx"
SHEET = "Report"

HEADERS = [
    "Opportunity Owner",
    "Account Name",
    "Opportunity Name",
    "Stage",
    "Fiscal Period",
    "Amount",
    "Opportunity Currency",
    "Probability (%)",
    "Close Date",
    "Created Date",
    "Next Step",
    "Lead Source",
    "Type",
    "Opportunity ID",
    "Billing Street",
    "Billing City",
    "Billing State/Province",
    "Billing Zip/Postal Code",
    "Billing Country",
    "Contact: Full Name",
    "Contact: Email",
    "Contact: Phone",
    "Primary Product",
    "Secondary Product",
    "Description",
]

ROWS: list[list[object]] = [
    [
        "Maria Lopez",
        "Coho Winery",
        "Coho Winery - Dynamics 365 Business Central",
        "Prospecting",
        "Q4-2026",
        38000.0,
        "USD",
        10,
        "12/15/2026",
        dt.datetime(2026, 9, 2),
        "Discovery call",
        "Partner Referral",
        "New Customer",
        "0065g00000QxAaBAAV",
        "4100 Vineyard Rd\nBuilding C",
        "Napa",
        "CA",
        "94558",
        "United States",
        "Paul Henriot",
        "paul.henriot@cohowinery.example",
        "(707) 555-0134",
        "Dynamics 365 Business Central",
        "",
        "Replace QuickBooks across three tasting rooms.",
    ],
    [
        "Maria Lopez",
        "Margie's Travel",
        "Margie's Travel - Azure Virtual Desktop",
        "Needs Analysis",
        "Q1-2027",
        64500.0,
        "USD",
        35,
        "01/31/2027",
        dt.datetime(2026, 8, 19),
        "Sizing workshop",
        "Web",
        "New Customer",
        "0065g00000QxAbCAAV",
        "1200 Pine St",
        "Portland",
        "OR",
        "97205",
        "USA",
        "Margie Shoop",
        "margie@margiestravel.example",
        "+1 503 555 0199",
        "Azure Virtual Desktop",
        "Microsoft 365 E3",
        "Remote agents in 14 branches.",
    ],
    [
        "Daniel Chen",
        "Fourth Coffee",
        "Fourth Coffee - Copilot rollout",
        "Closed Won",
        "Q4-2026",
        120000.0,
        "USD",
        100,
        "11/03/2026",
        dt.datetime(2026, 6, 1),
        "",
        "Partner Referral",
        "Existing Customer - Upgrade",
        "0065g00000QxAcDAAV",
        "77 King Street West\nSuite 4400",
        "Toronto",
        "ON",
        "M5K 1A1",
        "Canada",
        "Nadia Rahman",
        "nadia.rahman@fourthcoffee.example",
        "+1 416 555 0110",
        "Microsoft 365 Copilot",
        "Microsoft 365 E5",
        "1,000 seats signed.",
    ],
    [
        "Daniel Chen",
        "Wide World Importers",
        "Wide World Importers - SAP on Azure",
        "Proposal/Price Quote",
        "Q2-2027",
        480000.0,
        "USD",
        60,
        "04/30/2027",
        dt.datetime(2026, 7, 14),
        "Send SOW",
        "Microsoft Referral",
        "New Customer",
        "0065g00000QxAdEAAV",
        "Av. Paulista 1578\n12º andar",
        "São Paulo",
        "SP",
        "01310-200",
        "Brasil",
        "Camila Duarte",
        "camila.duarte@wideworld.example",
        "+55 11 5555 0123",
        "Azure Migrate",
        "Azure SQL Managed Instance",
        "S/4HANA move, 22 TB.",
    ],
    [
        "Aisha Patel",
        "Trey Research",
        "Trey Research - Fabric analytics",
        "Value Proposition",
        "Q1-2027",
        87250.5,
        "GBP",
        40,
        "03/15/2027",
        dt.datetime(2026, 10, 5),
        "Demo to CFO",
        "Trade Show",
        "New Customer",
        "0065g00000QxAeFAAV",
        "10 Fleet Place",
        "London",
        "",
        "EC4M 7QS",
        "UK",
        "Harriet Lowe",
        "harriet.lowe@treyresearch.example",
        "+44 20 5555 0147",
        "Microsoft Fabric",
        "",
        "Unify lab and finance reporting.",
    ],
    [
        "Aisha Patel",
        "Lamna Healthcare",
        "Lamna Healthcare - Sentinel SOC",
        "Negotiation/Review",
        "Q4-2026",
        152000.0,
        "AUD",
        80,
        "12/20/2026",
        dt.datetime(2026, 5, 27),
        "Legal review",
        "Partner Referral",
        "New Customer",
        "0065g00000QxAfGAAV",
        "200 George Street\nLevel 18",
        "Sydney",
        "NSW",
        "2000",
        "Australia",
        "Liam O'Connor",
        "liam.oconnor@lamnahealth.example",
        "+61 2 5550 1234",
        "Microsoft Sentinel",
        "Microsoft Defender for Cloud",
        "24x7 SOC for 9 hospitals.",
    ],
    [
        "Maria Lopez",
        "Proseware",
        "Proseware - Dynamics 365 Customer Service",
        "Closed Lost",
        "Q3-2026",
        56000.0,
        "USD",
        0,
        "09/30/2026",
        dt.datetime(2026, 3, 9),
        "",
        "Web",
        "New Customer",
        "0065g00000QxAgHAAV",
        "500 Congress Ave",
        "Austin",
        "TX",
        "78701",
        "United States",
        "Erik Lindqvist",
        "erik.lindqvist@proseware.example",
        "+1 512 555 0188",
        "Dynamics 365 Customer Service",
        "",
        "Chose to stay on their current CRM.",
    ],
    [
        "Daniel Chen",
        "Tokyo Tailspin",
        "Tokyo Tailspin - Azure OpenAI assistant",
        "Qualification",
        "Q2-2027",
        9500000.0,
        "JPY",
        20,
        "05/31/2027",
        dt.datetime(2026, 11, 2),
        "Intro meeting",
        "Microsoft Referral",
        "New Customer",
        "0065g00000QxAhIAAV",
        "1-1-2 Otemachi\nChiyoda Tower 15F",
        "Chiyoda-ku",
        "Tokyo",
        "100-0004",
        "Japan",
        "Haruto Sato",
        "haruto.sato@tokyotailspin.example",
        "+81 3 5555 0101",
        "Azure OpenAI Service",
        "",
        "Customer support assistant in Japanese.",
    ],
]


def build() -> openpyxl.Workbook:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = SHEET
    ws.append(HEADERS)
    for row in ROWS:
        ws.append(row)
    for cell in ws["J"][1:]:  # Created Date, shown as Salesforce's report shows it
        cell.number_format = "m/d/yyyy"
    for cell in ws["F"][1:]:
        cell.number_format = "#,##0.00"
    return wb


def main() -> int:
    save_workbook(build(), OUT)
    print(f"Wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
