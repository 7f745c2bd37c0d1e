"""Reading and writing the column spec's paths in a Referral document.

The spec's path syntax (see bulkref/spec.py): ``a/b/c``; ``name[key=value]/field``
for the item of a list picked by one of its fields; ``name[]/id`` for a list of
``{"id": ...}`` items held in one cell. Both directions live here so that the
payload builder, the diff and the export agree on what a path means.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

_SELECT = re.compile(r"^(\w+)\[(?:(\w+)=([^\]]+))?\]$")


def _segments(path: str) -> list[str]:
    return path.split("/")


@lru_cache(maxsize=1024)
def _compiled(path: str) -> tuple[tuple[str, str | None, str | None, bool], ...]:
    """``path`` as (name, key, casefolded value, is a selection) steps: parsed once, since
    planning a sheet reads the same few dozen paths in every row."""
    steps = []
    for part in _segments(path):
        m = _SELECT.match(part)
        if m is None:
            steps.append((part, None, None, False))
        else:
            name, key, value = m.groups()
            steps.append((name, key, None if value is None else value.casefold(), True))
    return tuple(steps)


def get_path(doc: Any, path: str) -> Any:
    """The value at ``path``; a tuple of ids for ``name[]/id``; None where absent."""
    node = doc
    steps = _compiled(path)
    for i, (name, key, value, selection) in enumerate(steps):
        if not isinstance(node, dict):
            return None
        if not selection:
            node = node.get(name)
            continue
        items = node.get(name)
        if not isinstance(items, list):
            return None
        if key is None:  # name[]/field: every item's field
            rest = "/".join(_segments(path)[i + 1 :])
            found = tuple(v for item in items if (v := get_path(item, rest)) not in (None, ""))
            return found or None
        node = next(
            (it for it in items if isinstance(it, dict) and str(it.get(key, "")).casefold() == value),
            None,
        )
    return node


def set_path(doc: dict[str, Any], path: str, value: Any) -> None:
    """Set ``path`` to ``value``, creating what is missing on the way."""
    node = doc
    parts = _segments(path)
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        m = _SELECT.match(part)
        if m is None:
            if last:
                node[part] = value
                return
            node = node.setdefault(part, {})
            continue
        name, key, selector = m.groups()
        items = node.setdefault(name, [])
        rest = "/".join(parts[i + 1 :])
        if key is None:  # one item per value of the cell's list
            items[:] = []
            for v in value:
                item: dict[str, Any] = {}
                set_path(item, rest, v)
                items.append(item)
            return
        item = next((it for it in items if str(it.get(key, "")).casefold() == selector.casefold()), None)
        if item is None:
            item = {key: selector}
            items.append(item)
        node = item


def pointer(path: str) -> str:
    """The JSON Pointer (RFC 6901) of the list or field a spec path writes:
    ``customerProfile/ids[profileType=Duns]/id`` -> ``/customerProfile/ids``,
    since a patch replaces such a list whole."""
    out = []
    for part in _segments(path):
        m = _SELECT.match(part)
        if m:
            out.append(m.group(1))
            break
        out.append(part)
    return "/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in out)


def at_pointer(doc: Any, ptr: str) -> tuple[bool, Any]:
    """(exists, value) of a JSON Pointer in ``doc``."""
    node = doc
    for raw in ptr.lstrip("/").split("/"):
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False, None
    return True, node
