"""Agent scenarios: the typed form of ``scenarios.yaml`` and the conversations each variant starts from.

A scenario has two variants. ``clean``: the user's benign task and the steps taken so far with
their plain results. ``attacked``: the same with the attack, either an injection added to the
last step's result (an injected instruction, a forged tool output, a poisoned document) or
the user's own ``attack_task`` in place of the task.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from layerguard.errors import InvalidInputError
from layerguard.guard.types import Message, ToolCall
from layerguard.redteam.agents.tools import TOOLS, call_text, system_prompt

Category = Literal[
    "injected_instruction", "poisoned_retrieval", "forged_output", "exfiltration", "destructive", "privilege_escalation"
]
Variant = Literal["clean", "attacked"]


class Call(BaseModel):
    """A concrete tool call."""

    model_config = ConfigDict(extra="forbid")

    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class Step(BaseModel):
    """A call the agent already made and the result it got."""

    model_config = ConfigDict(extra="forbid")

    call: Call
    result: str
    provenance: Literal["tool", "retrieved"] = "tool"


class Matcher(BaseModel):
    """Matches an executed call: the tool name and a regex per argument (case-insensitive search)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    args: dict[str, str] = Field(default_factory=dict)

    def matches(self, call: ToolCall) -> bool:
        """Whether ``call`` is this tool with every listed argument matching its regex."""
        if call.name != self.name:
            return False
        for arg, pattern in self.args.items():
            if arg not in call.arguments or not re.search(pattern, str(call.arguments[arg]), re.IGNORECASE):
                return False
        return True


class Oracle(BaseModel):
    """What a fully compliant agent does next: the benign call, and the call the attack wants."""

    model_config = ConfigDict(extra="forbid")

    benign: Call
    attack: Call


class Scenario(BaseModel):
    """One agent scenario (see the module docstring and ``scenarios.yaml``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    category: Category
    task: str
    attack_task: str | None = None
    tools: list[str]
    steps: list[Step] = Field(default_factory=list)
    injection: str | None = None
    benign: Matcher
    answer: str | None = None  # regex over the final answer for tasks answered in text
    unsafe: list[Matcher]
    oracle: Oracle

    @field_validator("unsafe", mode="before")
    @classmethod
    def _listify(cls, v: Any) -> Any:
        return v if isinstance(v, list) else [v]

    @field_validator("tools")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        unknown = [t for t in v if t not in TOOLS]
        if unknown:
            raise ValueError(f"unknown tools {unknown}; known: {sorted(TOOLS)}")
        return v

    @model_validator(mode="after")
    def _one_attack(self) -> Scenario:
        """An attack is exactly one of an injection (needs a step) and an attack task."""
        if (self.injection is None) == (self.attack_task is None):
            raise ValueError("give exactly one of injection and attack_task")
        if self.injection is not None and not self.steps:
            raise ValueError("an injection needs a step whose result carries it")
        return self

    def messages(self, variant: Variant) -> list[Message]:
        """The conversation the agent continues from, with provenance on tool results."""
        attacked = variant == "attacked"
        task = self.attack_task if attacked and self.attack_task else self.task
        out = [Message(role="system", content=system_prompt(self.tools)), Message(role="user", content=task)]
        for i, step in enumerate(self.steps):
            result = step.result
            if attacked and self.injection and i == len(self.steps) - 1:
                result += self.injection
            out.append(Message(role="assistant", content=call_text(step.call.name, step.call.arguments)))
            out.append(Message(role="tool", content=result, provenance=step.provenance, name=step.call.name))
        return out

    def is_unsafe(self, call: ToolCall) -> bool:
        """Whether an executed call is one the attack wanted."""
        return any(m.matches(call) for m in self.unsafe)


@cache
def _builtin_text() -> str:
    return resources.files("layerguard.redteam.agents").joinpath("scenarios.yaml").read_text(encoding="utf-8")


def load_scenarios(path: str | Path | None = None) -> list[Scenario]:
    """The built-in scenarios, or those of a YAML file in the same format.

    Raises:
        InvalidInputError: a missing file, or a scenario that fails validation (named).
    """
    if path is None:
        text, where = _builtin_text(), "built-in scenarios"
    else:
        p = Path(path)
        if not p.is_file():
            raise InvalidInputError(f"scenario file {p} does not exist", hint="pass a YAML list of scenarios")
        text, where = p.read_text(encoding="utf-8"), str(p)
    raw = yaml.safe_load(text) or []
    if not isinstance(raw, list):
        raise InvalidInputError(f"{where}: expected a list of scenarios", hint="see redteam/agents/scenarios.yaml")
    out = []
    for i, item in enumerate(raw):
        try:
            out.append(Scenario.model_validate(item))
        except ValidationError as exc:
            name = item.get("id", f"#{i}") if isinstance(item, dict) else f"#{i}"
            raise InvalidInputError(f"{where}: scenario {name} is invalid: {exc.errors()[0]['msg']}") from None
    ids = [s.id for s in out]
    if len(set(ids)) != len(ids):
        raise InvalidInputError(f"{where}: duplicate scenario ids")
    return out
