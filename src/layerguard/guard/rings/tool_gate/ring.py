"""The tool_gate ring: every proposed tool call judged against the policy, most severe decision wins."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from layerguard.guard.rings.tool_gate.arguments import evaluate_operator, schema_errors
from layerguard.guard.rings.tool_gate.policy import ToolPolicy
from layerguard.guard.rings.tool_gate.provenance import ExchangeIndex
from layerguard.guard.rings.tool_gate.rules import SCORES, Condition, GateDecision, ToolSpec
from layerguard.guard.rings.tool_gate.values import MISSING, leaves, lookup
from layerguard.guard.types import SEVERITY, Decision, Exchange, RingVerdict, Stage

_MAX_SCHEMA_ERRORS = 5


@dataclass
class CallDecision:
    """The gate's decision on one tool call.

    Attributes:
        index: Position of the call in the exchange.
        id: The call's id.
        name: The tool name.
        decision: allow, block or escalate.
        reason: Why, in words.
        stage: What decided: ``unknown_tool``, ``schema``, ``rule``, ``default`` or ``error``.
        rule: Index of the matching rule (stage ``rule``).
        flags: Provenance findings: ``copied_from_untrusted``, ``injection_heuristic``.
        copied_arg: The argument found copied from untrusted content (not its value).
        raised_by: Which provenance findings raised the decision.
    """

    index: int
    id: str
    name: str
    decision: GateDecision
    reason: str
    stage: str
    rule: int | None = None
    flags: list[str] = field(default_factory=list)
    copied_arg: str | None = None
    raised_by: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict for verdict details."""
        return {
            "index": self.index,
            "id": self.id,
            "name": self.name,
            "decision": self.decision,
            "reason": self.reason,
            "stage": self.stage,
            "rule": self.rule,
            "flags": list(self.flags),
            "copied_arg": self.copied_arg,
            "raised_by": list(self.raised_by),
        }


