"""Conversations and chat templates.

A conversation is a list of ``{"role", "content"}`` messages (a bare string is one user
turn). Rendering always goes through the model's own chat template, so the token
positions derived from it are right for any template family.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, Union

from layerguard.errors import InvalidInputError, TemplateError

Message = dict[str, str]
ConversationLike = Union[str, Sequence[Mapping[str, Any]]]

_ROLES = {"system", "user", "assistant", "tool"}

# Markers that identify the common template families; informational only: positions are
# found from the rendered template, never from these.
_FAMILY_MARKERS = (
    ("chatml", "<|im_start|>"),
    ("llama3", "<|start_header_id|>"),
    ("gemma", "<start_of_turn>"),
    ("mistral", "[INST]"),
    ("phi3", "<|user|>"),
)


def to_messages(conversation: ConversationLike, system: str | None = None) -> list[Message]:
    """Normalize a prompt or message list into a fresh list of message dicts.

    Args:
        conversation: A user prompt, or a list of messages with ``role`` and ``content``.
        system: An optional system prompt prepended when the conversation has none.

    Raises:
        InvalidInputError: on an empty prompt, unknown role or missing content.
    """
    if isinstance(conversation, str):
        if not conversation.strip():
            raise InvalidInputError("empty prompt", hint="give a non-empty instruction")
        messages: list[Message] = [{"role": "user", "content": conversation}]
    else:
        messages = []
        for i, msg in enumerate(conversation):
            if not isinstance(msg, Mapping) or "role" not in msg or "content" not in msg:
                raise InvalidInputError(
                    f"message {i} is not a mapping with 'role' and 'content': {msg!r:.80}",
                    hint='use [{"role": "user", "content": "..."}]',
                )
            role = str(msg["role"])
            if role not in _ROLES:
                raise InvalidInputError(
                    f"message {i} has unknown role {role!r}", hint=f"roles: {', '.join(sorted(_ROLES))}"
                )
            messages.append({"role": role, "content": str(msg["content"] or "")})
        if not messages:
            raise InvalidInputError("empty conversation", hint="give at least one user message")
    if system is not None and messages[0]["role"] != "system":
        messages.insert(0, {"role": "system", "content": system})
    return messages


def template_family(chat_template: str | None) -> str:
    """A short family name for display ("chatml", "llama3", ...; "none" or "other")."""
    if not chat_template:
        return "none"
    for family, marker in _FAMILY_MARKERS:
        if marker in chat_template:
            return family
    return "other"


def template_hash(chat_template: str | None) -> str:
    """sha256 of the template text (recorded with every direction and result)."""
    return hashlib.sha256((chat_template or "").encode()).hexdigest()


def render(
    tokenizer: Any,
    messages: Sequence[Message],
    *,
    add_generation_prompt: bool = True,
    chat_template: str | None = None,
) -> str:
    """Render messages to the prompt string with the tokenizer's (or the given) template.

    Raises:
        TemplateError: when there is no template or it rejects the conversation.
    """
    template = chat_template or getattr(tokenizer, "chat_template", None)
    if not template:
        raise TemplateError(
            "the tokenizer has no chat template",
            hint="pass chat_template=... (a Jinja string), or use absolute positions such as -1",
        )
    try:
        text = tokenizer.apply_chat_template(
            list(messages),
            tokenize=False,
            add_generation_prompt=add_generation_prompt,
            chat_template=template,
        )
    except Exception as exc:  # jinja2 raises TemplateError/UndefinedError; templates raise their own
        raise TemplateError(
            f"the chat template rejected the conversation: {exc}",
            hint="check the roles (some templates forbid a system prompt or require alternation)",
        ) from exc
    if not isinstance(text, str):
        raise TemplateError(f"the chat template returned {type(text).__name__}, not a string")
    return text
