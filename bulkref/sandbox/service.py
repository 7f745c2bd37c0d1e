"""The service's enumerations and status rules, read from ``data/service.toml``.

The sandbox's own copy, written from the API documentation: it never reads
bulkref's tables (``bulkref/data/enums.toml``), so that it checks the client
instead of agreeing with it.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True)
class Service:
    enums: dict[str, tuple[str, ...]]
    substatus_of: dict[str, tuple[str, ...]]
    transitions: dict[str, tuple[str, ...]]
    solution_plays: dict[str, tuple[str, ...]]
    filter_properties: tuple[str, ...]
    filter_collections: dict[str, str]

    def values(self, name: str) -> tuple[str, ...]:
        return self.enums[name]


@cache
def load() -> Service:
    text = resources.files("bulkref.sandbox").joinpath("data/service.toml").read_text(encoding="utf-8")
    raw = tomllib.loads(text)
    enums = {name: tuple(values) for name, values in raw["enums"].items()}
    plays = {area: tuple(values) for area, values in raw["solution_plays"].items()}
    enums["solution_area"] = tuple(plays)
    enums["solution_play"] = tuple(dict.fromkeys(p for values in plays.values() for p in values))
    filters = raw["documented_filters"]
    return Service(
        enums=enums,
        substatus_of={k: tuple(v) for k, v in raw["substatus_of"].items()},
        transitions={k: tuple(v) for k, v in raw["transitions"].items()},
        solution_plays=plays,
        filter_properties=tuple(filters["properties"]),
        filter_collections=dict(filters["any"]),
    )
