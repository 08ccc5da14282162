"""The Inspect task file: ``inspect eval src/layerguard/interop/inspect_tasks.py@layerguard_redteam``.

Importing it also registers the ``layerguard`` model provider (``--model layerguard/<model>``).
With layerguard installed, ``inspect eval layerguard/layerguard_redteam`` finds the same task
through the package's ``inspect_ai`` entry point.
"""

from __future__ import annotations

from inspect_ai import Task, task

from layerguard.interop.inspect_bridge import LayerguardModelAPI, redteam_task

__all__ = ["LayerguardModelAPI", "layerguard_redteam"]


@task
def layerguard_redteam(
    dataset: str = "builtin:harmful:val",
    attack: str = "direct",
    judge: str = "refusal",
    n: int | None = 16,
    max_tokens: int = 48,
) -> Task:
    """One layerguard attack over a dataset, scored by a layerguard judge (the mean score is the ASR).

    Args:
        dataset: A layerguard dataset spec (``builtin:harmful:val``, ``harmbench:val``, a JSONL path).
        attack: A layerguard attack name (``direct``, ``base64``, ``bon``, ``base64+roleplay`` ...).
        judge: ``refusal`` (success = not refused) or ``harm`` (success = rubric-harmful).
        n: Prompts spread over the dataset (None: all of it).
        max_tokens: Answer length.
    """
    return redteam_task(dataset, attack, judge, n, max_tokens)
