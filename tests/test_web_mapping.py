"""The mapping page over HTTP: a CRM export goes there, the form prefilled by
suggest_mapping; the form saved is a mapping file that replaces the import's,
is downloadable, and is used again for the next upload with the same headers."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import CRM_EXPORT, SALESFORCE, csrf_of
from helpers import check_counts as counts
from helpers import upload_bytes as upload

import bulkref
from bulkref.web import mapping_form
from bulkref.web.app import Settings
from bulkref.web.server import WebServer

LEGACY = Path(__file__).parent.parent / "examples" / "legacy"
# The issue's export, with what a template needs: an id, an address, a contact.
EXPORT = CRM_EXPORT


@pytest.fixture
def server(sandbox: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[WebServer]:
    monkeypatch.setenv("BULKREF_ACCESS_TOKEN", sandbox.token)
    monkeypatch.setenv("BULKREF_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("BULKREF_API_URL", raising=False)
    with WebServer(Settings(api_url=sandbox.url, home=tmp_path / "home", port=0)) as web:
        yield web


def form_of(page: str) -> dict[str, str]:
    """The mapping form's inputs and selected options, as a browser would send them."""
    form = page[page.index('id="mapping-form"') : page.index("</form>", page.index('id="mapping-form"'))]
    data: dict[str, str] = {}
    for tag in re.findall(r"<input [^>]*>", form):
        name = re.search(r'name="([^"]+)"', tag)
        if name is None or ('type="checkbox"' in tag and "checked" not in tag):
            continue
        value = re.search(r'value="([^"]*)"', tag)
        data[_unescape(name.group(1))] = _unescape(value.group(1)) if value else ""
    for name, body in re.findall(r'<select name="([^"]+)"[^>]*>(.*?)</select>', form, re.S):
        options = re.findall(r"<option( value=\"([^\"]*)\")?( selected)?>([^<]*)</option>", body)
        chosen = next((o for o in options if o[2]), options[0] if options else None)
        if chosen is not None:
            data[_unescape(name)] = _unescape(chosen[1] if chosen[0] else chosen[3])
    return data


def _unescape(text: str) -> str:
    return (
        text.replace("&#34;", '"')
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
    )


def field_index(data: dict[str, str], name: str) -> str:
    return next(k[: -len(".field")] for k, v in data.items() if k.endswith(".field") and v == name)


def choose(data: dict[str, str], field: str, source: str, mapped: dict[str, str] | None = None) -> None:
    """Set ``field``'s source (and value map entries) as a person would in the form."""
    i = field_index(data, field)
    data[f"{i}.source"] = source
    for key in [k for k in data if k.startswith(f"{i}.map") and k.endswith(".from")]:
        to = (mapped or {}).get(data[key])
        if to is not None:
            data[key[: -len(".from")] + ".to"] = to


def test_a_crm_export_is_mapped_saved_kept_and_offered_again(server: WebServer) -> None:
    c = httpx.Client(base_url=server.url, timeout=60)
    r = c.post("/imports", data={"csrf": csrf_of(c)}, files={"file": ("opportunities.csv", EXPORT.encode())})
    assert r.status_code == 303 and r.headers["location"].endswith("/mapping")
    base = r.headers["location"].rsplit("/", 1)[0]
    page = c.get(base + "/mapping").text
    data = form_of(page)
    # Prefilled by the suggestion: names, the stage's value map waiting for a choice.
    assert data[field_index(data, "Referral Name") + ".source"] == "col:Opportunity Name"
    status = field_index(data, "Status")
    assert data[status + ".source"] == "col:Stage"
    assert {data[k] for k in data if k.startswith(status + ".map") and k.endswith(".to")} >= {"?", "Closed"}
    assert "To decide" in page and "remove the #" not in page
    assert 'id="preview-grid"' in page  # previewed from the start

    choose(data, "Status", "col:Stage", {"Prospecting": "New", "Qualification": "New"})
    choose(data, "Substatus", "col:Stage", {"Prospecting": "Pending", "Qualification": "Received"})
    choose(data, "Country", "col:Billing Country", {"U.S.": "US"})
    choose(data, "External Reference ID", "col:Opportunity ID")
    choose(data, "Currency", "col:Currency")
    i = field_index(data, "Deal Type")
    data[f"{i}.source"], data[f"{i}.value"] = "value", "Partner-led"

    preview = c.post(base + "/mapping/preview", data=data)
    assert preview.status_code == 200 and 'id="preview-grid"' in preview.text
    assert "<html" not in preview.text  # the fragment alone

    saved = c.post(base + "/mapping", data={**data, "action": "save"})
    assert saved.status_code == 303 and saved.headers["location"].endswith("/check")
    check = c.get(base + "/check").text
    n = counts(check)
    assert n["rows"] == 3 and n["ready"] == 3 and n["errors in 0 rows"] == 0, check[-3000:]
    toml = c.get(base + "/mapping.toml")
    assert toml.status_code == 200 and "attachment" in toml.headers["content-disposition"]
    mapping = tomllib.loads(toml.text)
    assert mapping["fields"]["Status"]["values"]["Prospecting"] == "New"
    assert mapping["source"]["date_format"] == "%m/%d/%Y"

    # The next upload with the same headers: the kept mapping, said so, straight to Check.
    again = EXPORT.replace("Deal 1", "Deal one")
    r = c.post("/imports", data={"csrf": csrf_of(c)}, files={"file": ("next-month.csv", again.encode())})
    assert r.status_code == 303 and r.headers["location"].endswith("/check")
    page = c.get(r.headers["location"]).text
    assert "kept from an earlier import with the same columns" in page
    assert counts(page)["ready"] == 3
    # The plan reads it through that mapping.
    assert (
        c.post(r.headers["location"].rsplit("/", 1)[0] + "/plan", data={"csrf": csrf_of(c)}).status_code
        == 303
    )


