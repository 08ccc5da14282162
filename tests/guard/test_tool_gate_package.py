"""tool_gate package: old import surface, pydantic policy errors, jsonschema checks of nested arguments."""

from __future__ import annotations

import math
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import layerguard.guard.rings.tool_gate as gate_pkg
from layerguard.errors import InvalidInputError
from layerguard.guard.rings.tool_gate import ToolGateRing, ToolPolicy, schema_errors
from layerguard.guard.rings.tool_gate.spec_errors import render_path
from layerguard.guard.types import Exchange, Message, ToolCall

OBJ: dict[str, Any] = {"type": "object"}
# every public name of the former single module ``layerguard.guard.rings.tool_gate``
OLD_PUBLIC = {
    "GateDecision", "FloorDecision", "GATE_DECISIONS", "FLOOR_DECISIONS", "PROVENANCES", "TRUSTED_SOURCES",
    "OPERATORS", "SCORES", "DEFAULT_INJECTION_PATTERNS", "Condition", "Rule", "ToolSpec", "ProvenanceRule",
    "ToolPolicy", "json_equal", "schema_errors", "normalize_text", "CallDecision", "ToolGateRing", "evaluate_operator",
}  # fmt: skip

NESTED = {
    "type": "object",
    "properties": {
        "recipient": {
            "type": "object",
            "properties": {
                "address": {"type": "string", "pattern": "@corp\\.example$"},
                "name": {"type": "string", "maxLength": 5},
            },
            "required": ["address"],
            "additionalProperties": False,
        },
        "attachments": {
            "type": "array",
            "maxItems": 2,
            "items": {
                "type": "object",
                "properties": {"path": {"type": "string"}, "size": {"type": "integer", "minimum": 0}},
                "required": ["path"],
            },
        },
        "headers": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 8}},
    },
    "required": ["recipient"],
    "additionalProperties": False,
}


def with_when(when: Any) -> dict[str, Any]:
    """A policy whose one tool ``t`` has one blocking rule with this ``when``."""
    return {"tools": {"t": {"schema": OBJ, "rules": [{"when": when, "decision": "block"}]}}}


def load(policy: Any) -> ToolPolicy:
    return ToolPolicy.from_dict(policy, source="p.yaml")


def error_of(policy: Any) -> str:
    with pytest.raises(InvalidInputError) as ei:
        load(policy)
    assert ei.value.hint
    return str(ei.value)


def test_package_exports_the_old_public_names() -> None:
    assert set(gate_pkg.__all__) == OLD_PUBLIC
    for name in OLD_PUBLIC:
        assert getattr(gate_pkg, name) is not None, name


# ------------------------------------------------------------------ pydantic policy errors


