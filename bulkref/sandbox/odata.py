"""Listing with OData: ``$filter``, ``$orderby``, ``$top``, ``$skip``, ``$select``,
``$count`` and ``$skiptoken`` pages.

Filters are parsed by ``odata-query`` (a maintained OData v4 grammar) and
compiled here into a predicate over the referral JSON. The sandbox evaluates
what the documentation shows and no more, so a client tested against it does
not come to rely on operators the service may not have: ``eq``, ``ne``,
``and``, ``or``, ``not``, parentheses, paths (``customerProfile/address/country``),
boolean paths, ``any()``/``all()`` over collections
(``team/any(t:t/email eq '...')``), and string, number, boolean, GUID and
null literals. Property names are checked against the documented Referral
resource, so a typo is a 400, not an empty list. For the same reason an
enumeration value, country or currency compared with ``eq``/``ne`` must be one
the service knows (``status eq 'Bogus'`` is 400), and it matches without regard
to case (``status eq 'active'``), as bodies do; so do the ids ``id``,
``engagementId`` and ``externalReferenceId`` (GUIDs in either case are one
GUID). Other strings compare exactly.

Beyond the documentation's examples: ``ge``, ``gt``, ``le`` and ``lt`` between a
date-time property and a date-time or date literal
(``createdDateTime ge 2026-01-01T00:00:00Z``, ``updatedDateTime lt 2026-02-01``;
a date means midnight UTC). The listing page documents ``$filter`` as the way
to narrow a listing and orders by these times, and "everything since" is what
``bulkref export --since`` asks; ordering comparisons on other properties stay
refused (400).

Paging tokens: ``$skiptoken`` is the URL-safe base64 of a small JSON array
holding the whole query (filter, order, select, count, what is left of
``$top``) and the sort key of the last referral handed out; a request with a
``$skiptoken`` continues that query and ignores other options. The sort key
ends with the referral's insertion sequence number, so every referral has a
distinct key, and the next page is "keys after this one": referrals created
while a client pages never shift the pages it has yet to read (with the default
order they appear at the end; ordered by time descending they sort before the
pages read and are not seen). Ordering by ``updatedDateTime`` while others
write can move a referral across pages: it is seen twice or not at all, as with
any keyset paging on a changing key.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, Protocol

from odata_query import ast
from odata_query.exceptions import ODataException, ParsingException, TokenizingException
from odata_query.grammar import ODataLexer, ODataParser

from bulkref.sandbox.document import Doc
from bulkref.sandbox.errors import ApiError, invalid
from bulkref.sandbox.rules import Shape, referral_shape
from bulkref.sandbox.service import load as load_service

SORTABLE = ("createdDateTime", "updatedDateTime")
OPTIONS = frozenset({"$filter", "$orderby", "$top", "$skip", "$select", "$count", "$skiptoken"})
_TOKEN_VERSION = 1
#: Top-level properties the store indexes: ``p eq 'v'`` on one of them is a look-up, not a scan.
LOOKUP_PROPERTIES = ("id", "engagementId", "externalReferenceId")

Predicate = Callable[[Doc], bool]
_Getter = Callable[[Doc, dict[str, Any]], Any]
_Test = Callable[[Doc, dict[str, Any]], bool]


class Row(Protocol):
    """What a listing needs of a stored referral."""

    seq: int
    doc: Doc
    text: str  # the stored document's JSON, as listings send it
    created: int
    updated: int


@dataclass(frozen=True)
class Query:
    filter: str | None = None
    orderby: tuple[tuple[str, bool], ...] = ()  # (field, descending)
    top: int | None = None  # how many referrals are still to be handed out
    skip: int = 0
    select: tuple[str, ...] | None = None
    count: bool = False
    after: tuple[int, ...] | None = None  # sort key of the last referral handed out


@dataclass(frozen=True)
class Page:
    rows: list[Row]
    next: Query | None
    count: int | None
    examined: int = 0  # referrals the filter was checked against


@dataclass(frozen=True)
class Filter:
    """A compiled ``$filter``: call it on a document; ``lookups`` are the
    (property, value) pairs of which a match must have one (an equality on an
    indexed property, or an ``or`` of them), None when any referral may match."""

    test: Predicate
    lookups: tuple[tuple[str, str], ...] | None

    def __call__(self, doc: Doc) -> bool:
        return self.test(doc)


# -- query options -----------------------------------------------------------------


def parse_query(params: Mapping[str, str], documented: bool = False, any_plays: bool = False) -> Query:
    """The query of a ``GET /referrals``; raises ApiError(400) on anything malformed.
    ``documented``: a filter may use only what the documentation shows (``--filters documented``).
    ``any_plays``: solutionArea and solutionPlay are free text (``solution_areas="any"``)."""
    unknown = sorted(k for k in params if k.startswith("$") and k not in OPTIONS)
    if unknown:
        raise invalid(f"Query option {unknown[0]} is not supported.", unknown[0])
    if "$skiptoken" in params:
        return decode_token(params["$skiptoken"], any_plays)
    text = params.get("$filter")
    if text is not None:
        compile_filter(text, any_plays)  # refuse a bad filter now, not on some later page
        if documented:
            check_documented(text)
    return Query(
        filter=text or None,
        orderby=_orderby(params.get("$orderby")),
        top=_whole(params, "$top"),
        skip=_whole(params, "$skip") or 0,
        select=_select(params.get("$select")),
        count=_flag(params.get("$count")),
    )


def _whole(params: Mapping[str, str], name: str) -> int | None:
    text = params.get(name)
    if text is None:
        return None
    if not text.strip().isdigit():
        raise invalid(f"{name} must be a whole number of 0 or more, not '{text}'.", name)
    return int(text)


def _flag(text: str | None) -> bool:
    if text is None or text.lower() == "false":
        return False
    if text.lower() == "true":
        return True
    raise invalid(f"$count must be true or false, not '{text}'.", "$count")


def _orderby(text: str | None) -> tuple[tuple[str, bool], ...]:
    if not text or not text.strip():
        return ()
    out: list[tuple[str, bool]] = []
    for item in text.split(","):
        words = item.split()
        if (
            not words
            or len(words) > 2
            or words[0] not in SORTABLE
            or (len(words) == 2 and words[1].lower() not in ("asc", "desc"))
        ):
            raise invalid(
                f"$orderby '{item.strip()}' is not one of {' or '.join(SORTABLE)} followed by asc or desc.",
                "$orderby",
            )
        out.append((words[0], len(words) == 2 and words[1].lower() == "desc"))
    return tuple(out)


def _select(text: str | None) -> tuple[str, ...] | None:
    if text is None or not text.strip():
        return None
    fields = tuple(f.strip() for f in text.split(","))
    known = referral_shape().fields
    for name in fields:
        if name not in known:
            raise invalid(
                f"$select: '{name}' is not a property of a referral "
                "(only top-level properties can be selected).",
                "$select",
            )
    return fields


# -- paging tokens -------------------------------------------------------------------


def encode_token(query: Query) -> str:
    state = [
        _TOKEN_VERSION,
        query.filter,
        [[f, d] for f, d in query.orderby],
        query.top,
        list(query.select) if query.select is not None else None,
        query.count,
        list(query.after) if query.after is not None else None,
    ]
    raw = json.dumps(state, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_token(token: str, any_plays: bool = False) -> Query:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        version, text, orderby, top, select, count, after = json.loads(raw)
        if version != _TOKEN_VERSION:
            raise ValueError(version)
        query = Query(
            filter=text,
            orderby=tuple((str(f), bool(d)) for f, d in orderby),
            top=top,
            select=tuple(select) if select is not None else None,
            count=bool(count),
            after=tuple(int(k) for k in after) if after is not None else None,
        )
        if text:
            compile_filter(text, any_plays)
    except (binascii.Error, ValueError, TypeError):
        raise invalid("$skiptoken is not a token this sandbox handed out.", "$skiptoken") from None
    return query


# -- pages -------------------------------------------------------------------------


def sort_key(row: Row, orderby: tuple[tuple[str, bool], ...]) -> tuple[int, ...]:
    key: list[int] = []
    for name, descending in orderby:
        value = row.created if name == "createdDateTime" else row.updated
        key.append(-value if descending else value)
    key.append(row.seq)
    return tuple(key)


def page(rows: Sequence[Row], query: Query, page_size: int, any_plays: bool = False) -> Page:
    """One page of ``rows`` (given in insertion order) for ``query``. ``rows`` may be
    all referrals or only the candidates of the filter's ``lookups``."""
    predicate = compile_filter(query.filter, any_plays) if query.filter else None
    examined = len(rows) if predicate is not None else 0
    limit = page_size if query.top is None else min(page_size, query.top)
    count: int | None = None
    if query.orderby:
        matching = (r for r in rows if predicate is None or predicate(r.doc))
        keyed = sorted(((sort_key(r, query.orderby), r) for r in matching), key=lambda kr: kr[0])
        start = bisect_right(keyed, query.after, key=lambda kr: kr[0]) if query.after else 0
        candidates = iter(keyed[start:])
        if query.count:
            count = len(keyed)
    else:
        start = bisect_right(rows, query.after[0], key=lambda r: r.seq) if query.after else 0
        candidates = (((r.seq,), r) for r in rows[start:] if predicate is None or predicate(r.doc))
        if query.count:
            count = len(rows) if predicate is None else sum(1 for r in rows if predicate(r.doc))
    for _ in range(query.skip):
        if next(candidates, None) is None:
            break
    taken: list[tuple[tuple[int, ...], Row]] = []
    for item in candidates:
        if len(taken) == limit:
            # One more match exists: there is a next page unless $top is used up.
            remaining = None if query.top is None else query.top - len(taken)
            if remaining != 0 and taken:
                after = taken[-1][0]
                following = replace(query, top=remaining, skip=0, after=after)
                return Page([r for _, r in taken], following, count, examined)
            break
        taken.append(item)
    return Page([r for _, r in taken], None, count, examined)


