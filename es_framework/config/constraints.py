"""Placement constraints in Marathon's syntax: parsed and checked here, evaluated by the strategies.

The grammar is Marathon's (``docs/docs/constraints.md`` in mesosphere/marathon): a constraint is
``[field, operator]`` or ``[field, operator, value]`` over ``hostname`` or any agent attribute. The
flag takes a JSON list of them (``[["hostname", "UNIQUE"], ["zone", "GROUP_BY", "2"]]``, or one
constraint alone) or the shorthand ``field:OPERATOR[:value]``, several separated by ``;`` (the
value is everything after the second colon, so a regex may contain colons).

Operators, as Marathon defines them:

- ``UNIQUE``: no two nodes share a value of the field.
- ``CLUSTER``: every node on agents whose field is ``value`` (without a value: the value of the
  first node placed).
- ``GROUP_BY``: spread evenly over the field's values; the optional value is how many values to
  expect (until that many are seen, a value without nodes is preferred).
- ``LIKE`` / ``UNLIKE``: the field's value fully matches / does not match the regular expression.
- ``MAX_PER``: at most ``value`` nodes per value of the field.
- ``IS``: the field's value is exactly ``value``.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Literal, cast

Operator = Literal["UNIQUE", "CLUSTER", "GROUP_BY", "LIKE", "UNLIKE", "MAX_PER", "IS"]
OPERATORS: tuple[Operator, ...] = ("UNIQUE", "CLUSTER", "GROUP_BY", "LIKE", "UNLIKE", "MAX_PER", "IS")
#: Operators that take no value, may take one, or must have one.
_NO_VALUE = frozenset({"UNIQUE"})
_OPTIONAL_VALUE = frozenset({"CLUSTER", "GROUP_BY"})
_COUNT_VALUE = frozenset({"GROUP_BY", "MAX_PER"})
_REGEX_VALUE = frozenset({"LIKE", "UNLIKE"})
#: The field that is the agent's hostname rather than an attribute.
HOSTNAME_FIELD = "hostname"
#: Both spellings Marathon accepts for it (``@hostname`` since Marathon 1.5).
HOSTNAME_FIELDS = frozenset({HOSTNAME_FIELD, "@hostname"})
#: A scalar as an ``IS`` value may write it (Marathon's ``MesosScalarValue``).
_SCALAR_VALUE = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def scalar_text(value: float) -> str:
    """A scalar as placement compares it: rounded to thousandths, half to even on the exact binary
    value, without trailing zeros (Marathon's ``DecimalFormat("0.###")`` in
    ``src/main/scala/mesosphere/mesos/Constraints.scala``: ``1.0005`` is ``1``, ``1.00051`` is
    ``1.001``, ``0.80`` is ``0.8``)."""
    if not math.isfinite(value):
        return str(value)
    text = format(Decimal(value).quantize(Decimal("0.001"), rounding=ROUND_HALF_EVEN), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


@dataclass(frozen=True)
class Constraint:
    field: str
    operator: Operator
    value: str | None = None
    #: The constraint as the operator wrote it (a declined offer's reason quotes it).
    text: str = dataclass_field(default="", compare=False)

    def __str__(self) -> str:
        return self.text or f"{self.field}:{self.operator}" + (f":{self.value}" if self.value is not None else "")

    @property
    def is_value(self) -> str:
        """What ``IS`` compares an agent's value with: a scalar written as one is compared as Marathon
        formats scalars (``0.80`` is ``0.8``), anything else as written."""
        value = self.value or ""
        return scalar_text(float(value)) if _SCALAR_VALUE.fullmatch(value) else value

    def public(self) -> list[str]:
        """The constraint in Marathon's JSON form."""
        return [self.field, self.operator, *([self.value] if self.value is not None else [])]

    @property
    def count(self) -> int | None:
        """The number in a ``GROUP_BY`` or ``MAX_PER`` value (checked at parse time)."""
        if self.operator in _COUNT_VALUE and self.value is not None:
            return int(self.value)
        return None


