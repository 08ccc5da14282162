"""Token positions from the chat template: instruction span, ``t_inst``, post-instruction tokens.

The instruction of interest is the content of the last user message. Its place in the
prompt is found by rendering the conversation twice, once as given and once with that
content replaced by a sentinel; the text before and after the sentinel is the template's
own. Character spans become token spans through the fast tokenizer's offset mapping, so
no template family is hard-coded.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from layerguard.errors import InvalidInputError, TemplateError
from layerguard.models.templates import ConversationLike, Message, render, to_messages

_SENTINEL = "LGSENTINEL7f3a9c"  # no whitespace, so templates that trim content keep it
_EXPLICIT_HINT = (
    "pass positions explicitly as integers (e.g. positions=[-1] or --positions -1), which need no template parsing"
)
_POS_RE = re.compile(r"^(t_inst|last|post_inst|inst)(?:\[(-?\d+)\])?$")


@dataclass(frozen=True)
class PromptPositions:
    """Token indices of one rendered prompt (indices into ``input_ids``)."""

    text: str
    input_ids: list[int]
    instruction: tuple[int, int] | None  # [start, end) token span of the user's instruction
    post_inst: list[int] = field(default_factory=list)  # template tokens after the instruction

    @property
    def n_tokens(self) -> int:
        return len(self.input_ids)

    @property
    def t_inst(self) -> int:
        """The last token of the instruction."""
        return self._span()[1] - 1

    def _span(self) -> tuple[int, int]:
        if self.instruction is None:
            raise TemplateError("instruction positions were not computed for this prompt", hint=_EXPLICIT_HINT)
        return self.instruction

    def resolve(self, spec: str | int) -> list[int]:
        """Token indices named by a position spec.

        Specs: an integer (negative counts from the end), ``"t_inst"``, ``"last"``,
        ``"post_inst"`` (all post-instruction tokens), ``"post_inst[k]"`` and
        ``"inst[k]"`` (k-th token of that span; negative k counts from its end).
        """
        kind, k = parse_position(spec)
        n = self.n_tokens
        if kind == "abs":
            assert k is not None
            idx = k if k >= 0 else n + k
            if not 0 <= idx < n:
                raise InvalidInputError(f"position {k} is outside a prompt of {n} tokens")
            return [idx]
        if kind == "last":
            return [n - 1]
        if kind == "t_inst":
            return [self.t_inst]
        start, end = self._span()
        span = list(range(start, end)) if kind == "inst" else list(self.post_inst)
        if k is None:
            return span
        if not -len(span) <= k < len(span):
            raise InvalidInputError(f"{spec!r} is outside a span of {len(span)} tokens")
        return [span[k]]


def parse_position(spec: str | int) -> tuple[str, int | None]:
    """Parse a position spec into (kind, index).

    Raises:
        InvalidInputError: on an unknown spec, listing the valid forms.
    """
    if isinstance(spec, int):
        return "abs", spec
    text = str(spec).strip()
    if re.fullmatch(r"-?\d+", text):
        return "abs", int(text)
    m = _POS_RE.match(text)
    if not m:
        raise InvalidInputError(
            f"unknown position {spec!r}",
            hint="use an integer (-1 = last token), t_inst, last, post_inst, post_inst[k] or inst[k]",
        )
    kind, k = m.group(1), m.group(2)
    return kind, None if k is None else int(k)


def needs_template_parse(specs: Sequence[str | int]) -> bool:
    """Whether any spec refers to the instruction (absolute indices need no template parsing)."""
    return any(parse_position(s)[0] in ("t_inst", "post_inst", "inst") for s in specs)


def _offsets(tokenizer: Any, text: str) -> tuple[list[int], list[tuple[int, int]]]:
    try:
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    except NotImplementedError as exc:
        raise TemplateError(
            "this tokenizer gives no character offsets (a slow tokenizer)", hint=_EXPLICIT_HINT
        ) from exc
    return list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]


def encode_prompt(
    tokenizer: Any,
    conversation: ConversationLike,
    *,
    system: str | None = None,
    chat_template: str | None = None,
    find_instruction: bool = True,
) -> PromptPositions:
    """Render a conversation for generation and locate its instruction tokens.

    Args:
        tokenizer: A Hugging Face fast tokenizer with a chat template.
        conversation: A prompt or messages ending with the user turn of interest.
        system: Optional system prompt.
        chat_template: Optional Jinja template overriding the tokenizer's.
        find_instruction: Set False to only render and tokenize (absolute positions).

    Raises:
        TemplateError: when the template cannot be parsed, with a hint on explicit positions.
    """
    messages = to_messages(conversation, system)
    text = render(tokenizer, messages, chat_template=chat_template)
    if not find_instruction:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        return PromptPositions(text=text, input_ids=list(ids), instruction=None)
    char_start, char_end = _instruction_chars(tokenizer, messages, text, chat_template)
    ids, offsets = _offsets(tokenizer, text)
    inside = [i for i, (s, e) in enumerate(offsets) if e > s and s < char_end and e > char_start]
    if not inside:
        raise TemplateError("the instruction covers no token of the rendered prompt", hint=_EXPLICIT_HINT)
    start, end = inside[0], inside[-1] + 1
    return PromptPositions(text=text, input_ids=ids, instruction=(start, end), post_inst=list(range(end, len(ids))))


def _instruction_chars(
    tokenizer: Any, messages: list[Message], text: str, chat_template: str | None
) -> tuple[int, int]:
    last_user = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=None)
    if last_user is None:
        raise InvalidInputError("the conversation has no user message", hint="add a user turn")
    if last_user != len(messages) - 1:
        raise InvalidInputError(
            "the conversation must end with the user turn whose instruction is analysed",
            hint="drop trailing assistant/tool messages, or use absolute positions",
        )
    if not messages[last_user]["content"].strip():
        raise InvalidInputError("the last user message is empty")
    probe = [dict(m) for m in messages]
    probe[last_user]["content"] = _SENTINEL
    probe_text = render(tokenizer, probe, chat_template=chat_template)
    if probe_text.count(_SENTINEL) != 1:
        raise TemplateError(
            "cannot locate the instruction: the template repeats or transforms the user message",
            hint=_EXPLICIT_HINT,
        )
    cut = probe_text.index(_SENTINEL)
    prefix, suffix = probe_text[:cut], probe_text[cut + len(_SENTINEL) :]
    if not (text.startswith(prefix) and text.endswith(suffix)) or len(prefix) + len(suffix) >= len(text):
        raise TemplateError(
            "cannot locate the instruction: the template renders the message differently depending on its content",
            hint=_EXPLICIT_HINT,
        )
    start, end = len(prefix), len(text) - len(suffix)
    # Whitespace the template keeps around the content is not part of the instruction.
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end
