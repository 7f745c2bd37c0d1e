"""Writes four CRM exports as their CRMs write them, the same bytes every time,
so the committed files can be checked against fresh ones:

    .venv/bin/python examples/legacy/make_exports.py

- ``pipedrive-deals.csv``: Pipedrive's deals export, every header prefixed by
  its entity (``Deal - Title``, ``Person - Email``, ``Organization - Name``);
  the stage and the open/won/lost status in two columns; the organisation's
  address as one string, in European and in Chinese order.
- ``zoho-deals.csv``: Zoho CRM's deals export from a Korean team: amounts with
  their currency code (``KRW 120,000,000``), dates like ``Dec 15, 2026``,
  contacts' names family name first (``Kim Min-jun``), ``Type`` saying New or
  Existing Business.
- ``dynamics365-export.xlsx``: Dynamics 365's "Export to Excel" of an
  opportunity view: hidden ``(Do Not Modify)`` columns and a hidden sheet,
  related columns named ``Email (Contact)``, the state (Open/Won/Lost) and its
  reason in two columns, a Yes/No co-sell column.
- ``salesforce-contact-roles.xlsx``: Salesforce's "Opportunities with Contact
  Roles" report, one row per contact role (the deal repeated on each), street
  lines in one cell, and the report's footer: a grand total, a confidentiality
  line, the copyright and who generated it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import sys
from pathlib import Path

import openpyxl

from bulkref.sheets.template import save_workbook

HERE = Path(__file__).resolve().parent

# --------------------------------------------------------------------------- Pipedrive

PIPEDRIVE_HEADERS = [
    "Deal - ID",
    "Deal - Title",
    "Deal - Creator",
    "Deal - Owner",
    "Deal - Value",
    "Deal - Currency",
    "Deal - Weighted value",
    "Deal - Probability",
    "Deal - Organization",
    "Deal - Pipeline",
    "Deal - Stage",
    "Deal - Status",
    "Deal - Deal created",
    "Deal - Expected close date",
    "Deal - Lost reason",
    "Deal - Microsoft co-sell",
    "Organization - Name",
    "Organization - Address",
    "Person - Name",
    "Person - Email",
    "Person - Phone",
]
# fmt: off
PIPEDRIVE_ROWS = [
    [
        "1041", "Fabrikam ERP move", "Jonas Weber", "Jonas Weber", "310000", "EUR", "124000", "40",
        "Fabrikam Maschinenbau GmbH", "Partners", "Proposal made", "open", "2026-09-14 10:02:11",
        "2027-02-26", "", "Yes", "Fabrikam Maschinenbau GmbH", "Leopoldstraße 12, 80802 München, Germany",
        "Anna Schäfer", "anna.schaefer@fabrikam.example", "+49 89 1234 5678",
    ],
    [
        "1042", "Contoso Madrid data platform", "Jonas Weber", "Lucía Ortega", "84500.50", "EUR", "16900.1",
        "20", "Contoso Iberia S.L.", "Partners", "Qualified", "open", "2026-10-02 08:45:00", "2027-04-30",
        "", "No", "Contoso Iberia S.L.", "Calle de Alcalá 48, 28014 Madrid, Spain", "Lucía Fernández",
        "lucia.fernandez@contoso-iberia.example", "+34 91 555 0148",
    ],
    [
        "1043", "Northwind Beijing Copilot pilot", "Jonas Weber", "Jonas Weber", "1250000", "CNY", "875000",
        "70", "北京北风贸易有限公司", "Partners", "Negotiations started", "open", "2026-08-21 03:12:40",
        "2026-12-18", "", "Yes", "北京北风贸易有限公司", "中国北京市建国路88号 邮政编码: 100022", "王伟",
        "wang.wei@northwind-bj.example", "+86 10 5555 0188",
    ],
    [
        "1044", "Tailspin Paris helpdesk", "Lucía Ortega", "Lucía Ortega", "56000", "EUR", "0", "0",
        "Tailspin Toys SAS", "Partners", "Contact made", "lost", "2026-05-11 14:30:00", "2026-09-30",
        "Chose another vendor", "No", "Tailspin Toys SAS", "Rue de Rivoli 99, 75001 Paris, France",
        "Camille Martin", "camille.martin@tailspin.example", "+33 1 55 55 01 23",
    ],
    [
        "1045", "Litware Amsterdam security", "Lucía Ortega", "Jonas Weber", "142000", "EUR", "142000",
        "100", "Litware B.V.", "Partners", "Negotiations started", "won", "2026-03-02 09:00:00",
        "2026-10-15", "", "Yes", "Litware B.V.", "Keizersgracht 123, 1015 CJ Amsterdam, Netherlands",
        "Daan de Vries", "daan.devries@litware.example", "+31 20 555 0101",
    ],
    [
        "1046", "Adventure Works Vienna CRM", "Jonas Weber", "Jonas Weber", "47250", "EUR", "4725", "10",
        "Adventure Works GmbH", "Partners", "Qualified", "open", "2026-11-03 16:20:05", "2027-06-30", "",
        "No", "Adventure Works GmbH", "Kärntner Straße 21, 1010 Wien, Austria", "Lukas Gruber",
        "lukas.gruber@adventure-works.example", "+43 1 555 0177",
    ],
]
# fmt: on


def pipedrive() -> bytes:
    return _csv(PIPEDRIVE_HEADERS, PIPEDRIVE_ROWS, ",")


# --------------------------------------------------------------------------- Zoho CRM

ZOHO_HEADERS = [
    "Record Id",
    "Deal Owner",
    "Deal Name",
    "Amount",
    "Closing Date",
    "Account Name",
    "Stage",
    "Type",
    "Probability (%)",
    "Lead Source",
    "Contact Name",
    "Contact Email",
    "Phone",
    "Billing Street",
    "Billing City",
    "Billing Code",
    "Billing Country",
    "Description",
    "Created Time",
]
# fmt: off
ZOHO_ROWS = [
    [
        "zcrm_5725767000000412001", "Park Ji-woo", "Hanbit Logistics - Azure migration", "KRW 120,000,000",
        "Dec 15, 2026", "Hanbit Logistics Co., Ltd.", "Needs Analysis", "New Business", "20", "Partner",
        "Kim Min-jun", "minjun.kim@hanbit.example", "+82 2 555 0101", "152 Teheran-ro, Gangnam-gu", "Seoul",
        "06236", "South Korea", "Move the WMS to Azure.", "2026-09-01 10:14:00",
    ],
    [
        "zcrm_5725767000000412002", "Park Ji-woo", "Daehan Bio - Fabric analytics", "USD 310,000.00",
        "Mar 31, 2027", "Daehan Bio Inc.", "Proposal/Price Quote", "New Business", "75", "Web Site",
        "Lee Seo-yeon", "seoyeon.lee@daehanbio.example", "+82 31 555 0123", "55 Pangyo-ro, Bundang-gu",
        "Seongnam", "13494", "South Korea", "Lab data in one lakehouse.", "2026-08-22 09:40:00",
    ],
    [
        "zcrm_5725767000000412003", "Choi Jae-won", "Mirae Retail - Copilot rollout", "KRW 85,000,000",
        "Nov 30, 2026", "Mirae Retail Corp.", "Closed Won", "Existing Business", "100", "Partner",
        "Choi Yu-na", "yuna.choi@mirae.example", "+82 51 555 0199", "30 Haeundae-ro", "Busan", "48094",
        "South Korea", "2,000 seats, phase one.", "2026-06-01 11:00:00",
    ],
    [
        "zcrm_5725767000000412004", "Choi Jae-won", "Sakura Foods - Dynamics 365 Finance", "JPY 18,500,000",
        "Jan 29, 2027", "Sakura Foods K.K.", "Qualification", "New Business", "10", "Trade Show",
        "Sato Haruto", "haruto.sato@sakurafoods.example", "+81 3 5555 0101", "1-1-2 Otemachi", "Tokyo",
        "100-0004", "Japan", "Replace the on-premises ERP.", "2026-10-05 08:30:00",
    ],
    [
        "zcrm_5725767000000412005", "Park Ji-woo", "Hanbit Logistics - Sentinel", "KRW 42,000,000",
        "Sep 30, 2026", "Hanbit Logistics Co., Ltd.", "Closed Lost", "Existing Business", "0", "Partner",
        "Kim Min-jun", "minjun.kim@hanbit.example", "+82 2 555 0101", "152 Teheran-ro, Gangnam-gu", "Seoul",
        "06236", "South Korea", "Went with their telco's SOC.", "2026-03-09 15:20:00",
    ],
    [
        "zcrm_5725767000000412006", "Choi Jae-won", "Mirae Retail - AVD for stores", "USD 64,500.00",
        "Feb 27, 2027", "Mirae Retail Corp.", "Value Proposition", "Existing Business", "40", "Partner",
        "Jung Ha-eun", "haeun.jung@mirae.example", "+82 51 555 0142", "30 Haeundae-ro", "Busan", "48094",
        "South Korea", "Remote desktops for 300 stores.", "2026-11-02 13:45:00",
    ],
]
# fmt: on


def zoho() -> bytes:
    return _csv(ZOHO_HEADERS, ZOHO_ROWS, ",")


# --------------------------------------------------------------------------- Dynamics 365

DYNAMICS_SHEET = "My Open Opportunities"
DYNAMICS_HEADERS = [
    "(Do Not Modify) Opportunity",
    "(Do Not Modify) Row Checksum",
    "(Do Not Modify) Modified On",
    "Topic",
    "Potential Customer",
    "Est. Close Date",
    "Est. Revenue",
    "Currency",
    "Status",
    "Status Reason",
    "Contact",
    "Email (Contact)",
    "Business Phone (Contact)",
    "Street 1 (Account)",
    "City (Account)",
    "ZIP/Postal Code (Account)",
    "Country/Region (Account)",
    "Co-sell Requested",
    "Owner",
]
# fmt: off
DYNAMICS_ROWS: list[list[object]] = [
    [
        "5d0e2a1c-7b3f-ef11-8409-000d3a4b2c20", "hQ3mX8pL0vTz1YbNcKg2Rw==",
        dt.datetime(2026, 11, 14, 9, 12), "Azure landing zone for plants", "Fabrikam Maschinenbau GmbH",
        dt.datetime(2027, 1, 29), 125000.0, "Euro", "Open", "In Progress", "Anna Schäfer",
        "anna.schaefer@fabrikam.example", "+49 89 1234 5678", "Leopoldstraße 120", "München", "80802",
        "Germany", "Yes", "Jonas Weber",
    ],
    [
        "5d0e2a1c-7b3f-ef11-8409-000d3a4b2c21", "Zp4sX8cV1nM6qL3wR0tYkA==",
        dt.datetime(2026, 11, 12, 16, 40), "Lab systems to Azure", "Contoso Pharmaceuticals AG",
        dt.datetime(2027, 3, 15), 48500.0, "Swiss Franc", "Open", "On Hold", "Luca Bernasconi",
        "luca.bernasconi@contoso-pharma.example", "+41 61 555 01 23", "Grenzacherstrasse 7", "Basel",
        "4058", "Switzerland", "No", "Jonas Weber",
    ],
    [
        "5d0e2a1c-7b3f-ef11-8409-000d3a4b2c22", "Ab7dF2gH9jK4lM1nP6qR3s==",
        dt.datetime(2026, 10, 30, 11, 5), "Copilot for the sales team", "Woodgrove Bank",
        dt.datetime(2026, 10, 28), 210000.0, "Pound Sterling", "Won", "Won", "Oliver Hughes",
        "oliver.hughes@woodgrove.example", "+44 20 7946 0958", "1 Canada Square", "London", "E14 5AB",
        "United Kingdom", "Yes", "Lea Brunner",
    ],
    [
        "5d0e2a1c-7b3f-ef11-8409-000d3a4b2c23", "Cd8eG3hJ0kL5mN2pQ7rS4t==", dt.datetime(2026, 9, 3, 8, 0),
        "Dynamics 365 Field Service", "Alpine Ski House", dt.datetime(2026, 9, 30), 67000.0, "Euro", "Lost",
        "Out-Sold", "Katharina Huber", "k.huber@alpineskihouse.example", "+43 512 555 010",
        "Maria-Theresien-Straße 18", "Innsbruck", "6020", "Austria", "No", "Lea Brunner",
    ],
    [
        "5d0e2a1c-7b3f-ef11-8409-000d3a4b2c24", "Ef9fH4jK1lM6nP3qR8sT5u==",
        dt.datetime(2026, 11, 20, 14, 30), "Fabric for finance reporting", "Tailwind Traders Inc.",
        dt.datetime(2027, 5, 31), 96000.0, "US Dollar", "Open", "In Progress", "Maya Johnson",
        "maya.johnson@tailwind.example", "+1 206 555 0142", "400 Pine St", "Seattle", "98101",
        "United States", "Yes", "Jonas Weber",
    ],
]
# fmt: on


def dynamics() -> openpyxl.Workbook:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = DYNAMICS_SHEET
    ws.append(DYNAMICS_HEADERS)
    for row in DYNAMICS_ROWS:
        ws.append(row)
    for letter in "ABC":  # Dynamics hides the columns that find the record again
        ws.column_dimensions[letter].hidden = True
    for cell in ws["F"][1:]:
        cell.number_format = "d/m/yyyy"
    for cell in ws["G"][1:]:
        cell.number_format = '"€"#,##0.00'
    hidden = wb.create_sheet("hiddenSheet")  # where Dynamics keeps the entity name and the view
    hidden.append(["opportunity", "My Open Opportunities", "c5d6e7f8-0000-0000-0000-00000000a1b2"])
    hidden.sheet_state = "hidden"
    return wb


# --------------------------------------------------------------------------- Salesforce

SALESFORCE_SHEET = "Opportunities with Contact Ro"  # Salesforce cuts the sheet name at 31 characters
SALESFORCE_HEADERS = [
    "Opportunity Owner",
    "Account Name",
    "Opportunity Name",
    "Stage",
    "Amount",
    "Opportunity Currency",
    "Close Date",
    "Opportunity ID",
    "Type",
    "Lead Source",
    "Billing Street",
    "Billing City",
    "Billing Zip/Postal Code",
    "Billing Country",
    "Contact: Full Name",
    "Contact: Email",
    "Contact: Phone",
    "Contact Role",
    "Primary",
]
# fmt: off
_DEALS: dict[str, list[object]] = {
    "coho": [
        "Maria Lopez", "Coho Winery", "Coho Winery - Business Central", "Prospecting", 38000.0, "USD",
        "12/15/2026", "0065g00000RyBaAAAV", "New Customer", "Partner Referral",
        "4100 Vineyard Rd\nBuilding C", "Napa", "94558", "United States",
    ],
    "fourth": [
        "Daniel Chen", "Fourth Coffee", "Fourth Coffee - Copilot rollout", "Closed Won", 120000.0, "USD",
        "11/03/2026", "0065g00000RyBbBAAV", "Existing Customer - Upgrade", "Partner Referral",
        "77 King Street West\nSuite 4400", "Toronto", "M5K 1A1", "Canada",
    ],
    "wide": [
        "Daniel Chen", "Wide World Importers", "Wide World Importers - SAP on Azure",
        "Proposal/Price Quote", 480000.0, "USD", "04/30/2027", "0065g00000RyBcCAAV", "New Customer",
        "Microsoft Referral", "Av. Paulista 1578\n12º andar", "São Paulo", "01310-200", "Brazil",
    ],
    "trey": [
        "Aisha Patel", "Trey Research", "Trey Research - Fabric analytics", "Value Proposition", 87250.5,
        "GBP", "03/15/2027", "0065g00000RyBdDAAV", "New Customer", "Trade Show", "10 Fleet Place", "London",
        "EC4M 7QS", "United Kingdom",
    ],
    "lamna": [
        "Aisha Patel", "Lamna Healthcare", "Lamna Healthcare - Sentinel SOC", "Negotiation/Review",
        152000.0, "AUD", "12/20/2026", "0065g00000RyBeEAAV", "New Customer", "Partner Referral",
        "200 George Street\nLevel 18", "Sydney", "2000", "Australia",
    ],
}
# fmt: on
# fmt: off
_ROLES: list[tuple[str, list[object]]] = [
    ("coho", [
        "Paul Henriot", "paul.henriot@cohowinery.example", "(707) 555-0134", "Decision Maker", 1,
    ]),
    ("coho", [
        "Ana Trujillo", "ana.trujillo@cohowinery.example", "(707) 555-0177", "Evaluator", 0,
    ]),
    ("fourth", [
        "Nadia Rahman", "nadia.rahman@fourthcoffee.example", "+1 416 555 0110", "Economic Buyer", 1,
    ]),
    ("fourth", [
        "Tom Baker", "tom.baker@fourthcoffee.example", "+1 416 555 0121", "Technical Buyer", 0,
    ]),
    ("fourth", [
        "Priya Nair", "priya.nair@fourthcoffee.example", "", "Influencer", 0,
    ]),
    ("wide", [
        "Camila Duarte", "camila.duarte@wideworld.example", "+55 11 5555 0123", "Decision Maker", 1,
    ]),
    ("trey", [
        "Harriet Lowe", "harriet.lowe@treyresearch.example", "+44 20 5555 0147", "Economic Buyer", 1,
    ]),
    ("trey", [
        "George Reid", "george.reid@treyresearch.example", "+44 20 5555 0152", "Evaluator", 0,
    ]),
    ("lamna", [
        "Liam O'Connor", "liam.oconnor@lamnahealth.example", "+61 2 5550 1234", "Decision Maker", 1,
    ]),
    ("lamna", [
        "Grace Kim", "grace.kim@lamnahealth.example", "+61 2 5550 1299", "Technical Buyer", 0,
    ]),
    ("lamna", [
        "Liam O'Connor", "liam.oconnor@lamnahealth.example", "+61 2 5550 1234", "Executive Sponsor", 0,
    ]),
]
# fmt: on
SALESFORCE_FOOTER = [
    "Confidential Information - Do Not Distribute",
    "Copyright (c) 2000-2026 salesforce.com, inc. All rights reserved.",
    "Generated By:  Maria Lopez  12/1/2026 9:14 AM",
    "Adatum Partners Ltd",
]


def salesforce() -> openpyxl.Workbook:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = SALESFORCE_SHEET
    ws.append(SALESFORCE_HEADERS)
    for deal, role in _ROLES:
        ws.append([*_DEALS[deal], *role])
    ws.append([])
    total = sum(float(_DEALS[d][4]) for d, _ in _ROLES)  # type: ignore[arg-type]
    ws.append([f"Grand Totals ({len(_ROLES)} records)", None, None, None, total])
    ws.append([])
    for line in SALESFORCE_FOOTER:
        ws.append([line])
    for cell in ws["E"][1:]:
        cell.number_format = "#,##0.00"
    return wb


# --------------------------------------------------------------------------- writing


def _csv(headers: list[str], rows: list[list[str]], delimiter: str) -> bytes:
    buf = io.StringIO(newline="")
    w = csv.writer(buf, delimiter=delimiter, lineterminator="\r\n")
    w.writerow(headers)
    w.writerows(rows)
    return buf.getvalue().encode("utf-8")


def write(folder: Path = HERE) -> list[Path]:
    out = []
    for name, data in (("pipedrive-deals.csv", pipedrive()), ("zoho-deals.csv", zoho())):
        (folder / name).write_bytes(data)
        out.append(folder / name)
    for name, wb in (
        ("dynamics365-export.xlsx", dynamics()),
        ("salesforce-contact-roles.xlsx", salesforce()),
    ):
        out.append(save_workbook(wb, folder / name))
    return out


def main() -> int:
    for path in write():
        print(f"Wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