def project(doc: Doc, select: tuple[str, ...] | None) -> Doc:
    if select is None:
        return doc
    return {name: doc.get(name) for name in select}


# -- $filter -----------------------------------------------------------------------


@lru_cache(maxsize=256)
def compile_filter(text: str, any_plays: bool = False) -> Filter:
    """A predicate for ``text``; raises ApiError(400) when it is malformed or
    uses what the sandbox does not implement. Cached: a listing asks again for
    every page. ``any_plays``: checked against the resource shape in which
    solutionArea and solutionPlay are free text."""
    tree = _parse(text)
    test = _Compiler(referral_shape(any_plays)).boolean(tree, {})
    return Filter(lambda doc: test(doc, {}), _lookups(tree))


def _parse(text: str) -> ast._Node:
    try:
        tree = ODataParser().parse(ODataLexer().tokenize(text))
    except TokenizingException as exc:
        raise invalid(
            f"$filter cannot be read at position {exc.token.index}: "
            f"unexpected '{text[exc.token.index : exc.token.index + 10]}'.",
            "$filter",
        ) from None
    except ParsingException as exc:
        if exc.eof or exc.token is None:
            raise invalid(
                "$filter ends too early (an unfinished comparison or a missing ')').", "$filter"
            ) from None
        index = exc.token.index
        raise invalid(
            f"$filter cannot be read at position {index}: unexpected '{text[index : index + 10]}'.", "$filter"
        ) from None
    except ODataException as exc:
        raise invalid(f"$filter is not valid: {exc}.", "$filter") from None
    if tree is None:
        raise invalid("$filter is empty.", "$filter")
    return tree


