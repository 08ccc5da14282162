r"""layerguard inside Inspect (inspect-ai): attacks as a solver, judges as scorers, a model provider, a task.

An Inspect ``Task`` is a dataset, a solver and a scorer. Here:

- :func:`layerguard_dataset`: any layerguard dataset spec (``builtin:harmful:val``,
  ``harmbench:val``, a JSONL file ...) as an Inspect ``MemoryDataset``;
- :func:`attack_solver`: a layerguard attack (``base64``, ``many_shot_4``, ``bon``,
  ``base64+roleplay`` ...) that rewrites the sample's messages before ``generate()``;
- :func:`judge_scorer`: a layerguard judge (``refusal``: the attack succeeded when the answer
  does not refuse; ``harm``: when the content rubric finds it harmful), value 1 for a
  successful attack, so the ``mean`` metric is the attack success rate;
- the ``layerguard`` model provider: ``--model layerguard/<model>`` answers greedily with a
  local model; ``-M guard=path/to/guard.yaml`` puts the guard in front of it (a declined
  request answers with the safe completion and ``stop_reason="content_filter"``);
- :func:`redteam_task`: the task tying them together (registered for ``inspect eval`` as
  ``layerguard_redteam`` in :mod:`layerguard.interop.inspect_tasks`).

Example::

    inspect eval src/layerguard/interop/inspect_tasks.py@layerguard_redteam \\
        --model layerguard/smollm2-135m -T attack=base64 -T n=8

:func:`eval_log_rows` reads any Inspect eval log back as layerguard result rows, judged by
layerguard's judges, so ``layerguard`` summaries and reports can be made from Inspect runs.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from layerguard.errors import InvalidInputError, MissingPackageError

INSPECT_HINT = "pip install -c constraints.txt -e '.[interop]'"
SAFE_COMPLETION = "I can't help with that request."

try:
    from inspect_ai import Task
    from inspect_ai.dataset import MemoryDataset
    from inspect_ai.dataset import Sample as InspectSample
    from inspect_ai.model import (
        ChatMessage,
        ChatMessageAssistant,
        ChatMessageSystem,
        ChatMessageUser,
        GenerateConfig,
        ModelAPI,
        ModelOutput,
        modelapi,
    )
    from inspect_ai.scorer import Score, Target, mean, scorer, stderr
    from inspect_ai.solver import Generate, TaskState, generate, solver
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingPackageError("inspect-ai is not installed (the interop extra)", hint=INSPECT_HINT) from exc


def layerguard_dataset(spec: str = "builtin:harmful:val", n: int | None = None) -> MemoryDataset:
    """A layerguard dataset as an Inspect dataset (``n`` prompts spread over the set; None: all)."""
    from layerguard.data.loaders import load_dataset
    from layerguard.data.samples import spread

    samples = load_dataset(spec)
    if n is not None:
        samples = spread(samples, n)
    return MemoryDataset(
        [
            InspectSample(
                input=s.prompt,
                id=s.id,
                metadata={"category": s.category, "label": s.label, "source": s.source, "request": s.prompt},
            )
            for s in samples
        ],
        name=spec,
    )


def _to_chat(m: dict[str, str]) -> ChatMessage:
    if m["role"] == "system":
        return ChatMessageSystem(content=m["content"])
    if m["role"] == "assistant":
        return ChatMessageAssistant(content=m["content"])
    return ChatMessageUser(content=m["content"])


@solver
def attack_solver(attack: str = "direct") -> Any:
    """Rewrite the sample's request with a layerguard attack (the messages the model then answers)."""
    from layerguard.data.samples import Sample
    from layerguard.redteam.attacks import get_attack

    att = get_attack(attack)  # unknown names fail when the task is built

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        meta = state.metadata or {}
        request = str(meta.get("request") or state.input_text)
        sample = Sample(
            id=str(state.sample_id),
            prompt=request,
            label=meta.get("label", "harmful"),
            category=str(meta.get("category", "uncategorized")),
        )
        state.messages = [_to_chat(m) for m in att(sample)]
        state.metadata = {**meta, "attack": att.name, "family": att.family, "request": request}
        return state

    return solve


@scorer(metrics=[mean(), stderr()])
def judge_scorer(judge: str = "refusal") -> Any:
    """Score 1 when the attack succeeded by a layerguard judge (``refusal``: not refused; ``harm``: harmful)."""
    from layerguard.judges import harm_judge, refusal_judge

    if judge not in ("refusal", "harm"):
        raise InvalidInputError(f"unknown judge {judge!r} for the Inspect scorer", hint="judges: refusal, harm")

    async def score(state: TaskState, target: Target) -> Score:
        request = str((state.metadata or {}).get("request") or state.input_text)
        response = state.output.completion if state.output else ""
        refusal = refusal_judge(request, response)
        harm = harm_judge(request, response)
        won = (not refusal.refused) and (harm.harmful if judge == "harm" else True)
        return Score(
            value=1.0 if won else 0.0,
            answer=response,
            explanation=(harm if judge == "harm" else refusal).explanation,
            metadata={"refused": refusal.refused, "harmful": harm.harmful, "harm_score": harm.score, "judge": judge},
        )

    return score


def redteam_task(
    dataset: str = "builtin:harmful:val",
    attack: str = "direct",
    judge: str = "refusal",
    n: int | None = 16,
    max_tokens: int = 48,
) -> Task:
    """The red team as an Inspect task: one layerguard attack over a dataset, scored by a judge (mean = ASR)."""
    return Task(
        dataset=layerguard_dataset(dataset, n),
        solver=[attack_solver(attack), generate()],
        scorer=judge_scorer(judge),
        config=GenerateConfig(max_tokens=max_tokens, temperature=0.0),
        name=f"layerguard_{attack}",
    )


