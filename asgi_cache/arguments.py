"""Function arguments as stable cache keys, the same in every process.

The arguments are bound to the function's signature with defaults applied, so
``f(1)``, ``f(x=1)`` and ``f(1, y=<default>)`` share an entry.  The bound
arguments are encoded canonically, then digested with BLAKE2b.  The encoding
never depends on ``id()``, ``hash()`` or a default ``repr``, so a key is the
same in every process, before and after a restart.  An argument may be:
``None``, ``bool``, ``int``, ``float``, ``str``, ``bytes``, ``list``, ``tuple``,
``dict`` with ``str`` keys, ``set`` / ``frozenset``, an ``Enum`` member,
``datetime`` / ``date`` / ``time``, ``UUID``, ``Decimal``, a dataclass instance
(its compared fields) or a pydantic model (its JSON dump); containers nest.
Anything else -- an object whose only identity is its address, a function, a
file -- raises ``TypeError`` at call time naming the function and the argument,
because keying it by address would give every process and every restart its
own entry.  Values differing in type get different keys (``1``, ``1.0``,
``True`` and ``"1"``; a list and a tuple): a needless miss is cheap, a wrong hit
is not.  Methods are not supported as such: ``self`` is rarely keyable.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import inspect
import math
import sys
import uuid
from collections.abc import Callable
from hashlib import blake2b
from typing import Any

import orjson

__all__ = [
    "MAX_DEPTH",
    "Unkeyable",
    "argument_digest",
    "canonical",
    "function_name",
    "pydantic_base",
]

#: Containers nested deeper than this are refused as arguments (and a list that
#: contains itself is refused instead of recursing forever).
MAX_DEPTH = 64

_INT_RANGE = range(-(2**63), 2**63)  # what orjson writes as a JSON integer


class Unkeyable(TypeError):
    """An argument (or a part of one) has no stable key."""


def pydantic_base() -> type[Any] | None:
    """pydantic's ``BaseModel`` if pydantic is loaded, without ever importing it.

    pydantic is optional, and an object can only be a model, or an annotation
    name a model class, if pydantic was already imported by its definer.
    """
    module = sys.modules.get("pydantic")
    base = getattr(module, "BaseModel", None)
    return base if isinstance(base, type) else None


def _type_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def canonical(value: object, depth: int = 0) -> object:
    """``value`` as JSON data that only equal values of the same type share.

    Every JSON array in the result is a ``[marker, payload...]`` pair, so a
    user list can never be mistaken for an encoded set, bytes or date.
    """
    if depth > MAX_DEPTH:
        raise Unkeyable(f"nested more than {MAX_DEPTH} levels deep")
    depth += 1
    if isinstance(value, enum.Enum):  # before int and str: IntEnum, StrEnum
        return ["enum", _type_name(type(value)), canonical(value.value, depth)]
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        number = int(value)
        return number if number in _INT_RANGE else ["int", str(number)]
    if isinstance(value, float):
        # orjson writes NaN and infinities as null: keep them apart from None.
        return value if math.isfinite(value) else ["float", repr(value)]
    if isinstance(value, (bytes, bytearray)):
        return ["bytes", bytes(value).hex()]
    if isinstance(value, datetime.datetime):  # before date, its base class
        return ["datetime", value.isoformat()]
    if isinstance(value, datetime.date):
        return ["date", value.isoformat()]
    if isinstance(value, datetime.time):
        return ["time", value.isoformat()]
    if isinstance(value, uuid.UUID):
        return ["uuid", str(value)]
    if isinstance(value, decimal.Decimal):
        return ["decimal", str(value)]
    if isinstance(value, list):
        return ["list", [canonical(item, depth) for item in value]]
    if isinstance(value, tuple):
        return ["tuple", [canonical(item, depth) for item in value]]
    if isinstance(value, dict):
        mapping: dict[str, object] = {}
        for name, item in value.items():
            if not isinstance(name, str):
                raise Unkeyable(f"dict key {name!r} is not a str")
            mapping[str.__str__(name)] = canonical(item, depth)
        return ["dict", mapping]
    if isinstance(value, (set, frozenset)):
        # Iteration order depends on the hash seed: sort the encoded members.
        members = sorted(
            orjson.dumps(canonical(item, depth), option=orjson.OPT_SORT_KEYS) for item in value
        )
        return ["set", [member.decode() for member in members]]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {
            field.name: canonical(getattr(value, field.name), depth)
            for field in dataclasses.fields(value)
            if field.compare
        }
        return ["dataclass", _type_name(type(value)), fields]
    base = pydantic_base()
    if base is not None and isinstance(value, base):
        try:
            dumped = value.model_dump(mode="json")
        except Exception as exc:
            raise Unkeyable(f"{type(value).__qualname__} cannot be dumped: {exc}") from None
        return ["model", _type_name(type(value)), canonical(dumped, depth)]
    raise Unkeyable(f"{type(value).__qualname__} values have no stable key")


def function_name(fn: Callable[..., Any]) -> str:
    """``module.qualname``: the part of a memo key that names the function."""
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str):
        raise TypeError(f"memoize: {fn!r} has no __module__ and __qualname__ to key it by")
    if "<lambda>" in qualname:
        raise ValueError(
            f"memoize: {module}.{qualname}: a lambda has no name that tells it from the others"
        )
    return f"{module}.{qualname}"


def argument_digest(
    name: str, signature: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> str:
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError as exc:
        raise TypeError(f"{name}(): {exc}") from None
    bound.apply_defaults()
    arguments: dict[str, object] = {}
    for argument, value in bound.arguments.items():
        try:
            arguments[argument] = canonical(value)
        except Unkeyable as exc:
            raise TypeError(
                f"memoize {name}: argument {argument!r} cannot be part of a cache key ({exc}); "
                "pass plain data (str, int, tuples, dicts, dataclasses, models...) instead"
            ) from None
    encoded = orjson.dumps(arguments, option=orjson.OPT_SORT_KEYS)
    return blake2b(encoded, digest_size=16).hexdigest()
