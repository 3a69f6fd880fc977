"""MongoDB query semantics evaluated over plain ``dict`` records.

The local DocDB stand-in must answer the same filters, projections and aggregation
pipelines the production code sends to the real (MongoDB-compatible) DocumentDB, so
that code tested locally behaves the same against the cloud. This module implements
the subset of Mongo semantics that the biodata-cache code and the
``aind_data_access_api`` client use, as pure functions with no server state:

* :func:`matches` / :func:`compile_filter` — query filters, including Mongo's implicit
  traversal of arrays on dotted paths and its null/missing rules.
* :func:`project` / :func:`compile_projection` — inclusion and exclusion projections.
* :func:`aggregate` — a pipeline of ``$match``, ``$project``, ``$group``, ``$unwind``,
  ``$sort``, ``$limit``, ``$skip``, ``$count`` and ``$replaceRoot``.
* :func:`sort_records` / :func:`sort_key` — Mongo's cross-type ordering
  (missing/null < numbers < strings < objects < arrays < booleans), which never raises
  on mixed types.

The subset is what the production code sends (``tests/local/test_mongo_oracle.py``
checks each of those shapes against mongomock) plus what the stand-in's own tests
exercise. Anything outside it raises :class:`QueryError` (a :class:`ValueError`)
naming the stage or operator, as DocumentDB rejects what it does not support, rather
than silently returning wrong answers; the server turns it into HTTP 400.

Filters and projections are *compiled* once into closures because the server applies
the same filter to up to 100,000 records per request; precomputing e.g. the hashed set
of an ``$in`` list keeps an ``_id $in [1,000 ids]`` check O(1) per record.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from typing import Any, Final


class _Missing:
    """Marker for "this path does not exist", distinct from an explicit JSON null.

    Only the module-level :data:`MISSING` instance is ever used (compared by identity).
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Final = _Missing()


class QueryError(ValueError):
    """A filter, projection or pipeline the local DocDB cannot evaluate (HTTP 400)."""

Record = dict[str, Any]
Predicate = Callable[[Mapping[str, Any]], bool]
# A compiled field condition receives every value a dotted path resolves to.
Condition = Callable[[list[Any]], bool]


# --------------------------------------------------------------------------------------
# Value helpers: hashing, equality, ordering
# --------------------------------------------------------------------------------------
def _is_number(value: Any) -> bool:
    # bool is a subclass of int in Python but a distinct BSON type in Mongo.
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def hash_key(value: Any) -> Hashable | None:
    """A hashable key under which Mongo-equal scalars collide, or ``None`` for null.

    Numbers of different Python types compare equal (1 == 1.0 as in Mongo) while
    ``True`` and ``1`` do not. Raises :class:`TypeError` for documents and arrays,
    which callers compare structurally instead.
    """
    if type(value) is str:
        # Strings (ids, names) are by far the most common keys; they key as themselves,
        # which cannot collide with the tagged tuples below.
        return value
    if value is None or value is MISSING:
        return None
    if isinstance(value, bool):
        return ("b", value)
    if _is_number(value):
        return ("n", value)
    if isinstance(value, str):
        return str(value)
    raise TypeError(f"unhashable Mongo value of type {type(value).__name__}")


def is_scalar(value: Any) -> bool:
    """True for values :func:`hash_key` accepts (null, booleans, numbers, strings)."""
    return value is None or value is MISSING or isinstance(value, (bool, int, float, str))


