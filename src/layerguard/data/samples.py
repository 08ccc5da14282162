"""The sample model shared by the lab, the guard and the red team."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Label = Literal["harmful", "harmless", "borderline", "unknown"]


class Sample(BaseModel):
    """One prompt with its provenance.

    Attributes:
        id: Unique within its source.
        prompt: The user instruction (the last user turn when ``messages`` is set).
        label: ``harmful`` (should be refused), ``harmless``, ``borderline`` (looks
            dangerous, is fine) or ``unknown``.
        category: Hazard category (MLCommons S1-S14 names) or a topic.
        split: ``train`` / ``val`` / ``test`` (held-out sets are ``test`` only).
        source: Where it came from (``builtin:harmful``, ``harmbench:val``, a file path).
        messages: Optional earlier turns; the prompt is appended as the final user turn.
        meta: Anything else the source carried (pair ids, kinds).
    """

    model_config = ConfigDict(frozen=True)

    id: str
    prompt: str = Field(min_length=1)
    label: Label = "unknown"
    category: str = "uncategorized"
    split: str = "train"
    source: str = ""
    messages: tuple[dict[str, str], ...] = ()
    meta: dict[str, Any] = Field(default_factory=dict)

    def conversation(self) -> list[dict[str, str]]:
        """The full conversation ending with this sample's prompt as the user turn."""
        return [*map(dict, self.messages), {"role": "user", "content": self.prompt}]


def spread(samples: Sequence[Sample], n: int) -> list[Sample]:
    """``n`` samples evenly spaced over a list, in order.

    The project's sets are sorted by category, so the first ``n`` would cover only a few
    hazard categories (or borderline kinds); evenly spaced ones cover them all.
    """
    if n <= 0:
        return []
    if n >= len(samples):
        return list(samples)
    step = len(samples) / n
    return [samples[int(i * step)] for i in range(n)]