def _lookups(node: ast._Node) -> tuple[tuple[str, str], ...] | None:
    """The index look-ups that find every match of ``node``, or None (scan)."""
    if isinstance(node, ast.BoolOp):
        left, right = _lookups(node.left), _lookups(node.right)
        if isinstance(node.op, ast.And):  # either side narrows: the smaller one
            sides = [side for side in (left, right) if side is not None]
            return min(sides, key=len) if sides else None
        return left + right if left is not None and right is not None else None
    if isinstance(node, ast.Compare) and isinstance(node.comparator, ast.Eq):
        for name, literal in ((node.left, node.right), (node.right, node.left)):
            if (
                isinstance(name, ast.Identifier)
                and name.name in LOOKUP_PROPERTIES
                and isinstance(literal, ast.String | ast.GUID)
            ):
                return ((name.name, literal.val),)
    return None


# -- --filters documented ------------------------------------------------------------


@lru_cache(maxsize=256)
def check_documented(text: str) -> None:
    """Refuse (400 invalidRequest) a filter beyond what the listing page shows:
    its properties compared with ``eq`` to a literal, ``team/any(t:t/email eq '...')``,
    joined by ``and``. The real service may refuse the rest, or ignore it."""
    _documented(_parse(text))


def _documented(node: ast._Node) -> None:
    if isinstance(node, ast.BoolOp):
        if not isinstance(node.op, ast.And):
            raise _undocumented("'or'")
        _documented(node.left)
        _documented(node.right)
        return
    if isinstance(node, ast.Compare):
        if not isinstance(node.comparator, ast.Eq):
            raise _undocumented(f"operator '{_OPERATOR_WORDS.get(type(node.comparator), 'that')}'")
        if not isinstance(node.left, ast.Identifier | ast.Attribute) or _is_path(node.right):
            raise _undocumented("a comparison that is not 'property eq literal'")
        name = _path_text(node.left)
        if name not in load_service().filter_properties:
            raise _undocumented(f"property '{name}'")
        return
    if isinstance(node, ast.CollectionLambda):
        owner = _path_text(node.owner)
        member = load_service().filter_collections.get(owner)
        lambda_ = node.lambda_
        body = lambda_.expression if lambda_ is not None else None
        if (
            member is None
            or not isinstance(node.operator, ast.Any)
            or lambda_ is None
            or not isinstance(body, ast.Compare)
            or not isinstance(body.comparator, ast.Eq)
            or _path_text(body.left) != f"{lambda_.identifier.name}/{member}"
            or _is_path(body.right)
        ):
            raise _undocumented(f"'{owner}/{type(node.operator).__name__.lower()}(...)'")
        return
    raise _undocumented(f"'{_path_text(node)}'")