class ToolGateRing:
    """Deterministic policy gate over proposed tool calls (no model involved).

    Args:
        policy: The tool policy (see :class:`ToolPolicy`).
    """

    name = "tool_gate"
    stage: Stage = "tool_call"
    reads: tuple[str, ...] = ()

    def __init__(self, policy: ToolPolicy) -> None:
        self.policy = policy

    @classmethod
    def from_yaml(cls, path: str | Path) -> ToolGateRing:
        """A ring over the policy in a YAML file."""
        return cls(ToolPolicy.from_yaml(path))

    def decide(self, exchange: Exchange) -> list[CallDecision]:
        """The decision on every tool call of an exchange, in order."""
        index = ExchangeIndex(exchange, self.policy.provenance_rule)
        out = []
        for i, call in enumerate(exchange.tool_calls):
            try:
                out.append(self._decide_call(i, call.id, call.name, call.arguments, index))
            except Exception as e:  # check must not raise; an unexpected failure fails closed
                out.append(
                    CallDecision(
                        i, call.id, call.name, "block", f"could not evaluate the call ({type(e).__name__})", "error"
                    )
                )
        return out

    def check(self, exchange: Exchange) -> RingVerdict:
        """Judge every proposed tool call; the most severe call decision is the ring's.

        Args:
            exchange: The conversation and the tool calls the model proposes.

        Returns:
            Score 1.0 for block, 0.7 for escalate, 0.0 for allow; ``details["calls"]`` holds
            every call's decision, reason, stage and provenance flags.
        """
        t0 = time.perf_counter()
        if not exchange.tool_calls:
            return RingVerdict(
                ring=self.name,
                score=0.0,
                decision="allow",
                latency_ms=(time.perf_counter() - t0) * 1000,
                explanation="no tool calls",
                details={"calls": []},
            )
        calls = self.decide(exchange)
        decision: Decision = "allow"
        for c in calls:
            if SEVERITY[c.decision] > SEVERITY[decision]:
                decision = c.decision
        provenance = any(c.raised_by for c in calls if c.decision == decision)
        category = None if decision == "allow" else ("prompt_injection" if provenance else "tool_policy")
        explanation = "; ".join(f"{c.name}#{c.id or c.index}: {c.decision} ({c.reason})" for c in calls)
        return RingVerdict(
            ring=self.name,
            score=SCORES[decision],
            decision=decision,
            category=category,
            latency_ms=(time.perf_counter() - t0) * 1000,
            explanation=explanation,
            details={"calls": [c.to_dict() for c in calls], "policy": self.policy.source},
        )

    # -- one call

    def _decide_call(self, i: int, call_id: str, name: str, args: dict[str, Any], index: ExchangeIndex) -> CallDecision:
        policy = self.policy
        spec = policy.tools.get(name)
        if spec is None:
            return CallDecision(
                i,
                call_id,
                name,
                policy.unknown_tools,
                f"unknown tool {name!r} (not in the policy)",
                "unknown_tool",
            )
        errors = schema_errors(args, spec.schema)
        if errors:
            shown = "; ".join(errors[:_MAX_SCHEMA_ERRORS])
            more = f" (+{len(errors) - _MAX_SCHEMA_ERRORS} more)" if len(errors) > _MAX_SCHEMA_ERRORS else ""
            return CallDecision(i, call_id, name, "block", f"arguments fail the schema: {shown}{more}", "schema")
        decided: CallDecision | None = None
        for r, rule in enumerate(spec.rules):
            if all(self._holds(c, args, index) for c in rule.when):
                decided = CallDecision(i, call_id, name, rule.decision, rule.reason, "rule", rule=r)
                break
        if decided is None:
            decided = CallDecision(
                i, call_id, name, spec.default, f"no rule matched: default {spec.default}", "default"
            )
        self._provenance(decided, spec, args, index)
        return decided

    def _holds(self, cond: Condition, args: Mapping[str, Any], index: ExchangeIndex) -> bool:
        if cond.op == "arguments_from":
            if cond.arg is None:
                found = leaves(args, "")
            else:
                value = lookup(args, cond.arg)
                if value is MISSING:
                    return False
                found = leaves(value, cond.arg)
            return index.copied(found, cond.sources) is not None
        assert cond.arg is not None  # guaranteed by the parser
        value = lookup(args, cond.arg)
        if value is MISSING:
            return False
        return evaluate_operator(cond, value)

    def _provenance(self, d: CallDecision, spec: ToolSpec, args: Mapping[str, Any], index: ExchangeIndex) -> None:
        pr = self.policy.provenance_rule
        if not pr.enabled:
            return
        notes: list[str] = []
        if spec.sensitive:
            copied = index.copied(leaves(args, ""), pr.untrusted | {"tool"})
            if copied is not None:
                d.flags.append("copied_from_untrusted")
                d.copied_arg = copied
                if SEVERITY[pr.decision] > SEVERITY[d.decision]:
                    d.raised_by.append("copied_from_untrusted")
                    d.decision = pr.decision
                notes.append(
                    f"argument {copied!r} was copied from a tool result or retrieved content and {spec.name} is "
                    f"sensitive: at least {pr.decision}"
                )
        if pr.injection_heuristic and (pr.injection_applies_to == "all" or spec.sensitive):
            found = index.injection()
            if found is not None and not any(p.search(index.last_user) for p in spec.intents):
                d.flags.append("injection_heuristic")
                if SEVERITY[pr.injection_decision] > SEVERITY[d.decision]:
                    d.raised_by.append("injection_heuristic")
                    d.decision = pr.injection_decision
                notes.append(
                    f"a tool result after the last user message contains instruction-like text ({found!r}) and the "
                    f"user did not ask for {spec.name}: at least {pr.injection_decision}"
                )
        if notes:
            d.reason = "; ".join([d.reason, *notes])
