r"""The tool_gate ring: a deterministic policy gate over the tool calls a model proposes.

Model text *proposes*; typed actions and a deterministic gate *authorise*. No model takes
part in the decision: a call is checked against a YAML policy (argument schema, ordered
rules, a default) and a global provenance rule, and the same exchange always yields the
same decision.

Policy format (see ``examples/tool_policy.yaml``)::

    unknown_tools: block            # block | escalate: calls to tools the policy does not list
    provenance_rule:                # optional; these are the defaults
      decision: escalate            # escalate | block
      untrusted: [tool, retrieved]
      min_copy_chars: 8
      min_verbatim_chars: 4
      injection_heuristic: true
      injection_decision: escalate  # escalate | block
      injection_applies_to: all     # all | sensitive
    tools:
      send_email:
        sensitive: true
        schema: {type: object, properties: {to: {type: string}}, required: [to]}
        default: allow              # allow | block | escalate (allow when omitted)
        intents: ['e-?mail', 'send']  # optional; regexes telling that the user asked for this
        rules:                      # first match wins
          - when: {arg: to, not_matches: '(?i)@example\.com$'}
            decision: block
            reason: recipient outside the allowed domain

A rule's ``when`` is one condition or a list of conditions that must all hold (an empty
or missing ``when`` always holds). A condition is either

* ``arg`` (a top-level argument name, or a dotted path into nested objects) plus exactly one
  operator: ``matches`` / ``not_matches`` (regex, ``re.search``), ``equals``, ``in`` /
  ``not_in`` (a list), ``gt`` / ``lt`` (a number), ``contains`` (substring, or list element);
* or ``arguments_from`` (a provenance or a list of them: ``user``, ``system``, ``assistant``,
  ``tool``, ``retrieved``), optionally with ``arg``: some argument value (that argument's, if
  given) was copied from content that arrived in a message with that provenance.

Condition semantics, chosen so that an allow-list cannot be widened by the model:

* A condition on an argument that is absent is false (negated operators included); make
  arguments required in the schema when a rule depends on them.
* For a list value, ``matches``, ``in``, ``gt`` and ``lt`` need *every* element to satisfy
  them (an empty list satisfies none); ``not_matches`` and ``not_in`` are their exact
  negations (some element fails); ``contains`` holds when some element equals the literal or,
  for strings, contains it; ``equals`` compares the whole value.
* ``gt`` / ``lt`` read numbers and numeric strings; anything else (or NaN) makes them false.
* ``equals`` / ``in`` use JSON equality (``true`` is not ``1``); string comparisons are exact,
  use a ``(?i)`` regex for case-insensitive checks.

Copy detection (``arguments_from`` and the provenance rule) compares NFKC-normalised,
case-folded, whitespace-collapsed text: a value counts as copied when it appears whole in the
source content (if at least ``min_verbatim_chars`` long) or shares a substring of at least
``min_copy_chars`` with it. Text that the user or system also wrote does not count when the
source asked about is untrusted (tool, retrieved, assistant): what the user said, the user
authorised.

Decision per call, in order:

1. A tool the policy does not list gets ``unknown_tools``.
2. Arguments failing the tool's schema are blocked (the error names the argument and the check).
3. The first rule whose ``when`` holds decides; if none does, the tool's ``default``.
4. The provenance rule can only make the decision more severe:

   * a ``sensitive`` tool whose arguments were copied from untrusted content (a message with
     role ``tool`` or a provenance in ``untrusted``) gets at least ``decision``: content from a
     tool result can never authorise an action;
   * heuristic (deterministic regexes, not a classifier): when a message from untrusted content
     arrived after the last user message and contains instruction-like text ("ignore previous
     instructions", "you must now", "send ... to"...), a call whose tool the last user message
     did not mention (no ``intents`` regex found; by default the words of the tool's name) gets
     at least ``injection_decision``. It misses paraphrased injections and can fire on pages
     that merely say "send feedback to"; it is a floor, never the only line of defence.

The ring's decision is the most severe over the calls (block > escalate > rewrite > allow);
its score is 1.0 for block, 0.7 for escalate, 0.0 for allow. Verdict explanations and details
name arguments and sources, never the copied values (they may be secrets).

The arguments schema is checked by the ``jsonschema`` library (Draft 2020-12) over a keyword
subset (``type``, ``properties``, ``required``, ``additionalProperties``, ``enum``, ``const``,
``pattern``, ``minLength``, ``maxLength``, ``minimum``, ``maximum``, ``exclusiveMinimum``,
``exclusiveMaximum``, ``items``, ``minItems``, ``maxItems``). Other keywords are rejected when the
policy loads rather than silently ignored, and every schema must declare a ``type`` (or an
``enum`` / ``const``). The policy file itself is validated by strict pydantic models whose
errors name the file, the tool and the field.

Modules: ``rules`` (decisions, operators and the compiled rule objects), ``spec`` (the pydantic
models of the file; ``checks`` and ``spec_errors`` serve them), ``policy`` (:class:`ToolPolicy`),
``values`` (JSON values in arguments), ``arguments`` (schema and operator checks),
``provenance`` (copy detection, injection heuristic) and ``ring`` (:class:`ToolGateRing`).
"""

from layerguard.guard.rings.tool_gate.arguments import evaluate_operator, schema_errors
from layerguard.guard.rings.tool_gate.policy import ToolPolicy
from layerguard.guard.rings.tool_gate.provenance import normalize_text
from layerguard.guard.rings.tool_gate.ring import CallDecision, ToolGateRing
from layerguard.guard.rings.tool_gate.rules import (
    DEFAULT_INJECTION_PATTERNS,
    FLOOR_DECISIONS,
    GATE_DECISIONS,
    OPERATORS,
    PROVENANCES,
    SCORES,
    TRUSTED_SOURCES,
    Condition,
    FloorDecision,
    GateDecision,
    ProvenanceRule,
    Rule,
    ToolSpec,
)
from layerguard.guard.rings.tool_gate.values import json_equal

__all__ = [
    "DEFAULT_INJECTION_PATTERNS",
    "FLOOR_DECISIONS",
    "GATE_DECISIONS",
    "OPERATORS",
    "PROVENANCES",
    "SCORES",
    "TRUSTED_SOURCES",
    "CallDecision",
    "Condition",
    "FloorDecision",
    "GateDecision",
    "ProvenanceRule",
    "Rule",
    "ToolGateRing",
    "ToolPolicy",
    "ToolSpec",
    "evaluate_operator",
    "json_equal",
    "normalize_text",
    "schema_errors",
]