def _is_path(node: ast._Node) -> bool:
    return isinstance(node, ast.Identifier | ast.Attribute)


_OPERATOR_WORDS = {
    ast.NotEq: "ne",
    ast.Gt: "gt",
    ast.GtE: "ge",
    ast.Lt: "lt",
    ast.LtE: "le",
    ast.In: "in",
}


def _undocumented(what: str) -> Exception:
    service = load_service()
    allowed = ", ".join(service.filter_properties)
    collections = ", ".join(f"{c}/any(x:x/{m} eq '...')" for c, m in service.filter_collections.items())
    return invalid(
        f"$filter: {what} is not one the documentation shows; with --filters documented a filter "
        f"compares {allowed} or {collections} with eq, joined by and.",
        "$filter",
    )


class _Compiler:
    def __init__(self, root: Shape) -> None:
        self.root = root

    def boolean(self, node: ast._Node, scope: dict[str, Shape]) -> _Test:
        if isinstance(node, ast.BoolOp):
            left, right = self.boolean(node.left, scope), self.boolean(node.right, scope)
            if isinstance(node.op, ast.And):
                return lambda doc, env: left(doc, env) and right(doc, env)
            return lambda doc, env: left(doc, env) or right(doc, env)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            operand = self.boolean(node.operand, scope)
            return lambda doc, env: not operand(doc, env)
        if isinstance(node, ast.Compare):
            return self.compare(node, scope)
        if isinstance(node, ast.CollectionLambda):
            return self.collection(node, scope)
        if isinstance(node, ast.Boolean):
            value = node.val.lower() == "true"
            return lambda doc, env: value
        if isinstance(node, ast.Identifier | ast.Attribute):
            getter, shape = self.path(node, scope)
            if shape.kind != "bool":
                raise invalid(
                    f"$filter: {_path_text(node)} is not true/false; compare it with eq or ne.", "$filter"
                )
            return lambda doc, env: getter(doc, env) is True
        raise _unsupported(node)

    def compare(self, node: ast.Compare, scope: dict[str, Shape]) -> _Test:
        times = isinstance(node.left, ast.DateTime | ast.Date) or isinstance(
            node.right, ast.DateTime | ast.Date
        )
        if isinstance(node.comparator, _RANGE) or (times and isinstance(node.comparator, ast.Eq | ast.NotEq)):
            return self.ordering(node, scope)
        if not isinstance(node.comparator, ast.Eq | ast.NotEq):
            raise invalid(
                f"$filter: operator '{type(node.comparator).__name__.lower()}' is not supported "
                "(the sandbox implements eq and ne, and ge, gt, le, lt on date-time "
                "properties).",
                "$filter",
            )
        folded = self.folded(node, scope)
        if folded is not None:
            get, wanted = folded
            if isinstance(node.comparator, ast.Eq):
                return lambda doc, env: _fold(get(doc, env)) == wanted
            return lambda doc, env: _fold(get(doc, env)) != wanted
        left, right = self.operand(node.left, scope), self.operand(node.right, scope)
        if isinstance(node.comparator, ast.Eq):
            return lambda doc, env: _equal(left(doc, env), right(doc, env))
        return lambda doc, env: not _equal(left(doc, env), right(doc, env))

    def folded(self, node: ast.Compare, scope: dict[str, Shape]) -> tuple[_Getter, str] | None:
        """For ``path eq|ne 'text'`` (either way round) where case does not matter,
        the path's getter and the text casefolded; None for an ordinary comparison.

        Case does not matter for the ids (``id``, ``engagementId``,
        ``externalReferenceId``: a GUID is the same GUID in upper case, and a
        look-up that misses on case reads as "absent", so the referral gets
        created twice) nor for enumeration values, countries and currencies,
        which bodies match without regard to case. An enumeration value, country
        or currency the service does not know is refused (400), not compared:
        ``status eq 'Bogus'`` answering an empty list would read as "none"."""
        for path, literal in ((node.left, node.right), (node.right, node.left)):
            if not isinstance(path, ast.Identifier | ast.Attribute) or not isinstance(
                literal, ast.String | ast.GUID
            ):
                continue
            get, shape = self.path(path, scope)
            text = literal.val
            if shape.kind in _CHECKED_KINDS:
                try:
                    text = shape.check(text, (_path_text(path),))
                except ApiError as exc:
                    raise invalid(f"$filter: {exc.message}", "$filter") from None
            elif not (
                isinstance(path, ast.Identifier) and path.name not in scope and path.name in LOOKUP_PROPERTIES
            ):
                return None
            return get, text.casefold()
        return None

    def ordering(self, node: ast.Compare, scope: dict[str, Shape]) -> _Test:
        """``time-property ge|gt|le|lt|eq|ne date-time literal``, either way round (as instants)."""
        op = _ORDERING[type(node.comparator)]
        left, right = node.left, node.right
        if isinstance(left, ast.DateTime | ast.Date):  # 2026-01-01 le createdDateTime
            left, right = right, left
            op = _FLIPPED[op]
        name = _OPERATOR_NAMES[type(node.comparator)]
        literal = isinstance(right, ast.DateTime | ast.Date)
        if not isinstance(left, ast.Identifier | ast.Attribute) or not literal:
            raise invalid(
                f"$filter: {name} compares a date-time property with a date-time literal "
                "(createdDateTime ge 2026-01-01T00:00:00Z).",
                "$filter",
            )
        getter, shape = self.path(left, scope)
        if shape.kind != "time":
            raise invalid(
                f"$filter: {name} is supported on date-time properties only ({_path_text(left)} is not one).",
                "$filter",
            )
        assert isinstance(right, ast.DateTime | ast.Date)
        bound = _instant(right.val)
        if bound is None:
            raise invalid(f"$filter: '{right.val}' is not a date or date-time.", "$filter")

        def test(doc: Doc, env: dict[str, Any]) -> bool:
            value = getter(doc, env)
            moment = _instant(value) if isinstance(value, str) else None
            return moment is not None and op(moment, bound)

        return test

    def operand(self, node: ast._Node, scope: dict[str, Shape]) -> _Getter:
        if isinstance(node, ast.Identifier | ast.Attribute):
            return self.path(node, scope)[0]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            raise invalid("$filter: not binds tighter than eq and ne; write not (a eq b).", "$filter")
        value = _literal(node)
        return lambda doc, env: value

    def collection(self, node: ast.CollectionLambda, scope: dict[str, Shape]) -> _Test:
        owner, shape = self.path(node.owner, scope)
        if shape.kind != "array" or shape.item is None:
            raise invalid(f"$filter: {_path_text(node.owner)} is not a collection.", "$filter")
        every = isinstance(node.operator, ast.All)
        if node.lambda_ is None:
            if every:
                return lambda doc, env: True
            return lambda doc, env: bool(owner(doc, env))
        name = node.lambda_.identifier.name
        body = self.boolean(node.lambda_.expression, {**scope, name: shape.item})
        if every:
            return lambda doc, env: all(body(doc, {**env, name: item}) for item in owner(doc, env) or ())
        return lambda doc, env: any(body(doc, {**env, name: item}) for item in owner(doc, env) or ())

    def path(self, node: ast._Node, scope: dict[str, Shape]) -> tuple[_Getter, Shape]:
        parts: list[str] = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.owner
        if not isinstance(node, ast.Identifier):
            raise _unsupported(node)
        parts.append(node.name)
        parts.reverse()
        variable = parts[0] if parts[0] in scope else None
        shape = scope[variable] if variable else self.root
        names = parts[1:] if variable else parts
        for i, name in enumerate(names):
            child = shape.child(name) if shape.kind == "object" else None
            if child is None:
                where = "/".join(parts[: i + (2 if variable else 1)])
                raise invalid(f"$filter: '{where}' is not a property of a referral.", "$filter")
            shape = child
        steps = tuple(names)

        def get(doc: Doc, env: dict[str, Any]) -> Any:
            value: Any = env[variable] if variable else doc
            for step in steps:
                if not isinstance(value, dict):
                    return None
                value = value.get(step)
            return value

        return get, shape


