"""The compiled getters the export reads rows with answer as get_path does, for every path."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from bulkref.spec.columns import SPEC
from bulkref.spec.jsonpaths import get_path, getter, set_path, setter

PATHS = sorted(
    {c.path for c in SPEC.columns({"contact": 3, "solution": 3, "team": 3, "target": 2}) if c.path}
    | {g.path for g in SPEC.groups}
    | {
        "",
        "customerProfile/ids[profileType=External]",
        "customerProfile/ids[profileType=duns]/id",
        "details/requirements/industries[]",
        "a[]/b[k=v]/c",
        "a/b/c/d",
    }
)

DOCS: list[Any] = [
    None,
    "text",
    [],
    {},
    {
        "id": "r1",
        "customerProfile": {
            "name": "Contoso",
            "address": {"city": "Seattle", "country": None},
            "ids": [{"profileType": "External", "id": "E1"}, {"profileType": "DUNS", "id": "123456789"}, 7],
            "team": [{"firstName": "Sue"}, "not an object", None],
        },
        "details": {
            "requirements": {
                "industries": [{"id": "Retail"}, {"id": ""}, {"id": None}, {}, "x"],
                "products": "not a list",
                "additionalRequirements": {"attributes": [{"type": "customerMarketplaceIntent", "id": "Y"}]},
            },
            "dealValue": 0,
        },
        "consent": {"consentToShareReferralWithMicrosoftSellers": False},
        "a": [{"b": [{"k": "V", "c": 1}]}, {"b": [{"k": "w", "c": 2}]}, {"b": None}],
        "": "the empty name",
    },
    {"customerProfile": "not an object", "details": [], "a": {"b": 1}},
    {"customerProfile": {"ids": {"profileType": "External"}, "address": []}},
]


@pytest.mark.parametrize("path", PATHS)
def test_getter_answers_as_get_path(path: str) -> None:
    get = getter(path)
    for doc in DOCS:
        assert get(doc) == get_path(doc, path), (path, doc)


def test_getter_is_made_once_per_path() -> None:
    assert getter("customerProfile/address/city") is getter("customerProfile/address/city")


def test_a_compiled_setter_writes_what_set_path_writes() -> None:
    paths = {c.path for c in SPEC.columns() if c.path} | {g.path for g in SPEC.groups}
    assert any("[" in p for p in paths) and any("/" in p and "[" not in p for p in paths)
    for path in sorted(paths):
        value: object = ("a", "b") if path.endswith("[]/id") else "v"
        for start in ({}, {"customerProfile": {"name": "kept"}, "details": {"notes": "kept"}}):
            by_set_path, by_setter = copy.deepcopy(start), copy.deepcopy(start)
            set_path(by_set_path, path, value)
            setter(path)(by_setter, value)
            assert by_setter == by_set_path, path
            assert by_setter != start, path