def test_a_corrected_mapping_replaces_the_old_one_in_the_same_import(server: WebServer) -> None:
    c = httpx.Client(base_url=server.url, timeout=60)
    base = upload(
        c, "salesforce.csv", SALESFORCE.encode(), b'[fields]\n"Referral Name" = "Opportunity Name"\n'
    )
    imp_id = base.rsplit("/", 1)[1]
    first = server.app.web.store.get(imp_id).mapping
    page = c.get(base + "/mapping").text
    assert "This is the import's mapping" in page
    text = (
        '[fields]\n"Referral Name" = "Opportunity Name"\n"Customer Name" = "Account Name"\n'
        '"Deal Value" = "Amount"\n"Closing Date" = "Close Date"\n'
        '"External Reference ID" = "Opportunity Name"\n"Address Line 1" = { value = "1 Main St" }\n'
        '"City" = { value = "Seattle" }\n"Country" = { value = "US" }\n"Currency" = { value = "USD" }\n'
        '"Deal Type" = { value = "Partner-led" }\n"Customer Contact 1 Email" = { value = "a@b.example" }\n'
        '[source]\ndate_format = "%m/%d/%Y"\n'
    )
    r = c.post(base + "/mapping", data={"csrf": csrf_of(c), "action": "toml", "toml": text})
    assert r.status_code == 303, r.text[-2000:]
    imp = server.app.web.store.get(imp_id)
    assert imp.mapping != first and not first.exists()  # replaced, in the same import
    assert counts(c.get(base + "/check").text)["ready"] == 10
    assert len(server.app.web.store.recent(10)) == 1


def test_a_mapping_that_cannot_be_used_is_said_with_its_line_and_not_saved(server: WebServer) -> None:
    c = httpx.Client(base_url=server.url, timeout=60)
    base = upload(
        c, "salesforce.csv", SALESFORCE.encode(), b'[fields]\n"Referral Name" = "Opportunity Name"\n'
    )
    before = server.app.web.store.get(base.rsplit("/", 1)[1]).mapping.read_text()
    bad = (
        '[fields]\n"Referral Name" = "Opportunity Name"\n'
        '"Status" = { column = "Stage", values = { "Prospecting" = "Open" } }\n'
    )
    r = c.post(base + "/mapping", data={"csrf": csrf_of(c), "action": "toml", "toml": bad})
    assert r.status_code == 422
    said = re.search(r'id="mapping-error"[^>]*>(.*?)</div>', r.text, re.S)
    assert said is not None and "line 3" in said.group(1) and "not a Status" in said.group(1)
    assert "draft-" not in r.text and str(server.app.web.home) not in r.text
    assert "Open" in r.text  # the text typed is kept in the box
    assert server.app.web.store.get(base.rsplit("/", 1)[1]).mapping.read_text() == before


def test_the_form_round_trips_every_option_of_the_example_mappings() -> None:
    """Each example mapping, shown in the form and sent back unchanged, is the same mapping."""
    fields = bulkref.mapping_fields()
    for toml in sorted(LEGACY.glob("*.mapping.toml")):
        doc = tomllib.loads(toml.read_text(encoding="utf-8"))
        draft = mapping_form.from_document(doc)
        form: dict[str, str] = {}
        for k, v in draft.source.items():
            form[f"source.{k}"] = str(v)
        for k, rule in enumerate(draft.skips):
            form[f"skip{k}.column"] = rule["column"]
            form[f"skip{k}.when"] = "blank" if rule.get("blank") else "pattern"
            form[f"skip{k}.pattern"] = rule.get("pattern", "")
            form[f"skip{k}.and_below"] = "1" if rule.get("and_below") else ""
            form[f"skip{k}.reason"] = rule.get("reason", "")
        for k, (name, text) in enumerate(draft.patterns.items()):
            form[f"pattern{k}.name"], form[f"pattern{k}.text"] = name, text
        for row in mapping_form.rows(draft, fields, None):
            p = f"f{row.index}."
            form[p + "field"], form[p + "source"], form[p + "value"] = row.name, row.source, row.value
            form[p + "extra"] = row.extra_json
            for option, value in row.options.items():
                form[p + option] = value
            for j, (source, to) in enumerate(row.value_map):
                form[f"{p}map{j}.from"], form[f"{p}map{j}.to"] = source, to
        back = tomllib.loads(mapping_form.to_toml(mapping_form.from_form(form), toml.name))
        assert back.get("fields") == _plain(doc["fields"]), toml.name
        assert back.get("skip", []) == doc.get("skip", []) and back.get("patterns") == doc.get("patterns")


def _plain(fields: dict[str, Any]) -> dict[str, Any]:
    """Entries as the form gives them back: values as text (Yes/No for true/false)."""
    out: dict[str, Any] = {}
    for name, entry in fields.items():
        if isinstance(entry, dict) and isinstance(entry.get("value"), bool):
            entry = {**entry, "value": "Yes" if entry["value"] else "No"}
        if isinstance(entry, dict) and isinstance(entry.get("values"), dict):
            entry = {
                **entry,
                "values": {
                    k: ("Yes" if v else "No") if isinstance(v, bool) else str(v)
                    for k, v in entry["values"].items()
                },
            }
        out[name] = entry
    return out
