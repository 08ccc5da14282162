"""The constitution of the classifier ring: principles and hazard categories with examples.

A constitution (``constitution.yaml``, packaged with :mod:`layerguard.guard`) states the
principles the guard enforces and, for each MLCommons hazard category, short requests that
must be flagged (``disallowed``) and similar-looking requests that are fine (``allowed``).
Categories listed as ``constructive`` (self-harm) get a supportive reply instead of a block.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from layerguard.errors import InvalidInputError

CONSTITUTION_RESOURCE = "constitution.yaml"


@dataclass(frozen=True)
class Principle:
    """One principle of the constitution.

    Attributes:
        id: Short stable identifier, referenced by categories and named in explanations.
        text: The principle in plain words.
    """

    id: str
    text: str


@dataclass(frozen=True)
class HazardCategory:
    """One hazard category of the constitution.

    Attributes:
        name: MLCommons-style name, e.g. ``S1_violent_crimes``.
        description: What the category covers.
        principles: Ids of the principles that govern it.
        disallowed: Requests that must be flagged (training positives).
        allowed: Similar-looking requests that are fine (training negatives).
    """

    name: str
    description: str
    principles: tuple[str, ...]
    disallowed: tuple[str, ...]
    allowed: tuple[str, ...]


def _bad(source: str, where: str, what: str) -> InvalidInputError:
    return InvalidInputError(
        f"{source}: field {where!r} {what}",
        hint="see the packaged layerguard/guard/constitution.yaml for the expected structure",
    )


def _str_field(data: Mapping[str, Any], key: str, where: str, source: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        got = "missing" if value is None else f"a {type(value).__name__}" if not isinstance(value, str) else "empty"
        raise _bad(source, f"{where}{key}", f"must be a non-empty string (got {got})")
    return value.strip()


def _str_list(value: Any, where: str, source: str, *, non_empty: bool) -> tuple[str, ...]:
    if value is None and not non_empty:
        return ()
    if not isinstance(value, list) or (non_empty and not value):
        got = "missing" if value is None else f"a {type(value).__name__}" if not isinstance(value, list) else "empty"
        raise _bad(source, where, f"must be a {'non-empty ' if non_empty else ''}list of strings (got {got})")
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise _bad(source, f"{where}[{i}]", f"must be a non-empty string (got {item!r:.60})")
        out.append(item.strip())
    return tuple(out)


@dataclass(frozen=True)
class Constitution:
    """Principles, hazard categories with examples, and the constructive-response policy.

    Attributes:
        principles: Principle id -> principle, in file order.
        categories: Category name -> category, in file order.
        constructive: Categories answered with ``supportive_message`` (decision ``rewrite``).
        supportive_message: The supportive reply used for constructive categories.
        source: Where it was read from (a path or ``<packaged>``).
        sha256: Digest of the validated content (independent of YAML formatting and comments).
    """

    principles: dict[str, Principle]
    categories: dict[str, HazardCategory]
    constructive: tuple[str, ...] = ()
    supportive_message: str = ""
    source: str = "<memory>"
    sha256: str = ""

    @classmethod
    def load(cls, path: str | Path | None = None) -> Constitution:
        """Read and validate a constitution YAML file.

        Args:
            path: A YAML file; ``None`` reads the constitution packaged with layerguard.

        Raises:
            InvalidInputError: the file is missing, is not valid YAML, or a field is malformed
                (the message names the field, e.g. ``categories.S1_violent_crimes.disallowed``).
        """
        import yaml

        if path is None:
            source = f"<packaged {CONSTITUTION_RESOURCE}>"
            text = resources.files("layerguard.guard").joinpath(CONSTITUTION_RESOURCE).read_text(encoding="utf-8")
        else:
            p = Path(path)
            source = str(p)
            if not p.is_file():
                raise InvalidInputError(f"constitution file {p} does not exist", hint="pass an existing YAML file")
            try:
                text = p.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise InvalidInputError(f"cannot read constitution file {p}: {exc}") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            raise InvalidInputError(f"{source}: not valid YAML{at}", hint="check indentation and quoting") from None
        return cls.from_mapping(data, source=source)

    @classmethod
    def from_mapping(cls, data: Any, source: str = "<memory>") -> Constitution:
        """Validate a parsed constitution (the structure of ``constitution.yaml``).

        Args:
            data: The parsed YAML document.
            source: Named in error messages.

        Raises:
            InvalidInputError: naming the malformed field.
        """
        if not isinstance(data, dict):
            raise InvalidInputError(
                f"{source}: a constitution must be a mapping with 'principles' and 'categories', "
                f"got {type(data).__name__}"
            )
        raw_principles = data.get("principles")
        if not isinstance(raw_principles, list) or not raw_principles:
            raise _bad(source, "principles", "must be a non-empty list of {id, text} entries")
        principles: dict[str, Principle] = {}
        for i, entry in enumerate(raw_principles):
            if not isinstance(entry, dict):
                raise _bad(source, f"principles[{i}]", f"must be a mapping with 'id' and 'text' (got {entry!r:.60})")
            pid = _str_field(entry, "id", f"principles[{i}].", source)
            if pid in principles:
                raise _bad(source, f"principles[{i}].id", f"repeats the id {pid!r}")
            principles[pid] = Principle(pid, _str_field(entry, "text", f"principles[{i}].", source))

        raw_categories = data.get("categories")
        if not isinstance(raw_categories, dict) or not raw_categories:
            raise _bad(source, "categories", "must be a non-empty mapping of category name -> definition")
        categories: dict[str, HazardCategory] = {}
        for name, entry in raw_categories.items():
            where = f"categories.{name}"
            if not isinstance(name, str) or not name.strip():
                raise _bad(source, where, "has a name that is not a non-empty string")
            if not isinstance(entry, dict):
                raise _bad(source, where, f"must be a mapping (got {type(entry).__name__})")
            refs = _str_list(entry.get("principles"), f"{where}.principles", source, non_empty=True)
            unknown = [r for r in refs if r not in principles]
            if unknown:
                raise _bad(source, f"{where}.principles", f"names unknown principle id(s) {unknown}")
            categories[name] = HazardCategory(
                name=name,
                description=_str_field(entry, "description", f"{where}.", source),
                principles=refs,
                disallowed=_str_list(entry.get("disallowed"), f"{where}.disallowed", source, non_empty=True),
                allowed=_str_list(entry.get("allowed"), f"{where}.allowed", source, non_empty=False),
            )

        constructive = _str_list(data.get("constructive"), "constructive", source, non_empty=False)
        unknown = [c for c in constructive if c not in categories]
        if unknown:
            raise _bad(source, "constructive", f"names unknown categor(ies) {unknown}")
        supportive = data.get("supportive_message")
        if constructive or supportive is not None:
            supportive = _str_field(data, "supportive_message", "", source)
        canonical = {
            "principles": [[p.id, p.text] for p in principles.values()],
            "categories": [
                [c.name, c.description, list(c.principles), list(c.disallowed), list(c.allowed)]
                for c in categories.values()
            ],
            "constructive": list(constructive),
            "supportive_message": supportive or "",
        }
        digest = hashlib.sha256(json.dumps(canonical, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()
        return cls(principles, categories, constructive, supportive or "", source, digest)

    def principles_of(self, category: str | None) -> list[Principle]:
        """The principles governing a category (empty for an unknown category)."""
        cat = self.categories.get(category or "")
        return [self.principles[p] for p in cat.principles] if cat else []

    def examples(self) -> tuple[list[str], list[int], list[str]]:
        """Texts, labels (1 = disallowed, 0 = allowed) and category names of every example."""
        texts: list[str] = []
        labels: list[int] = []
        cats: list[str] = []
        for c in self.categories.values():
            for t in c.disallowed:
                texts.append(t)
                labels.append(1)
                cats.append(c.name)
            for t in c.allowed:
                texts.append(t)
                labels.append(0)
                cats.append(c.name)
        return texts, labels, cats