@pytest.mark.parametrize(
    ("policy", "fragments"),
    [
        ({"tools": {1: {"schema": OBJ}}}, ["field tools.1:", "keys must be strings"]),
        ({"tools": {"t": {"schema": OBJ, "rules": 0}}}, ["tools.t.rules:", "must be a list"]),
        (  # one condition: no index in the path; a list of them: the index
            with_when({"arg": "x", "in": 3}),
            ["field tools.t.rules[0].when.in:", "must be a list"],
        ),
        (
            {
                "tools": {
                    "t": {
                        "schema": OBJ,
                        "rules": [{"when": [{"arg": "x"}, {"arg": "x", "in": 3}], "decision": "block"}],
                    }
                }
            },
            ["field tools.t.rules[0].when[0]:", "has no operator"],
        ),
        (
            {
                "tools": {
                    "t": {"schema": OBJ, "rules": [{"when": {"arguments_from": ["tool", "web"]}, "decision": "block"}]}
                }
            },
            ["field tools.t.rules[0].when.arguments_from[1]:", "'web' is not one of user, system, assistant"],
        ),
        (
            with_when({"equals": 1}),
            ["field tools.t.rules[0].when.arg:", "is required with equals"],
        ),
        (
            {
                "tools": {
                    "t": {"schema": OBJ, "rules": [{"when": {"arguments_from": "tool", "gt": 1}, "decision": "block"}]}
                }
            },
            ["field tools.t.rules[0].when.gt:", "cannot be combined with arguments_from"],
        ),
        (
            {"tools": {"t": {"schema": OBJ, "rules": [{"decision": "block", "reason": None}]}}},
            ["tools.t.rules[0].reason:", "must be a string, got null"],
        ),
        ({"tools": {"t": {"schema": OBJ, "intents": []}}}, ["tools.t.intents:", "non-empty list"]),
        ({"tools": {"t": {"schema": OBJ, "sensitive": "yes"}}}, ["tools.t.sensitive:", "true or false, got 'yes'"]),
        (
            {"tools": {"t": {"schema": {"type": "object", "properties": {"a": {"type": ["string", "string"]}}}}}},
            ["tools.t.schema.properties.a.type:", "more than once"],
        ),
        (
            {"tools": {"t": {"schema": {"type": "object", "additionalProperties": None}}}},
            ["tools.t.schema.additionalProperties:", "true, false or a schema"],
        ),
        (
            {"tools": {"t": {"schema": {"type": "object", "additionalProperties": {"maxLength": 2}}}}},
            ["tools.t.schema.additionalProperties.type:", "is missing"],
        ),
        (
            {"tools": {"t": {"schema": {"type": "object", "properties": {"a": {"type": "string", "oneOf": []}}}}}},
            ["tools.t.schema.properties.a.oneOf:", "unsupported JSON-schema keyword"],
        ),
        (  # the subset passes pydantic; jsonschema's own meta-schema check still names the field
            {"tools": {"t": {"schema": {"type": "object", "required": ["a", "a"]}}}},
            ["tool 't'", "field tools.t.schema.required:", "non-unique"],
        ),
        ({"tools": {}, "provenance_rule": {"untrusted": []}}, ["provenance_rule.untrusted:", "non-empty list"]),
        ({"tools": {}, "provenance_rule": {"injection_patterns": "x"}}, ["provenance_rule.injection_patterns:"]),
        ({"tools": {}, "version": 1, "extra": 2}, ["field extra:", "unknown key", "allowed keys here: tools"]),
        ({}, ["field tools:", "is required"]),
    ],
)
def test_policy_errors_name_file_tool_and_field(policy: Any, fragments: list[str]) -> None:
    msg = error_of(policy)
    assert msg.startswith("invalid tool policy p.yaml:"), msg
    for frag in fragments:
        assert frag in msg, (frag, msg)


def test_lenient_forms_still_load() -> None:
    p = load(
        {
            "version": 1,
            "description": "anything",
            "tools": {
                "t": {
                    "description": "x",
                    "schema": {"type": ["object"], "$comment": "c", "title": "T"},
                    "rules": None,
                },
                "u": {"schema": OBJ, "rules": [{"when": None, "decision": "escalate", "reason": ""}]},
            },
            "provenance_rule": {"untrusted": "retrieved", "injection_patterns": []},
        }
    )
    assert p.tools["t"].rules == () and p.tools["u"].rules[0].reason == "rule 0"
    assert p.provenance_rule.untrusted == frozenset({"retrieved"}) and p.provenance_rule.injection_patterns == ()
    assert load({"tools": None}).tools == {}


def test_policy_keeps_its_own_copy_of_the_schema() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    p = load({"tools": {"t": {"schema": schema}}})
    schema["required"] = []
    assert p.tools["t"].schema["required"] == ["a"]


def test_render_path_follows_the_raw_data() -> None:
    raw = {"tools": {"t": {"rules": [{"when": {"arg": "x"}}]}}}
    assert render_path(("tools", "t", "rules", 0, "when", 0, "gt"), raw) == "tools.t.rules[0].when.gt"
    raw_list = {"tools": {"t": {"rules": [{"when": [{"arg": "x"}]}]}}}
    assert render_path(("tools", "t", "rules", 0, "when", 0), raw_list) == "tools.t.rules[0].when[0]"
    assert render_path(("tools", "t", "schema"), {"tools": {"t": {}}}) == "tools.t.schema"
    assert render_path((), []) == ""


# ------------------------------------------------------------------ jsonschema: nested arguments


GOOD = {
    "recipient": {"address": "a@corp.example", "name": "Ann"},
    "attachments": [{"path": "/w/a.txt", "size": 3}],
    "headers": {"X-Id": "1"},
}


