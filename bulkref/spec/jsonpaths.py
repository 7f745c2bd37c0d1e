"""Reading and writing the column spec's paths in a Referral document.

The spec's path syntax (see bulkref/spec.py): ``a/b/c``; ``name[key=value]/field``
for the item of a list picked by one of its fields; ``name[]/id`` for a list of
``{"id": ...}`` items held in one cell. Both directions live here so that the
payload builder, the diff and the export agree on what a path means.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import cache, lru_cache
from typing import Any

_SELECT = re.compile(r"^(\w+)\[(?:(\w+)=([^\]]+))?\]$")


def _segments(path: str) -> list[str]:
    return path.split("/")


@lru_cache(maxsize=1024)
def _compiled(path: str) -> tuple[tuple[str, str | None, str | None, bool], ...]:
    """``path`` as (name, key, casefolded value, is a selection) steps: parsed once, since
    planning a sheet reads the same few dozen paths in every row."""
    steps: list[tuple[str, str | None, str | None, bool]] = []
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


@cache
def getter(path: str) -> Callable[[Any], Any]:
    """``get_path(doc, path)`` as a function of ``doc``, the path parsed once.

    The export reads every column of every referral (100,000 of them in a large
    one): matching each segment against the selector syntax for every cell was
    most of its time. Same answers as ``get_path``, for every path."""
    parts = _segments(path)
    for i, part in enumerate(parts):
        m = _SELECT.match(part)
        if m is not None:
            name, key, value = m.groups()
            return _selecting(_walker(tuple(parts[:i])), name, key, value, parts[i + 1 :])
    return _walker(tuple(parts))


def _selecting(
    head: Callable[[Any], Any], name: str, key: str | None, value: str | None, rest: list[str]
) -> Callable[[Any], Any]:
    """The getter of ``<head>/name[key=value]/<rest>`` (or ``name[]/<rest>``)."""
    if key is None:  # name[]/field: every item's field
        field = getter("/".join(rest))

        def every(doc: Any) -> Any:
            node = head(doc)
            items = node.get(name) if isinstance(node, dict) else None
            if not isinstance(items, list):
                return None
            found = tuple(v for item in items if (v := field(item)) not in (None, ""))
            return found or None

        return every
    then = getter("/".join(rest)) if rest else _itself
    wanted = str(value).casefold()

    def picked(doc: Any) -> Any:
        node = head(doc)
        items = node.get(name) if isinstance(node, dict) else None
        if not isinstance(items, list):
            return None
        for it in items:
            if isinstance(it, dict) and str(it.get(key, "")).casefold() == wanted:
                return then(it)
        return then(None)

    return picked


def _itself(node: Any) -> Any:
    return node


def _walker(keys: Sequence[str]) -> Callable[[Any], Any]:
    """The plain ``a/b/c`` part of a path: None as soon as a step is not an object."""
    if not keys:
        return _itself
    if len(keys) == 1:
        (only,) = keys

        def one(doc: Any) -> Any:
            return doc.get(only) if isinstance(doc, dict) else None

        return one

    def walk(doc: Any) -> Any:
        node = doc
        for k in keys:
            if not isinstance(node, dict):
                return None
            node = node.get(k)
        return node

    return walk


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
        found: dict[str, Any] | None = next(
            (it for it in items if str(it.get(key, "")).casefold() == selector.casefold()), None
        )
        if found is None:
            found = {key: selector}
            items.append(found)
        node = found


@cache
def setter(path: str) -> Callable[[dict[str, Any], Any], None]:
    """``set_path`` for ``path``, parsed once: a payload sets some forty paths per row.
    A path that picks a list's item is left to ``set_path``."""
    parts = _segments(path)
    if any(_SELECT.match(part) for part in parts):
        return lambda doc, value: set_path(doc, path, value)
    *parents, leaf = parts

    def plain(doc: dict[str, Any], value: Any) -> None:
        node = doc
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value

    return plain


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