def constraint(field: object, operator: object, value: object = None, *, text: str = "") -> Constraint:
    """One checked constraint, or :class:`ValueError` saying what is wrong with it."""
    if not isinstance(field, str) or not field.strip():
        raise ValueError(f"a constraint's field must be a non-empty string, got {field!r}")
    if field.strip().startswith("@") and field.strip() not in HOSTNAME_FIELDS:
        # Marathon's @region and @zone read the fault domain; es-mesos spreads over zones on its own
        # (see --zoneAttribute), and an agent attribute's name never starts with @.
        raise ValueError(
            f"{field.strip()}: unknown field; use hostname (or @hostname) or an agent attribute's name "
            "(zones: nodes spread over them by default, see --zoneAttribute)"
        )
    if not isinstance(operator, str) or operator.upper() not in OPERATORS:
        raise ValueError(f"{field}: unknown operator {operator!r}; one of {', '.join(OPERATORS)}")
    op = cast(Operator, operator.upper())
    if value is not None and not isinstance(value, str):
        if isinstance(value, int) and not isinstance(value, bool) and op in _COUNT_VALUE:
            value = str(value)
        else:
            raise ValueError(f"{field}:{op}: the value must be a string, got {value!r}")
    if value == "":
        # Marathon reads an empty value as none (``CLUSTER`` without a value); where one is needed
        # it matches nothing, so it is refused here instead.
        value = None
    if op in _NO_VALUE and value is not None:
        raise ValueError(f"{field}:{op} takes no value, got {value!r}")
    if op not in _NO_VALUE and op not in _OPTIONAL_VALUE and value is None:
        raise ValueError(f"{field}:{op} needs a value")
    if op in _COUNT_VALUE and value is not None and (not re.fullmatch(r"[0-9]+", value) or int(value) < 1):
        raise ValueError(f"{field}:{op}: the value must be a whole number of at least 1, got {value!r}")
    if op in _REGEX_VALUE:
        try:
            re.compile(value or "")
        except re.error as exc:
            raise ValueError(f"{field}:{op}: {value!r} is not a regular expression ({exc})") from None
    return Constraint(field.strip(), op, value, text)


def parse_constraints(text: str) -> tuple[Constraint, ...]:
    """``--constraints``: a JSON list (Marathon's form) or ``field:OPERATOR[:value]`` items separated by ``;``."""
    stripped = text.strip()
    if not stripped:
        return ()
    if stripped.startswith(("[", "{")):
        try:
            document = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise ValueError(f"must be a JSON list of [field, operator, value?] lists ({exc.msg})") from None
        if document and all(isinstance(item, str) for item in document):
            document = [document]
        if not isinstance(document, list) or not all(isinstance(item, list) for item in document):
            raise ValueError("must be a JSON list of [field, operator, value?] lists")
        items = []
        for item in document:
            if not 2 <= len(item) <= 3:
                raise ValueError(f"{item!r}: a constraint is [field, operator] or [field, operator, value]")
            items.append(constraint(*item, text=json.dumps(item)))
        return tuple(items)
    out = []
    for part in stripped.split(";"):
        if not part.strip():
            continue
        pieces = part.strip().split(":", 2)
        if len(pieces) < 2:
            raise ValueError(f"{part.strip()!r} is not field:OPERATOR[:value]")
        out.append(constraint(*pieces, text=part.strip()))
    return tuple(out)


def parse_attribute_requirement(text: str) -> Constraint | None:
    """``--externalVolumeAttribute``: ``name`` (the agent has the attribute) or ``name:value`` (it has
    that value, e.g. ``rexray:true`` or ``scaleio:row8~pool-hdd``). Kept as an ``IS`` constraint, or
    a ``LIKE .*`` one for a bare name (any value)."""
    stripped = text.strip()
    if not stripped:
        return None
    name, sep, value = stripped.partition(":")
    if not name.strip() or (sep and not value.strip()):
        raise ValueError("must be an agent attribute name, or name:value (e.g. rexray:true)")
    if not sep:
        return Constraint(name.strip(), "LIKE", ".*")
    return Constraint(name.strip(), "IS", value.strip())
