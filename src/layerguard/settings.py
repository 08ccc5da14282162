"""Layered settings: code defaults, then a YAML file, then the environment, then CLI flags.

One mechanism for ``audit``, ``guard build`` and ``serve``. A settings class is a plain
pydantic model whose field defaults are the code defaults (``extra="forbid"``, so an
unknown key is an error). Each :class:`Layer` is a mapping of field names to values plus
a way to name a field in an error message; :func:`layered` merges them in order and
validates after each one, so an error names the file, variable or flag that caused it::

    settings = layered(
        AuditSettings,
        yaml_layer(Path("audit.yaml"), section="audit"),
        env_layer(AuditSettings, "LAYERGUARD_AUDIT_"),
        flag_layer({"n": 8}),
    )

Environment values are strings: pydantic converts numbers and booleans (``1``, ``true``,
``no``); list fields take comma-separated items, mapping fields ``KEY=VALUE`` items;
``none`` (or an empty value) unsets an optional field.
"""

from __future__ import annotations

import os
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from layerguard.errors import InvalidInputError

__all__ = ["Layer", "env_layer", "flag_layer", "layered", "read_yaml", "yaml_layer"]

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Layer:
    """One source of settings.

    Attributes:
        data: Field name -> value (only the fields this source sets).
        where: Names a field (its dotted location) as the user wrote it, e.g.
            ``audit.yaml: audit.n`` or ``--n-benign``.
        hint: What to check when a value from this source is wrong.
    """

    data: Mapping[str, Any]
    where: Callable[[str], str]
    hint: str


def read_yaml(path: Path, what: str = "config", transform: Callable[[str], str] | None = None) -> Any:
    """Parse a YAML file (after ``transform`` of its text, e.g. ``${VAR}`` interpolation).

    Raises:
        InvalidInputError: a missing file or invalid YAML, naming the file.
    """
    if not path.is_file():
        raise InvalidInputError(f"{what} {path} does not exist", hint="check the path given to --config")
    text = path.read_text(encoding="utf-8")
    try:
        return yaml.safe_load(transform(text) if transform is not None else text)
    except yaml.YAMLError as exc:
        raise InvalidInputError(f"{path} is not valid YAML: {exc}") from None


def yaml_layer(path: Path, section: str, data: Any = None, transform: Callable[[str], str] | None = None) -> Layer:
    """The settings in a YAML file: its ``section:`` mapping if present, else its top level.

    Args:
        path: The file (read unless ``data`` is given).
        section: The key whose mapping holds the settings (``audit``, ``guard_build``, ``service``),
            so one file may configure several commands.
        data: The already parsed document, if the caller read it.
        transform: Applied to the text before parsing.

    Raises:
        InvalidInputError: a missing file, invalid YAML, or a document that is not a mapping.
    """
    doc = read_yaml(path, f"{section} config", transform) if data is None else data
    in_section = isinstance(doc, dict) and isinstance(doc.get(section), dict)
    mapping = doc[section] if in_section else ({} if doc is None else doc)
    if not isinstance(mapping, dict):
        raise InvalidInputError(
            f"{path} must hold a mapping of {section} settings (at its top level or under '{section}:')",
            hint=f"e.g. {section}:\\n  seed: 0",
        )
    prefix = f"{section}." if in_section else ""
    return Layer(
        data=mapping,
        where=lambda loc: f"{path}: {prefix}{loc}",
        hint=f"fix or remove that key in {path}",
    )


def _field_kind(annotation: Any) -> str:
    """``list``, ``dict`` or ``scalar``; ``| None`` unions are unwrapped."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        kinds = {_field_kind(a) for a in typing.get_args(annotation) if a is not type(None)}
        return kinds.pop() if len(kinds) == 1 else "scalar"
    if origin is list or annotation is list:
        return "list"
    if origin is dict or annotation is dict:
        return "dict"
    return "scalar"


def _nested(annotation: Any) -> bool:
    """Whether a type holds a pydantic model (such fields are set in files only)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return any(_nested(a) for a in typing.get_args(annotation))


def _optional(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    return origin in (typing.Union, types.UnionType) and type(None) in typing.get_args(annotation)


def _from_env(name: str, text: str, annotation: Any) -> Any:
    if text.strip().lower() in ("", "none", "null") and _optional(annotation):
        return None
    kind = _field_kind(annotation)
    items = [x.strip() for x in text.split(",") if x.strip()]
    if kind == "list":
        return items
    if kind == "dict":
        out: dict[str, str] = {}
        for item in items:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise InvalidInputError(
                    f"environment variable {name}: expected KEY=VALUE items, got {item!r}", hint=f"e.g. {name}=a=1,b=2"
                )
            out[key.strip()] = value.strip()
        return out
    return text


def env_layer(model: type[BaseModel], prefix: str, env: Mapping[str, str] | None = None) -> Layer:
    """Settings from ``PREFIX<FIELD>`` environment variables (upper case; nested models are file-only).

    Raises:
        InvalidInputError: a variable with the prefix that names no setting (a typo would
            otherwise be ignored silently).
    """
    env = os.environ if env is None else env
    fields = {name: info.annotation for name, info in model.model_fields.items() if not _nested(info.annotation)}
    data: dict[str, Any] = {}
    for var, text in env.items():
        if not var.startswith(prefix):
            continue
        name = var[len(prefix) :].lower()
        if name not in fields:
            known = ", ".join(prefix + f.upper() for f in fields)
            raise InvalidInputError(f"environment variable {var} names no setting", hint=f"known: {known}")
        data[name] = _from_env(var, text, fields[name])
    return Layer(
        data=data,
        where=lambda loc: f"environment variable {prefix}{loc.split('.')[0].upper()}",
        hint="fix or unset that variable",
    )


def flag_layer(flags: Mapping[str, Any]) -> Layer:
    """Settings given as CLI flags (only those the user typed)."""
    return Layer(
        data=dict(flags),
        where=lambda loc: "--" + loc.split(".")[0].replace("_", "-"),
        hint="see the command's --help",
    )


def _message(err: Mapping[str, Any], layer: Layer, model: type[BaseModel]) -> InvalidInputError:
    loc = ".".join(str(x) for x in err["loc"]) or "(top level)"
    if err["type"] == "extra_forbidden":
        known = ", ".join(model.model_fields)
        return InvalidInputError(f"{layer.where(loc)}: unknown setting", hint=f"known settings: {known}")
    return InvalidInputError(f"{layer.where(loc)}: {err['msg']}", hint=layer.hint)


def layered(model: type[M], *layers: Layer) -> M:
    """The settings with each layer's values over the previous ones (the first layer over the code defaults).

    Raises:
        InvalidInputError: the first invalid value, naming its file and key, variable or flag.
    """
    merged: dict[str, Any] = {}
    result = model()
    for layer in layers:
        merged = {**merged, **layer.data}
        try:
            result = model.model_validate(merged)
        except ValidationError as exc:
            raise _message(exc.errors()[0], layer, model) from None
    return result