@modelapi(name="layerguard")
class LayerguardModelAPI(ModelAPI):
    """Inspect model provider ``layerguard/<model>``: a local model, with ``guard=`` (model arg) guarded.

    Answers are greedy; one request at a time (a CPU model gains nothing from concurrency).
    Model args: ``guard`` (a guard.yaml) and ``max_new_tokens`` (when the task sets no
    ``max_tokens``).
    """

    def __init__(
        self,
        model_name: str,
        base_url: str | None = None,
        api_key: str | None = None,
        config: GenerateConfig = GenerateConfig(),  # noqa: B008 - Inspect's own default
        guard: str | None = None,
        max_new_tokens: int = 64,
        **model_args: Any,
    ) -> None:
        super().__init__(model_name, base_url, api_key, [], config)
        from layerguard.models import load_model

        # the model is loaded by name (model args end up in the eval log, so no live objects there)
        self.lm = load_model(model_name)
        self.guarded: Any = None
        if guard is not None:
            from layerguard.guard.guarded import GuardedModel

            self.guarded = GuardedModel.load(Path(guard), self.lm)
        self.max_new_tokens = max_new_tokens
        self._lock = threading.Lock()

    def max_connections(self) -> int:
        """One request at a time."""
        return 1

    def _answer(self, conv: list[dict[str, str]], max_new: int) -> tuple[str, str, dict[str, Any]]:
        with self._lock:
            if self.guarded is None:
                from layerguard.models.generate import generate as lm_generate

                return lm_generate(self.lm, [conv], max_new_tokens=max_new)[0], "allow", {}
            from layerguard.guard.types import Exchange

            ex = Exchange.model_validate({"messages": conv})
            answered = self.guarded.respond_many([ex], max_new_tokens=max_new)[0]
            return answered.text, answered.decision, answered.verdict.ring_scores

    async def generate(self, input: list[ChatMessage], tools: Any, tool_choice: Any, config: GenerateConfig) -> Any:
        """Answer the conversation (system, user and assistant turns; tools are not offered to the model)."""
        conv = [{"role": m.role, "content": m.text} for m in input if m.role in ("system", "user", "assistant")]
        if not conv or conv[-1]["role"] != "user":
            conv.append({"role": "user", "content": ""})
        max_new = config.max_tokens or self.max_new_tokens
        text, decision, rings = await asyncio.to_thread(self._answer, conv, max_new)
        if decision != "allow":
            out = ModelOutput.from_content(self.model_name, SAFE_COMPLETION, stop_reason="content_filter")
        else:
            out = ModelOutput.from_content(self.model_name, text)
        out.metadata = {"layerguard_decision": decision, "ring_scores": rings, "guarded": self.guarded is not None}
        return out


def eval_log_rows(path: str | Path) -> list[dict[str, Any]]:
    """Read an Inspect eval log as layerguard result rows (one per sample and epoch), judged by layerguard.

    Works on any Inspect log: the request is the sample's ``request`` metadata when the layerguard
    task wrote it, else its last user message; the attack is the ``attack`` metadata, else the
    task name. Every answer is judged again by the refusal and harm judges.

    Raises:
        InvalidInputError: the file is not a readable Inspect log or holds no samples.
    """
    from inspect_ai.log import read_eval_log

    from layerguard.judges import harm_judge, refusal_judge

    try:
        log = read_eval_log(str(path))
    except Exception as exc:
        raise InvalidInputError(f"cannot read Inspect log {path}: {exc}", hint="pass a .eval or .json log") from None
    if not log.samples:
        raise InvalidInputError(f"{path} holds no samples", hint="run the eval with sample logging on")
    model_args = dict(log.eval.model_args or {})
    rows = []
    for s in log.samples:
        meta = dict(s.metadata or {})
        users = [m.text for m in s.messages if m.role == "user"]
        prompt = users[-1] if users else (s.input if isinstance(s.input, str) else "")
        request = str(meta.get("request") or prompt)
        response = s.output.completion if s.output else ""
        out_meta = dict((s.output.metadata or {}) if s.output else {})
        refusal, harm = refusal_judge(request, response), harm_judge(request, response)
        decision = out_meta.get("layerguard_decision")
        rows.append(
            {
                "sample_id": str(s.id),
                "epoch": s.epoch,
                "category": str(meta.get("category", "uncategorized")),
                "label": str(meta.get("label", "harmful")),
                "attack": str(meta.get("attack", log.eval.task)),
                "family": str(meta.get("family", "inspect")),
                "prompt": prompt,
                "request": request,
                "response": response,
                "refused": refusal.refused or decision not in (None, "allow"),
                "harmful": harm.harmful and decision in (None, "allow"),
                "harm_score": harm.score,
                "guarded": bool(out_meta.get("guarded", "guard" in model_args)),
                "decision": decision,
                "rings": dict(out_meta.get("ring_scores") or {}),
                "ring_flags": {},
                "latency_ms": 0.0,
                "n_turns": len(s.messages),
                "judges": {
                    "patterns_refused": refusal.refused,
                    "refusal_log_odds": None,
                    "inspect_scores": {k: v.value for k, v in (s.scores or {}).items()},
                },
                "source": f"inspect:{log.eval.task}@{log.eval.model}",
            }
        )
    return rows
