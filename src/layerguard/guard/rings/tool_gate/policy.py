"""The tool policy: per-tool schemas and rules, the unknown-tool decision and the provenance rule."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from layerguard.errors import InvalidInputError
from layerguard.guard.rings.tool_gate.rules import FloorDecision, ProvenanceRule, ToolSpec
from layerguard.guard.rings.tool_gate.spec import parse_policy


@dataclass(frozen=True)
class ToolPolicy:
    """A tool policy: per-tool schemas and rules, the unknown-tool decision, the provenance rule.

    Build one with :meth:`from_yaml` or :meth:`from_dict`; both validate everything up front
    and raise :class:`~layerguard.errors.InvalidInputError` naming the file, tool and field.
    """

    tools: Mapping[str, ToolSpec] = field(default_factory=dict)
    unknown_tools: FloorDecision = "block"
    provenance_rule: ProvenanceRule = field(default_factory=ProvenanceRule)
    source: str = "<dict>"

    @classmethod
    def from_yaml(cls, path: str | Path) -> ToolPolicy:
        """Load and validate a policy file.

        Args:
            path: A YAML file in the format described in the package docstring.

        Returns:
            The validated policy.

        Raises:
            InvalidInputError: The file is missing, is not YAML, or fails validation.
        """
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InvalidInputError(
                f"tool policy file {p} does not exist",
                hint="pass the path of a YAML tool policy, e.g. examples/tool_policy.yaml",
            ) from None
        except (OSError, UnicodeDecodeError) as e:
            raise InvalidInputError(
                f"tool policy file {p} cannot be read: {e}", hint="check the path and that it is UTF-8 text"
            ) from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            problem = getattr(e, "problem", None) or str(e)
            raise InvalidInputError(
                f"invalid tool policy {p}: not valid YAML{where}: {problem}",
                hint="check indentation and quoting; put regexes in single quotes",
            ) from None
        return cls.from_dict(data, source=str(p))

    @classmethod
    def from_dict(cls, data: Any, source: str = "<dict>") -> ToolPolicy:
        """Validate a parsed policy (e.g. from YAML or JSON).

        Args:
            data: The policy mapping.
            source: Name used in error messages (the file path).

        Returns:
            The validated policy.

        Raises:
            InvalidInputError: A field is missing, has the wrong type or an invalid value.
        """
        tools, unknown_tools, provenance_rule = parse_policy(data, source)
        return cls(tools=tools, unknown_tools=unknown_tools, provenance_rule=provenance_rule, source=source)