def test_nested_arguments_pass() -> None:
    assert schema_errors(GOOD, NESTED) == []


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({**GOOD, "recipient": {"name": "Ann"}}, ["arguments.recipient.address: required argument is missing"]),
        (
            {**GOOD, "recipient": {"address": "a@evil.example", "name": "Annabel"}},
            [
                "arguments.recipient.address: does not match pattern '@corp\\\\.example$'",
                "arguments.recipient.name: longer than maxLength 5",
            ],
        ),
        (
            {**GOOD, "recipient": {"address": "a@corp.example", "cc": "x", "bcc": "y"}},
            ["arguments.recipient: unexpected argument(s) bcc, cc"],
        ),
        (
            {**GOOD, "attachments": [{"path": "/a"}, {"size": -1}, {"path": 3}]},
            [
                "arguments.attachments: more than maxItems 2",
                "arguments.attachments[1].path: required argument is missing",
                "arguments.attachments[1].size: violates minimum 0",
                "arguments.attachments[2].path: expected string, got integer",
            ],
        ),
        (
            {**GOOD, "headers": {"b": "far too long", "a": 1}},
            ["arguments.headers.a: expected string, got integer", "arguments.headers.b: longer than maxLength 8"],
        ),
        ({**GOOD, "attachments": {"path": "/a"}}, ["arguments.attachments: expected array, got object"]),
        ({"zz": 1}, ["arguments.recipient: required argument is missing", "arguments: unexpected argument(s) zz"]),
    ],
)
def test_nested_argument_errors_in_schema_order(args: dict[str, Any], expected: list[str]) -> None:
    assert schema_errors(args, NESTED) == expected


def test_nested_schema_failure_blocks_the_call() -> None:
    ring = ToolGateRing(load({"tools": {"send": {"schema": NESTED}}}))
    call = ToolCall(name="send", arguments={**GOOD, "attachments": [{"size": 1}]})
    v = ring.check(Exchange(messages=[Message(role="user", content="send it")], tool_calls=[call]))
    c = v.details["calls"][0]
    assert (v.decision, c["stage"]) == ("block", "schema")
    assert "arguments.attachments[0].path: required argument is missing" in c["reason"]


def test_json_types_as_arguments_carry_them() -> None:
    assert schema_errors(math.inf, {"type": "number"}) == ["arguments: expected number, got number"]
    assert schema_errors(math.nan, {"type": "integer"}) != []
    assert schema_errors(2.0, {"type": "integer"}) == []
    assert schema_errors(True, {"type": ["integer", "number"]}) == [
        "arguments: expected integer or number, got boolean"
    ]
    assert schema_errors((1, 2), {"type": "array", "items": {"type": "integer"}}) == []
    assert schema_errors(MappingProxyType({"a": 1}), {"type": "object", "required": ["a"]}) == []
    assert schema_errors(1, {"enum": [True]}) == ["arguments: not one of [True]"]  # JSON: 1 is not true


def test_more_than_five_errors_are_counted() -> None:
    schema = {"type": "object", "required": [f"a{i}" for i in range(8)]}
    v = ToolGateRing(load({"tools": {"t": {"schema": schema}}})).check(
        Exchange(messages=[Message(role="user", content="t")], tool_calls=[ToolCall(name="t")])
    )
    assert "(+3 more)" in v.details["calls"][0]["reason"]


json_scalars = st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=True) | st.text(max_size=12)
json_values = st.recursive(
    json_scalars,
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=4), kids, max_size=4),
    max_leaves=10,
)


@settings(max_examples=100, deadline=None)
@given(args=st.dictionaries(st.sampled_from(["recipient", "attachments", "headers", "x", "y", "z"]), json_values))
def test_errors_do_not_depend_on_argument_order(args: dict[str, Any]) -> None:
    reordered = dict(reversed(list(args.items())))
    assert schema_errors(args, NESTED) == schema_errors(reordered, NESTED)


@settings(max_examples=100, deadline=None)
@given(secret=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=12, max_size=30), where=json_values)
def test_errors_never_echo_argument_values(secret: str, where: Any) -> None:
    # argument names are reported (``unexpected argument(s) x``); values never are
    args = {"recipient": {"address": secret, "name": secret}, "headers": {"h": secret}, "x": [secret, where]}
    errors = schema_errors(args, NESTED)
    assert len(errors) == 4 and not any(secret in e for e in errors)