def _literal(node: ast._Node) -> Any:
    if isinstance(node, ast.String | ast.GUID):
        return node.val
    if isinstance(node, ast.Integer):
        return int(node.val)
    if isinstance(node, ast.Float):
        return float(node.val)
    if isinstance(node, ast.Boolean):
        return node.val.lower() == "true"
    if isinstance(node, ast.Null):
        return None
    raise _unsupported(node)


_Order = Callable[[dt.datetime, dt.datetime], bool]
_RANGE = (ast.Gt, ast.GtE, ast.Lt, ast.LtE)
_ORDERING: dict[type, _Order] = {
    ast.Gt: lambda a, b: a > b,
    ast.GtE: lambda a, b: a >= b,
    ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b,
    ast.Eq: lambda a, b: a == b,
    ast.NotEq: lambda a, b: a != b,
}
_FLIPPED: dict[_Order, _Order] = {
    _ORDERING[ast.Eq]: _ORDERING[ast.Eq],
    _ORDERING[ast.NotEq]: _ORDERING[ast.NotEq],
    _ORDERING[ast.Gt]: _ORDERING[ast.Lt],
    _ORDERING[ast.Lt]: _ORDERING[ast.Gt],
    _ORDERING[ast.GtE]: _ORDERING[ast.LtE],
    _ORDERING[ast.LtE]: _ORDERING[ast.GtE],
}
_OPERATOR_NAMES = {ast.Gt: "gt", ast.GtE: "ge", ast.Lt: "lt", ast.LtE: "le", ast.Eq: "eq", ast.NotEq: "ne"}


def _instant(text: str) -> dt.datetime | None:
    """A stored time (``...T09:11:20.1234567Z``) or a literal as an aware UTC datetime;
    a bare date is midnight UTC. None when it is not a time at all."""
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


#: Shapes whose values a filter compares without regard to case, once checked.
_CHECKED_KINDS = frozenset({"enum", "country", "currency"})


def _fold(value: Any) -> str | None:
    return value.casefold() if isinstance(value, str) else None


def _equal(left: Any, right: Any) -> bool:
    # Python counts True == 1; OData does not.
    if isinstance(left, bool) != isinstance(right, bool):
        return False
    return bool(left == right)


def _path_text(node: ast._Node) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_path_text(node.owner)}/{node.attr}"
    if isinstance(node, ast.Identifier):
        return node.name
    return type(node).__name__


def _unsupported(node: ast._Node) -> Exception:
    what = node.func.name + "()" if isinstance(node, ast.Call) else type(node).__name__
    return invalid(
        f"$filter: {what} is not supported (the sandbox implements eq, ne, and, or, not, "
        "any() and all() over properties and literals).",
        "$filter",
    )