def mongo_equal(a: Any, b: Any) -> bool:
    """Mongo's equality: type-aware for booleans, field-order-sensitive for documents."""
    if a is MISSING:
        a = None
    if b is MISSING:
        b = None
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) and _is_number(b):
        return a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        if len(a) != len(b):
            return False
        return all(
            ka == kb and mongo_equal(va, vb)
            for (ka, va), (kb, vb) in zip(a.items(), b.items(), strict=True)
        )
    if isinstance(a, list):
        return len(a) == len(b) and all(mongo_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _freeze(value: Any) -> Hashable:
    """A hashable, Mongo-equality-preserving form of any JSON value (for grouping)."""
    if isinstance(value, dict):
        return ("d", tuple((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, list):
        return ("l", tuple(_freeze(v) for v in value))
    if is_scalar(value):
        return hash_key(value)
    return ("o", repr(value))


# BSON comparison order of the JSON types; see "Comparison/Sort Order" in the Mongo docs.
_RANK_EMPTY_ARRAY: Final = 0  # only used by sort on an array field: [] sorts before null
_RANK_NULL: Final = 1
_RANK_NUMBER: Final = 2
_RANK_STRING: Final = 3
_RANK_OBJECT: Final = 4
_RANK_ARRAY: Final = 5
_RANK_BOOL: Final = 8
_RANK_OTHER: Final = 10


def _type_rank(value: Any) -> int:
    if value is None or value is MISSING:
        return _RANK_NULL
    if isinstance(value, bool):
        return _RANK_BOOL
    if _is_number(value):
        return _RANK_NUMBER
    if isinstance(value, str):
        return _RANK_STRING
    if isinstance(value, dict):
        return _RANK_OBJECT
    if isinstance(value, list):
        return _RANK_ARRAY
    return _RANK_OTHER


def sort_key(value: Any) -> tuple[Any, ...]:
    """A key that orders any JSON values the way Mongo does, without type errors.

    Keys of equal rank always have the same shape, so tuple comparison never compares
    e.g. a number with a string.
    """
    rank = _type_rank(value)
    if rank == _RANK_NULL:
        return (rank,)
    if rank == _RANK_NUMBER:
        # Mongo sorts NaN below every other number.
        return (rank, -math.inf if math.isnan(value) else value)
    if rank in (_RANK_STRING, _RANK_BOOL):
        return (rank, value)
    if rank == _RANK_OBJECT:
        return (rank, tuple((k, sort_key(v)) for k, v in value.items()))
    if rank == _RANK_ARRAY:
        return (rank, tuple(sort_key(v) for v in value))
    return (rank, repr(value))


# --------------------------------------------------------------------------------------
# Path resolution
# --------------------------------------------------------------------------------------
def split_path(path: str) -> list[str]:
    """Split a dotted field path, rejecting empty segments like Mongo does."""
    if not isinstance(path, str) or not path:
        raise QueryError(f"invalid field path: {path!r}")
    parts = path.split(".")
    if any(not p for p in parts):
        raise QueryError(f"invalid field path: {path!r}")
    return parts


def resolve(node: Any, parts: Sequence[str], i: int = 0) -> list[Any]:
    """Every value a dotted path reaches in ``node``, as Mongo's query engine sees it.

    Arrays met on the way are traversed: ``a.b`` on ``{"a": [{"b": 1}, {"b": 2}]}``
    reaches ``[1, 2]``; a numeric segment also indexes into an array. The leaf value is
    returned as is (an array leaf is expanded later by the operators that need it).
    Unreachable paths yield ``[MISSING]`` so null-equality and ``$exists`` can see them.
    """
    if i == len(parts):
        return [node]
    part = parts[i]
    if isinstance(node, dict):
        if part in node:
            return resolve(node[part], parts, i + 1)
        return [MISSING]
    if isinstance(node, list):
        out: list[Any] = []
        if part.isdigit():
            index = int(part)
            if index < len(node):
                out.extend(resolve(node[index], parts, i + 1))
        for element in node:
            # Implicit traversal reaches only documents directly inside the array.
            if isinstance(element, dict):
                out.extend(resolve(element, parts, i))
        return out or [MISSING]
    return [MISSING]


def _get_plain(node: Any, parts: Sequence[str]) -> Any:
    """Follow a dotted path through documents only (no array traversal)."""
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            return MISSING
        node = node[part]
    return node


def _set_path(doc: Mapping[str, Any], parts: Sequence[str], value: Any) -> Record:
    """A copy of ``doc`` with ``value`` at the dotted path; copies only the spine."""
    new = dict(doc)
    head = parts[0]
    if len(parts) == 1:
        new[head] = value
    else:
        child = doc.get(head)
        new[head] = _set_path(child if isinstance(child, dict) else {}, parts[1:], value)
    return new


def _unset_path(doc: Mapping[str, Any], parts: Sequence[str]) -> Record:
    """A copy of ``doc`` without the dotted path; copies only the spine."""
    new = dict(doc)
    head = parts[0]
    if len(parts) == 1:
        new.pop(head, None)
    elif isinstance(doc.get(head), dict):
        new[head] = _unset_path(doc[head], parts[1:])
    return new


def _expand(values: list[Any]) -> Iterator[Any]:
    """Values plus the elements of array values: what comparison operators test."""
    for value in values:
        yield value
        if isinstance(value, list):
            yield from value


# --------------------------------------------------------------------------------------
# Filters
# --------------------------------------------------------------------------------------
def _always_true(_doc: Mapping[str, Any]) -> bool:
    return True


def matches(record: Mapping[str, Any], filter: Mapping[str, Any] | None) -> bool:
    """Whether ``record`` satisfies the Mongo query ``filter`` (``None``/``{}`` match all)."""
    return compile_filter(filter)(record)


def compile_filter(filter: Mapping[str, Any] | None) -> Predicate:
    """Compile a Mongo query document into a predicate over records.

    Raises :class:`ValueError` for malformed filters and unsupported operators.
    """
    if filter is None:
        return _always_true
    if not isinstance(filter, Mapping):
        raise QueryError(f"a query filter must be an object, got {type(filter).__name__}")
    predicates = [_compile_clause(key, value) for key, value in filter.items()]
    predicates = [p for p in predicates if p is not _always_true]
    if not predicates:
        return _always_true
    if len(predicates) == 1:
        return predicates[0]
    return lambda doc: all(p(doc) for p in predicates)


def _compile_logical(op: str, value: Any) -> list[Predicate]:
    if not isinstance(value, list) or not value:
        raise QueryError(f"{op} argument must be a non-empty array")
    if not all(isinstance(v, Mapping) for v in value):
        raise QueryError(f"{op} argument's entries must be objects")
    return [compile_filter(v) for v in value]


def _compile_clause(key: str, value: Any) -> Predicate:
    if key == "$and":
        subs = _compile_logical(key, value)
        return lambda doc: all(p(doc) for p in subs)
    if key == "$or":
        subs = _compile_logical(key, value)
        return lambda doc: any(p(doc) for p in subs)
    if key == "$nor":
        subs = _compile_logical(key, value)
        return lambda doc: not any(p(doc) for p in subs)
    if key.startswith("$"):
        # $not is a field-level operator in Mongo ({"f": {"$not": {...}}}), so a
        # top-level $not is rejected just like the real server does.
        raise QueryError(f"unknown top level operator: {key}")
    parts = split_path(key)
    condition = _compile_condition(value)
    if len(parts) == 1:
        # Fast path for plain top-level fields (the common case at 100k records).
        field = parts[0]
        return lambda doc: condition([doc.get(field, MISSING)])
    return lambda doc: condition(resolve(doc, parts))


def _is_operator_object(value: Any) -> bool:
    return isinstance(value, dict) and bool(value) and next(iter(value)).startswith("$")


def _compile_condition(value: Any) -> Condition:
    """Condition for the value side of ``{field: value}``."""
    if _is_operator_object(value):
        return _compile_operators(value)
    return _compile_eq(value)


def _compile_in(values: Sequence[Any]) -> Condition:
    """Any reached value (or array element) equals one of ``values``."""
    hashed: set[Hashable | None] = set()
    structured: list[Any] = []
    for v in values:
        if _is_operator_object(v) and "$regex" in v:
            raise QueryError("$regex inside $in is not supported by the local DocDB")
        if is_scalar(v):
            hashed.add(hash_key(v))
        else:
            structured.append(v)
    wants_null = None in hashed

    def condition(found: list[Any]) -> bool:
        for value in found:
            if type(value) is str:
                # Fast path: a plain string keys as itself (see hash_key).
                if value in hashed:
                    return True
            elif any_match(value):
                return True
        return False

    def any_match(value: Any) -> bool:
        for v in _expand([value]):
            if v is MISSING or v is None:
                if wants_null:
                    return True
            elif isinstance(v, (dict, list)):
                if structured and any(mongo_equal(v, s) for s in structured):
                    return True
            elif hash_key(v) in hashed:
                return True
        return False

    return condition


def _compile_eq(value: Any) -> Condition:
    return _compile_in([value])


def _compile_compare(op: str, value: Any) -> Condition:
    rank = _type_rank(value)
    bound = sort_key(value)
    compare: Callable[[tuple[Any, ...], tuple[Any, ...]], bool] = {
        "$gt": lambda a, b: a > b,
        "$gte": lambda a, b: a >= b,
        "$lt": lambda a, b: a < b,
        "$lte": lambda a, b: a <= b,
    }[op]

    def condition(found: list[Any]) -> bool:
        # Type bracketing: {"$gt": 5} never matches a string, as in Mongo.
        return any(_type_rank(v) == rank and compare(sort_key(v), bound) for v in _expand(found))

    return condition


_REGEX_FLAGS: Final = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE}


def _compile_regex(pattern: Any, options: Any) -> re.Pattern[str]:
    if not isinstance(pattern, str):
        raise QueryError("$regex has to be a string")
    if options is None:
        options = ""
    if not isinstance(options, str):
        raise QueryError("$options has to be a string")
    flags = 0
    for char in options:
        if char not in _REGEX_FLAGS:
            raise QueryError(f"invalid flag in $options: {char!r}")
        flags |= _REGEX_FLAGS[char]
    try:
        return re.compile(pattern, flags)
    except re.error as exc:
        raise QueryError(f"invalid $regex {pattern!r}: {exc}") from exc


_TYPE_ALIASES: Final[dict[str, Callable[[Any], bool]]] = {
    "null": lambda v: v is None,
    "bool": lambda v: isinstance(v, bool),
    "string": lambda v: isinstance(v, str),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "number": _is_number,
    "double": lambda v: isinstance(v, float),
    "int": lambda v: _is_number(v) and isinstance(v, int) and -(2**31) <= v < 2**31,
    "long": lambda v: _is_number(v) and isinstance(v, int),
}


def _compile_operators(spec: Mapping[str, Any]) -> Condition:
    """Condition for an operator object such as ``{"$gte": 1, "$lt": 5}``."""
    conditions: list[Condition] = []
    for op, arg in spec.items():
        if op == "$options":
            if "$regex" not in spec:
                raise QueryError("$options needs a $regex")
            continue
        conditions.append(_compile_operator(op, arg, spec))
    if len(conditions) == 1:
        return conditions[0]
    return lambda found: all(c(found) for c in conditions)


def _compile_operator(op: str, arg: Any, spec: Mapping[str, Any]) -> Condition:
    if op == "$eq":
        return _compile_eq(arg)
    if op == "$ne":
        eq = _compile_eq(arg)
        return lambda found: not eq(found)
    if op in ("$in", "$nin"):
        if not isinstance(arg, list):
            raise QueryError(f"{op} needs an array")
        inside = _compile_in(arg)
        if op == "$in":
            return inside
        return lambda found: not inside(found)
    if op in ("$gt", "$gte", "$lt", "$lte"):
        return _compile_compare(op, arg)
    if op == "$exists":
        want = bool(arg)
        return lambda found: any(v is not MISSING for v in found) == want
    if op == "$regex":
        rx = _compile_regex(arg, spec.get("$options"))
        return lambda found: any(isinstance(v, str) and rx.search(v) is not None for v in _expand(found))
    if op == "$not":
        if not isinstance(arg, dict) or not arg or not _is_operator_object(arg):
            raise QueryError("$not needs a regex or an operator object")
        inner = _compile_operators(arg)
        return lambda found: not inner(found)
    if op == "$elemMatch":
        return _compile_elem_match(arg)
    if op == "$size":
        if not _is_number(arg) or int(arg) != arg or arg < 0:
            raise QueryError("$size needs a non-negative whole number")
        size = int(arg)
        return lambda found: any(isinstance(v, list) and len(v) == size for v in found)
    if op == "$all":
        if not isinstance(arg, list):
            raise QueryError("$all needs an array")
        if not arg:
            return lambda found: False
        each = [_compile_condition(v) for v in arg]
        return lambda found: all(c(found) for c in each)
    if op == "$type":
        names = arg if isinstance(arg, list) else [arg]
        checks: list[Callable[[Any], bool]] = []
        for name in names:
            if name not in _TYPE_ALIASES:
                raise QueryError(f"unsupported $type: {name!r}")
            checks.append(_TYPE_ALIASES[name])
        return lambda found: any(
            v is not MISSING and any(check(v) for check in checks) for v in _expand(found)
        )
    raise QueryError(f"unknown operator: {op}")


def _compile_elem_match(arg: Any) -> Condition:
    if not isinstance(arg, dict):
        raise QueryError("$elemMatch needs an object")
    if _is_operator_object(arg) and not any(k in ("$and", "$or", "$nor") for k in arg):
        # {"$elemMatch": {"$gte": 80, "$lt": 85}}: operators on the elements themselves.
        on_value = _compile_operators(arg)

        def element_ok(element: Any) -> bool:
            return on_value([element])

    else:
        # {"$elemMatch": {"name": "x", "value": {"$gt": 1}}}: a query on each element.
        on_doc = compile_filter(arg)

        def element_ok(element: Any) -> bool:
            return isinstance(element, dict) and on_doc(element)

    return lambda found: any(
        isinstance(v, list) and any(element_ok(e) for e in v) for v in found
    )


# --------------------------------------------------------------------------------------
# Sorting
# --------------------------------------------------------------------------------------
def _sort_items(spec: Any) -> list[tuple[list[str], bool]]:
    """Normalise a sort spec (object or list of pairs) into (path parts, descending)."""
    if isinstance(spec, Mapping):
        items = list(spec.items())
    elif isinstance(spec, list) and all(isinstance(p, (list, tuple)) and len(p) == 2 for p in spec):
        items = [(p[0], p[1]) for p in spec]
    else:
        raise QueryError("sort specification must be an object")
    if not items:
        raise QueryError("sort specification must not be empty")
    out: list[tuple[list[str], bool]] = []
    for path, direction in items:
        if isinstance(direction, dict):
            raise QueryError(f"unsupported sort direction for {path!r}: {direction!r}")
        if direction not in (1, -1) or isinstance(direction, bool):
            raise QueryError(f"sort direction for {path!r} must be 1 or -1")
        out.append((split_path(path), direction == -1))
    return out


def _field_sort_key(doc: Mapping[str, Any], parts: list[str], descending: bool) -> tuple[Any, ...]:
    # Mongo sorts an array field by its smallest element ascending, largest descending.
    keys: list[tuple[Any, ...]] = []
    for value in resolve(doc, parts):
        if isinstance(value, list):
            if value:
                keys.extend(sort_key(e) for e in value)
            else:
                keys.append((_RANK_EMPTY_ARRAY,))
        else:
            keys.append(sort_key(value))
    return max(keys) if descending else min(keys)


def sort_records(records: list[Any], spec: Any) -> list[Any]:
    """A new list of ``records`` ordered by a Mongo sort spec; stable for ties."""
    items = _sort_items(spec)
    out = list(records)
    # Stable sorts applied from the least to the most significant key compose into a
    # multi-key sort with per-key directions (reverse=True keeps stability in Python).
    for parts, descending in reversed(items):
        out.sort(key=lambda d, p=parts, r=descending: _field_sort_key(d, p, r), reverse=descending)
    return out


# --------------------------------------------------------------------------------------
# Aggregation expressions
# --------------------------------------------------------------------------------------
def _expr_path(node: Any, parts: Sequence[str], i: int = 0) -> Any:
    """Aggregation field-path semantics: arrays map to arrays of the reached values."""
    if i == len(parts):
        return node
    if isinstance(node, dict):
        if parts[i] in node:
            return _expr_path(node[parts[i]], parts, i + 1)
        return MISSING
    if isinstance(node, list):
        out = []
        for element in node:
            if isinstance(element, (dict, list)):
                reached = _expr_path(element, parts, i)
                if reached is not MISSING:
                    out.append(reached)
        return out
    return MISSING


def evaluate(expr: Any, root: Mapping[str, Any]) -> Any:
    """Evaluate an aggregation expression against ``root`` (may return ``MISSING``).

    Supported: ``"$path"`` references, literals, object and array expressions, and
    the operators ``$literal``, ``$ifNull``, ``$eq`` and ``$ne``.
    """
    if isinstance(expr, str):
        if expr.startswith("$$"):
            raise QueryError(f"aggregation variables are not supported by the local DocDB: {expr}")
        if expr.startswith("$"):
            return _expr_path(root, split_path(expr[1:]))
        return expr
    if isinstance(expr, list):
        return [None if (v := evaluate(e, root)) is MISSING else v for e in expr]
    if isinstance(expr, dict):
        if _is_operator_object(expr):
            if len(expr) != 1:
                raise QueryError(f"an expression object must have exactly one operator: {list(expr)}")
            op, arg = next(iter(expr.items()))
            return _evaluate_operator(op, arg, root)
        out = {}
        for key, sub in expr.items():
            value = evaluate(sub, root)
            if value is not MISSING:  # missing fields are left out, as in Mongo
                out[key] = value
        return out
    return expr


def _evaluate_operator(op: str, arg: Any, root: Mapping[str, Any]) -> Any:
    if op == "$literal":
        return arg
    args = arg if isinstance(arg, list) else [arg]
    if op == "$ifNull":
        if len(args) < 2:
            raise QueryError("$ifNull needs at least two arguments")
        for sub in args[:-1]:
            value = evaluate(sub, root)
            if value is not MISSING and value is not None:
                return value
        return evaluate(args[-1], root)
    if op in ("$eq", "$ne"):
        # Aggregation comparison: a missing field is not null ({"$eq": ["$gone", null]}
        # is false in Mongo), so metadata_core wraps its fields in $ifNull first.
        if len(args) != 2:
            raise QueryError(f"{op} needs two arguments")
        left, right = evaluate(args[0], root), evaluate(args[1], root)
        if left is MISSING or right is MISSING:
            same = left is right
        else:
            same = mongo_equal(left, right)
        return same if op == "$eq" else not same
    raise QueryError(f"unrecognized expression operator: {op}")


# --------------------------------------------------------------------------------------
# Projections
# --------------------------------------------------------------------------------------
class _Expr:
    """A computed field of an inclusion projection."""

    __slots__ = ("expr",)

    def __init__(self, expr: Any) -> None:
        self.expr = expr


class _Node:
    """One level of a projection tree: field -> True (take/drop), _Expr or _Node."""

    __slots__ = ("children", "has_expr")

    def __init__(self) -> None:
        self.children: dict[str, Any] = {}
        self.has_expr = False


def _flatten_projection(spec: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, str, Any]]:
    """Yield (dotted path, kind, payload) with kind in include/exclude/expr."""
    for key, value in spec.items():
        if not isinstance(key, str) or not key or key.startswith("$"):
            raise QueryError(f"invalid projection field: {key!r}")
        path = f"{prefix}{key}"
        if isinstance(value, bool) or _is_number(value):
            yield path, ("include" if value else "exclude"), None
        elif isinstance(value, dict):
            if not value:
                raise QueryError(f"an empty object is not a valid value for projection field {path!r}")
            if _is_operator_object(value):
                op = next(iter(value))
                if op in ("$slice", "$elemMatch", "$meta"):
                    raise QueryError(f"projection operator {op} is not supported by the local DocDB")
                yield path, "expr", value
            else:
                yield from _flatten_projection(value, path + ".")
        else:
            # "$path" references, plain strings, arrays and null are expressions.
            yield path, "expr", value


class _Projection:
    """A compiled projection; call it on a record to get the projected copy."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        if not isinstance(spec, Mapping):
            raise QueryError("projection must be an object")
        entries = list(_flatten_projection(spec))
        non_id = [e for e in entries if e[0] != "_id"]
        self.inclusion = any(kind != "exclude" for _, kind, _ in non_id) or (
            not non_id and any(kind != "exclude" for _, kind, _ in entries)
        )
        self.identity = not entries
        if self.inclusion:
            for path, kind, _ in non_id:
                if kind == "exclude":
                    raise QueryError(f"Cannot do exclusion on field {path} in inclusion projection")
            if "_id" not in {p.split(".")[0] for p, _, _ in entries}:
                entries.insert(0, ("_id", "include", None))
            entries = [e for e in entries if not (e[0] == "_id" and e[1] == "exclude")]
        else:
            # {"_id": 1, "x": 0} is an exclusion projection that keeps _id anyway.
            entries = [e for e in entries if e[1] == "exclude"]
        self.root = _Node()
        for path, kind, payload in entries:
            self._add(path, _Expr(payload) if kind == "expr" else True)

    def _add(self, path: str, leaf: Any) -> None:
        parts = split_path(path)
        node = self.root
        for depth, part in enumerate(parts[:-1]):
            if isinstance(leaf, _Expr):
                node.has_expr = True
            child = node.children.get(part)
            if child is None:
                child = node.children[part] = _Node()
            elif not isinstance(child, _Node):
                raise QueryError(f"Path collision at {'.'.join(parts[: depth + 1])}")
            node = child
        if isinstance(leaf, _Expr):
            node.has_expr = True
        if parts[-1] in node.children:
            raise QueryError(f"Path collision at {path}")
        node.children[parts[-1]] = leaf

    def __call__(self, record: Mapping[str, Any]) -> Record:
        if self.identity:
            return dict(record)
        if self.inclusion:
            return self._include(record, self.root, record)
        return self._exclude(record, self.root)

    # Inclusion keeps the document's field order (``_id`` first) and appends computed
    # fields in specification order, like Mongo.
    def _include(self, doc: Mapping[str, Any], node: _Node, root: Mapping[str, Any]) -> Record:
        out: Record = {}
        children = node.children
        at_root = node is self.root
        if at_root:
            # Mongo always emits _id first, whether kept or computed.
            id_spec = children.get("_id")
            if id_spec is True and "_id" in doc:
                out["_id"] = doc["_id"]
            elif isinstance(id_spec, _Expr):
                value = evaluate(id_spec.expr, root)
                if value is not MISSING:
                    out["_id"] = value
        for key, value in doc.items():
            sub = children.get(key)
            if sub is None or isinstance(sub, _Expr) or key in out:
                continue
            if sub is True:
                out[key] = value
            else:
                projected = self._include_value(value, sub, root)
                if projected is not MISSING:
                    out[key] = projected
        if node.has_expr:
            for key, sub in children.items():
                if at_root and key == "_id":
                    continue
                if isinstance(sub, _Expr):
                    value = evaluate(sub.expr, root)
                    if value is not MISSING:
                        out[key] = value
                elif isinstance(sub, _Node) and sub.has_expr and key not in doc:
                    out[key] = self._include({}, sub, root)
        return out

    def _include_value(self, value: Any, node: _Node, root: Mapping[str, Any]) -> Any:
        if isinstance(value, dict):
            return self._include(value, node, root)
        if isinstance(value, list):
            # Sub-field inclusion maps over arrays and drops scalar elements.
            return [
                self._include_value(e, node, root) for e in value if isinstance(e, (dict, list))
            ]
        if node.has_expr:
            return self._include({}, node, root)
        return MISSING

    def _exclude(self, doc: Mapping[str, Any], node: _Node) -> Record:
        out: Record = {}
        for key, value in doc.items():
            sub = node.children.get(key)
            if sub is True:
                continue
            out[key] = value if sub is None else self._exclude_value(value, sub)
        return out

    def _exclude_value(self, value: Any, node: _Node) -> Any:
        if isinstance(value, dict):
            return self._exclude(value, node)
        if isinstance(value, list):
            return [self._exclude_value(e, node) for e in value]
        return value


def compile_projection(projection: Mapping[str, Any] | None) -> Callable[[Mapping[str, Any]], Record]:
    """Compile a projection document; the result maps a record to a projected copy.

    Raises :class:`ValueError` for mixed inclusion/exclusion (other than ``_id``),
    path collisions and unsupported projection operators.
    """
    if projection is None:
        return dict
    return _Projection(projection)


def project(record: Mapping[str, Any], projection: Mapping[str, Any] | None) -> Record:
    """``record`` projected like Mongo's ``find(filter, projection)`` would return it."""
    return compile_projection(projection)(record)


# --------------------------------------------------------------------------------------
# Aggregation pipeline
# --------------------------------------------------------------------------------------
Stage = Callable[[list[Record]], list[Record]]


def _stage_match(spec: Any) -> Stage:
    predicate = compile_filter(spec)
    return lambda docs: [d for d in docs if predicate(d)]


def _stage_project(spec: Any) -> Stage:
    if not isinstance(spec, dict) or not spec:
        raise QueryError("$project requires at least one output field")
    projection = _Projection(spec)
    return lambda docs: [projection(d) for d in docs]


_ACCUMULATORS: Final = frozenset(
    {"$sum", "$first", "$last", "$max", "$min", "$push", "$addToSet", "$count"}
)


class _Group:
    """Accumulator state of one ``$group`` bucket."""

    __slots__ = ("key", "state")

    def __init__(self, key: Any, fields: list[tuple[str, str, Any]]) -> None:
        self.key = key
        self.state: dict[str, Any] = {}
        for name, op, _ in fields:
            if op in ("$sum", "$count"):
                self.state[name] = 0
            elif op in ("$first", "$last", "$max", "$min"):
                self.state[name] = MISSING
            elif op == "$push":
                self.state[name] = []
            else:  # $addToSet: insertion-ordered unique values
                self.state[name] = {}

    def add(self, name: str, op: str, value: Any, first: bool) -> None:
        state = self.state
        if op == "$sum":
            if _is_number(value):
                state[name] += value
        elif op == "$count":
            state[name] += 1
        elif op == "$first":
            if first:
                state[name] = value
        elif op == "$last":
            state[name] = value
        elif op in ("$max", "$min"):
            if value is None or value is MISSING:
                return  # $max/$min ignore null and missing values
            current = state[name]
            better = current is MISSING or (
                (sort_key(value) > sort_key(current)) == (op == "$max")
                and not mongo_equal(value, current)
            )
            if better:
                state[name] = value
        elif op == "$push":
            if value is not MISSING:
                state[name].append(value)
        elif op == "$addToSet" and value is not MISSING:
            state[name].setdefault(_freeze(value), value)

    def result(self, fields: list[tuple[str, str, Any]]) -> Record:
        out: Record = {"_id": self.key}
        for name, op, _ in fields:
            value = self.state[name]
            if op == "$addToSet":
                value = list(value.values())
            elif value is MISSING:
                value = None
            out[name] = value
        return out


def _stage_group(spec: Any) -> Stage:
    if not isinstance(spec, dict) or "_id" not in spec:
        raise QueryError("a group specification must include an _id")
    id_expr = spec["_id"]
    fields: list[tuple[str, str, Any]] = []
    for name, acc in spec.items():
        if name == "_id":
            continue
        if "." in name:
            raise QueryError(f"the group aggregate field name {name!r} cannot contain '.'")
        if not isinstance(acc, dict) or len(acc) != 1:
            raise QueryError(f"the field {name!r} must be an accumulator object")
        op, expr = next(iter(acc.items()))
        if op not in _ACCUMULATORS:
            raise QueryError(f"unknown group operator: {op}")
        if op == "$count" and expr != {}:
            raise QueryError("$count takes no arguments, i.e. $count:{}")
        fields.append((name, op, expr))

    def run(docs: list[Record]) -> list[Record]:
        groups: dict[Hashable, _Group] = {}
        for doc in docs:
            key = evaluate(id_expr, doc)
            if key is MISSING:
                key = None
            frozen = _freeze(key)
            group = groups.get(frozen)
            first = group is None
            if group is None:
                group = groups[frozen] = _Group(key, fields)
            for name, op, expr in fields:
                value = None if op == "$count" else evaluate(expr, doc)
                group.add(name, op, value, first)
        return [g.result(fields) for g in groups.values()]

    return run


def _stage_unwind(spec: Any) -> Stage:
    if isinstance(spec, str):
        path, preserve, index_field = spec, False, None
    elif isinstance(spec, dict):
        unknown = set(spec) - {"path", "preserveNullAndEmptyArrays", "includeArrayIndex"}
        if unknown:
            raise QueryError(f"unrecognized option to $unwind: {min(unknown)}")
        path = spec.get("path")
        preserve = bool(spec.get("preserveNullAndEmptyArrays", False))
        index_field = spec.get("includeArrayIndex")
        if index_field is not None and (not isinstance(index_field, str) or index_field.startswith("$")):
            raise QueryError("includeArrayIndex must be a field name without a '$' prefix")
    else:
        raise QueryError("expected either a string or an object as specification for $unwind")
    if not isinstance(path, str) or not path.startswith("$") or len(path) < 2:
        raise QueryError("$unwind path must be a field path prefixed with '$'")
    parts = split_path(path[1:])
    index_parts = split_path(index_field) if index_field else None

    def with_index(doc: Record, index: int | None) -> Record:
        return _set_path(doc, index_parts, index) if index_parts else doc

    def run(docs: list[Record]) -> list[Record]:
        out: list[Record] = []
        for doc in docs:
            value = _get_plain(doc, parts)
            if isinstance(value, list):
                if value:
                    out.extend(with_index(_set_path(doc, parts, e), i) for i, e in enumerate(value))
                elif preserve:
                    out.append(with_index(_unset_path(doc, parts), None))
            elif value is MISSING or value is None:
                if preserve:
                    out.append(with_index(doc, None))
            else:
                # A non-array value unwinds as a one-element array.
                out.append(with_index(doc, None))
        return out

    return run


def _stage_sort(spec: Any) -> Stage:
    _sort_items(spec)  # validate eagerly so errors surface before running
    return lambda docs: sort_records(docs, spec)


def _whole_number(name: str, value: Any, minimum: int) -> int:
    if not _is_number(value) or int(value) != value or value < minimum:
        qualifier = "positive" if minimum > 0 else "non-negative"
        raise QueryError(f"the {name} must be a {qualifier} whole number")
    return int(value)


def _stage_limit(spec: Any) -> Stage:
    n = _whole_number("limit", spec, 1)
    return lambda docs: docs[:n]


def _stage_skip(spec: Any) -> Stage:
    n = _whole_number("skip", spec, 0)
    return lambda docs: docs[n:]


def _stage_count(spec: Any) -> Stage:
    if not isinstance(spec, str) or not spec or spec.startswith("$") or "." in spec:
        raise QueryError("the count field must be a non-empty string without '$' or '.'")
    return lambda docs: [{spec: len(docs)}] if docs else []


def _replace_with(expr: Any) -> Stage:
    def run(docs: list[Record]) -> list[Record]:
        out = []
        for doc in docs:
            new_root = evaluate(expr, doc)
            if not isinstance(new_root, dict):
                raise QueryError(
                    f"'newRoot' expression must evaluate to an object, but got {_type_name(new_root)}"
                )
            out.append(new_root)
        return out

    return run


def _type_name(value: Any) -> str:
    if value is MISSING:
        return "missing"
    if value is None:
        return "null"
    return type(value).__name__


def _stage_replace_root(spec: Any) -> Stage:
    if not isinstance(spec, dict) or set(spec) != {"newRoot"}:
        raise QueryError("$replaceRoot requires exactly a 'newRoot' field")
    return _replace_with(spec["newRoot"])


_STAGES: Final[dict[str, Callable[[Any], Stage]]] = {
    "$match": _stage_match,
    "$project": _stage_project,
    "$group": _stage_group,
    "$unwind": _stage_unwind,
    "$sort": _stage_sort,
    "$limit": _stage_limit,
    "$skip": _stage_skip,
    "$count": _stage_count,
    "$replaceRoot": _stage_replace_root,
}


def compile_pipeline(pipeline: Any) -> list[Stage]:
    """Validate and compile every stage up front so a bad stage fails before any work."""
    if not isinstance(pipeline, list):
        raise QueryError("an aggregation pipeline must be an array of stage objects")
    stages: list[Stage] = []
    for stage in pipeline:
        if not isinstance(stage, dict) or len(stage) != 1:
            raise QueryError("a pipeline stage specification object must contain exactly one field")
        name, spec = next(iter(stage.items()))
        factory = _STAGES.get(name)
        if factory is None:
            raise QueryError(f"unrecognized pipeline stage name: {name!r}")
        stages.append(factory(spec))
    return stages


def aggregate(records: Sequence[Mapping[str, Any]], pipeline: list[dict[str, Any]]) -> list[Record]:
    """Run an aggregation pipeline over ``records`` (which are never modified)."""
    stages = compile_pipeline(pipeline)
    docs: list[Any] = list(records)
    for stage in stages:
        docs = stage(docs)
    return docs
