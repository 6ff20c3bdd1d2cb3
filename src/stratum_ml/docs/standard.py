"""Algoritmeregister publication standard 1.0.0: the field list, and checking an entry against it.

The field list is committed with the package (``spec/algoritmeregister_1_0_0.json``),
so the check runs offline. It is derived from ``backend/app/schemas/config/v1_0_0.json``
of MinBZK/Algoritmeregister (release commit ``fca0ce4``, 2023-12-14; EUPL-1.2): per
field its type, title, whether it is required, maximum length, maximum number of
items, permitted values and allowed HTML tags. The file records its source, the
sha256 of the original and the licence.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

__all__ = [
    "STANDARD_VERSION",
    "FieldSpec",
    "check_entry",
    "field_specs",
    "spec_source",
]

#: the version of the publication standard the entry is written to
STANDARD_VERSION = "1.0.0"
#: the language code of the entry (ISO 639-3, the only one the register offers)
LANGUAGE = "nld"

_SPEC_FILE = "algoritmeregister_1_0_0.json"
_MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
_TAG = re.compile(r"</?\s*([A-Za-z][A-Za-z0-9]*)[^>]*>")


@dataclass(frozen=True)
class FieldSpec:
    """One field of the standard (or one item field of a ``*_grouping`` array).

    Attributes
    ----------
    name, title : str
        The field's key and its Dutch title.
    type : str
        ``"string"``, ``"enum"`` or ``"array"``.
    required : bool
    max_length : int or None
        Most characters of a string (HTML tags included).
    max_items : int or None
        Most items of an array.
    permitted_values : tuple of str
        For an enum, or for the items of an array of strings; empty: any.
    allowed_html_tags : tuple of str
        Tags a text may hold; empty: none.
    items : dict of str to FieldSpec
        The fields of each item of a ``*_grouping`` array (objects); empty otherwise.
    """

    name: str
    title: str
    type: str
    required: bool
    max_length: int | None = None
    max_items: int | None = None
    permitted_values: tuple[str, ...] = ()
    allowed_html_tags: tuple[str, ...] = ()
    items: tuple[FieldSpec, ...] = ()


def _spec(name: str, raw: dict[str, Any]) -> FieldSpec:
    return FieldSpec(
        name=name,
        title=str(raw.get("title", name)),
        type=str(raw.get("type", "string")),
        required=raw.get("required") is True,
        max_length=raw.get("max_length"),
        max_items=raw.get("max_items"),
        permitted_values=tuple(raw.get("permitted_values", ())),
        allowed_html_tags=tuple(raw.get("allowed_html_tags", ())),
        items=tuple(_spec(n, item) for n, item in raw.get("items", {}).items()),
    )


@cache
def _raw_spec() -> dict[str, Any]:
    text = files("stratum_ml.docs").joinpath("spec", _SPEC_FILE).read_text("utf-8")
    spec: dict[str, Any] = json.loads(text)
    return spec


def field_specs() -> dict[str, FieldSpec]:
    """The 29 fields of publication standard 1.0.0, in the standard's order.

    Examples
    --------
    >>> specs = field_specs()
    >>> len(specs), specs["status"].permitted_values[1], specs["name"].max_length
    (29, 'In gebruik', 100)
    """
    return {name: _spec(name, raw) for name, raw in _raw_spec()["fields"].items()}


def spec_source() -> dict[str, str]:
    """Where the committed field list comes from: repository, path, commit, sha256, licence."""
    raw = _raw_spec()
    return {**raw["source"], "licence": raw["licence"]}


def _text_problems(where: str, spec: FieldSpec, value: Any) -> list[str]:
    if not isinstance(value, str):
        return [f"{where}: must be a text, not {type(value).__name__}"]
    problems = []
    if spec.max_length is not None and len(value) > spec.max_length:
        problems.append(
            f"{where}: {len(value)} characters, more than the {spec.max_length} allowed"
        )
    tags = {m.group(1).lower() for m in _TAG.finditer(value)}
    foreign = sorted(tags - set(spec.allowed_html_tags))
    if foreign:
        allowed = ", ".join(spec.allowed_html_tags) or "none"
        problems.append(f"{where}: HTML tags {', '.join(foreign)} not allowed (allowed: {allowed})")
    return problems


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str | list) and len(value) == 0)


def _field_problems(spec: FieldSpec, value: Any) -> list[str]:
    where = spec.name
    if spec.type == "enum":
        if value not in spec.permitted_values:
            return [
                f"{where}: {value!r} is not a permitted value "
                f"({', '.join(repr(v) for v in spec.permitted_values)})"
            ]
        return []
    if spec.type == "string":
        problems = _text_problems(where, spec, value)
        if not problems and spec.name in ("begin_date", "end_date") and not _MONTH.fullmatch(value):
            problems.append(f"{where}: {value!r} is not a month written as YYYY-MM")
        return problems
    if not isinstance(value, list):
        return [f"{where}: must be a list, not {type(value).__name__}"]
    problems = []
    if spec.max_items is not None and len(value) > spec.max_items:
        problems.append(f"{where}: {len(value)} items, more than the {spec.max_items} allowed")
    for i, item in enumerate(value):
        at = f"{where}[{i}]"
        if not spec.items:  # a list of values
            if spec.permitted_values and item not in spec.permitted_values:
                problems.append(f"{at}: {item!r} is not a permitted value")
            elif not isinstance(item, str):
                problems.append(f"{at}: must be a text")
            continue
        if not isinstance(item, dict):
            problems.append(f"{at}: must be an object with {', '.join(s.name for s in spec.items)}")
            continue
        known = {s.name: s for s in spec.items}
        problems += [f"{at}: unknown field {key!r}" for key in item if key not in known]
        for sub in spec.items:
            if _empty(item.get(sub.name)):
                if sub.required:
                    problems.append(f"{at}.{sub.name}: required, but missing")
                continue
            problems += [
                p.replace(sub.name, f"{at}.{sub.name}", 1)
                for p in _text_problems(sub.name, sub, item[sub.name])
            ]
    return problems


def check_entry(entry: Any) -> list[str]:
    """Every way ``entry`` departs from publication standard 1.0.0; empty if it conforms.

    Checked: the entry is a JSON object; no field outside the standard; every
    required field present and not empty; ``standard_version`` is ``"1.0.0"`` and
    ``lang`` is ``"nld"``; enums and arrays of values hold permitted values only;
    texts are texts, within their maximum length and holding only allowed HTML
    tags; arrays within their maximum number of items, their items with exactly
    the item fields (required ones filled); ``begin_date`` and ``end_date`` are
    months (YYYY-MM), as the standard's instructions ask.

    Parameters
    ----------
    entry : object
        The parsed ``algoritmeregister.json``.

    Returns
    -------
    list of str
        One sentence per problem, naming the field.

    Examples
    --------
    >>> check_entry({"name": "x", "status": "Actief"})[:2]
    ['description_short: required, but missing', 'organization: required, but missing']
    """
    if not isinstance(entry, dict):
        return ["the entry must be a JSON object of fields"]
    specs = field_specs()
    problems = [
        f"{key}: not a field of publication standard {STANDARD_VERSION}"
        for key in entry
        if key not in specs
    ]
    for name, spec in specs.items():
        value = entry.get(name)
        if _empty(value):
            if spec.required or name == "standard_version":
                problems.append(f"{name}: required, but missing")
            continue
        problems += _field_problems(spec, value)
    return problems
