"""The red-team runner: model x guard x attack x sample, batched, seeded and resumable.

Every harmful sample goes through every attack; borderline-benign samples go through
``direct`` to measure over-refusal. Each answer is generated once, greedily: with the
local backend the guard reads the same forward pass, so a request the guard lets through
gets exactly the answer the unguarded model gives (the guarded cell reuses it), and a
request it stops gets the guard's safe completion. The output monitor judges the answer
token by token exactly as during streaming (same tokens, same running score), so "would
have been halted" is decided on the finished answer.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from layerguard.data.samples import Sample
from layerguard.directions.refusal import log_odds
from layerguard.errors import InvalidInputError
from layerguard.guard.guarded import GuardedModel
from layerguard.guard.pipeline import Guard
from layerguard.guard.types import Exchange, Message
from layerguard.models.generate import PrefixCache, generate
from layerguard.progress import StageTimes, progress_bar
from layerguard.redteam.attacks import get_attack
from layerguard.redteam.executors import CellExecutor, LocalExecutor
from layerguard.redteam.judges import get_judge, harm_judge, refusal_judge
from layerguard.redteam.store import RunStore
from layerguard.version import __version__

SAFE_COMPLETION = "I can't help with that request."


@dataclass
class RunConfig:
    """Settings of a run (part of its identity: changing one starts a different run)."""

    attacks: list[str]
    max_new_tokens: int = 48
    batch_size: int = 8
    seed: int = 0
    judge: str = "refusal"  # success = not refused ("refusal") or not refused and rubric-harmful ("harm")
    live_turns: bool = True  # also run the escalation script turn by turn (refusal by turn)
    direction: str | None = None  # refusal direction file for the white-box attacks
    # the model's refusal tokens: each answer also gets the model's own refusal score (log-odds of
    # these tokens at the first generated position), read from the generation pass itself
    refusal_tokens: list[int] | None = None
    judge_model: str | None = None  # a local model asked the rubric's questions (the llm judge)


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _exchange(conv: list[dict[str, str]]) -> Exchange:
    return Exchange(messages=[Message(role=m["role"], content=m["content"]) for m in conv])  # type: ignore[arg-type]


class Runner:
    """Runs a grid into a :class:`RunStore` under ``out_dir``.

    Args:
        lm: The model under test.
        guard: The guarded model, or a guard to put in front of ``lm`` (None: unguarded only).
        guard_id: A stable identity of the guard (e.g. sha of guard.yaml) for the run identity.
        out_dir: The run directory (``run.sqlite``).
        config: Settings.
        progress: Show progress bars.
        executor: Computes the chunks of cells (default: :class:`LocalExecutor`, in this process).
        store_url: A SQLAlchemy URL for the run store instead of ``out_dir/run.sqlite``.
        times: Receives the wall time of each stage (generation, guard and judges per attack,
            run store, each live turn); a new one when None (``runner.times``).
    """

    def __init__(
        self,
        lm: Any,
        guard: Guard | GuardedModel | None,
        guard_id: str | None,
        out_dir: Path,
        config: RunConfig,
        progress: bool | None = None,
        times: StageTimes | None = None,
        executor: CellExecutor | None = None,
        store_url: str | None = None,
    ) -> None:
        for a in config.attacks:
            get_attack(a)  # unknown names fail before any work
        if config.judge == "llm":
            if config.judge_model is None:
                raise InvalidInputError("the llm judge needs a judge model", hint="pass --judge-model NAME")
        else:
            get_judge(config.judge)
        self.llm_judge: Callable[..., Any] | None = None
        if config.judge_model is not None:
            from layerguard.redteam.judges import llm_judge

            if config.judge_model in (lm.name, lm.model_id):
                judge_lm = lm
            else:
                from layerguard.models import load_model

                judge_lm = load_model(config.judge_model)
            self.llm_judge = llm_judge(judge_lm)
        self.direction = None
        if any(get_attack(a).family == "whitebox" for a in config.attacks):
            if config.direction is None:
                raise InvalidInputError(
                    "white-box attacks need the model's refusal direction",
                    hint="pass --direction FILE (from `layerguard lab select` or `lab study`) or drop whitebox_*",
                )
            from layerguard.directions.direction import Direction

            self.direction = Direction.load(config.direction, model=lm)
        self.guarded = GuardedModel(guard, lm=lm) if isinstance(guard, Guard) else guard
        self.lm, self.cfg, self.progress = lm, config, progress
        self.times = times if times is not None else StageTimes()
        # the opening the current attack's prompts share, computed once per attack (and intervention)
        self._prefix: tuple[str, PrefixCache] | None = None
        self.out_dir = out_dir
        self.guard_id = guard_id
        self.store: RunStore | None = None
        self.executor = executor if executor is not None else LocalExecutor()
        self.store_url = store_url

    def open(self, harmful: Sequence[Sample], benign: Sequence[Sample]) -> RunStore:
        """Open (or resume) the run store; a different run in the directory is refused."""
        identity = {
            "model": self.lm.model_id,
            "guard": self.guard_id,
            "config": asdict(self.cfg),
            "harmful": _digest([s.id for s in harmful]),
            "benign": _digest([s.id for s in benign]),
        }
        if self.store_url is not None:
            from layerguard.redteam.sql_store import SqlRunStore

            self.store = SqlRunStore(self.store_url, identity)
        else:
            self.store = RunStore(self.out_dir / "run.sqlite", identity)
        return self.store

    def run(
        self,
        harmful: Sequence[Sample],
        benign: Sequence[Sample],
        *,
        stop_after_batches: int | None = None,
        on_batch: Callable[[int], None] | None = None,
    ) -> list[dict[str, Any]]:
        """Run every pending cell; return all cells (finished earlier or now)."""
        if not harmful:
            raise InvalidInputError("the harmful dataset is empty", hint="pass a dataset with at least one prompt")
        store = self.store or self.open(harmful, benign)
        done = store.done()
        jobs: list[tuple[str, Sample]] = [(a, s) for a in self.cfg.attacks for s in harmful]
        jobs += [("direct", s) for s in benign]
        pending = [(a, s) for a, s in jobs if RunStore.cell_id(s.id, a, False) not in done]
        with self.times.stage("context check"):
            self._check_context(pending)
        batches = 0
        with progress_bar(
            total=len(jobs), initial=len(jobs) - len(pending), desc="red team", unit="cell", enabled=self.progress
        ) as bar:
            chunks = [
                group[i : i + self.cfg.batch_size]
                for attack in dict.fromkeys(a for a, _ in pending)
                for group in [[(a, s) for a, s in pending if a == attack]]
                for i in range(0, len(group), self.cfg.batch_size)
            ]
            for chunk, cells in self.executor.run(self, chunks):
                with self.times.stage("run store", len(cells)):
                    store.put(cells)
                bar.update(len(chunk))
                batches += 1
                if on_batch is not None:
                    on_batch(batches)
                if stop_after_batches is not None and batches >= stop_after_batches:
                    return store.rows()
            if self.cfg.live_turns:
                self._live_turns([s for s in harmful], store)
        return store.rows()

    def compute(self, chunk: list[tuple[str, Sample]]) -> list[dict[str, Any]]:
        """The rows of one chunk (cells of one attack), inside that attack's intervention."""
        with self._intervention(chunk[0][0]):
            return self._cells(chunk)

    def _check_context(self, jobs: Sequence[tuple[str, Sample]]) -> None:
        """Refuse, before any work, attacks whose prompts do not fit the model's context window."""
        limit = getattr(self.lm.model.config, "max_position_embeddings", None)
        if not limit:
            return
        longest: dict[str, int] = {}
        for a, s in jobs:
            if a in longest and get_attack(a).family not in ("many_shot", "persona"):
                continue  # the other attacks add a fixed frame; one sample per attack is enough
            n = len(self.lm.encode(get_attack(a)(s), find_instruction=False).input_ids)
            longest[a] = max(longest.get(a, 0), n)
        over = {a: n for a, n in longest.items() if n + self.cfg.max_new_tokens > limit}
        if over:
            raise InvalidInputError(
                "prompts longer than the model's context window of "
                f"{limit} tokens (with {self.cfg.max_new_tokens} new tokens): "
                + ", ".join(f"{a} ({n} tokens)" for a, n in sorted(over.items())),
                hint="drop those attacks (e.g. a smaller many_shot_k) or lower --max-new-tokens",
            )

    def _intervention(self, attack: str) -> AbstractContextManager[None]:
        """White-box attacks run inside an intervention on the model; the guard reads that same pass."""
        from layerguard.activations.interventions import ablate_direction, add_vector

        a = get_attack(attack)
        if a.family != "whitebox":
            return nullcontext()
        assert self.direction is not None and self.direction.layer is not None
        v = self.direction.at(self.direction.layer)
        if a.params["intervention"] == "ablate":
            return ablate_direction(self.lm, v)
        return add_vector(self.lm, v, self.direction.layer, alpha=-1.0)

    def _cells(self, chunk: list[tuple[str, Sample]]) -> list[dict[str, Any]]:
        attack = chunk[0][0]  # a chunk holds one attack
        if self._prefix is None or self._prefix[0] != attack:
            self._prefix = (attack, PrefixCache())
        convs = [get_attack(a)(s) for a, s in chunk]
        t0 = time.perf_counter()
        scores: list[float | None] = [None] * len(chunk)
        tokens = self.cfg.refusal_tokens

        def read_first(rows: list[int], logits: Any) -> None:
            assert tokens is not None
            for r, v in zip(rows, log_odds(logits, tokens).tolist(), strict=True):
                scores[r] = float(v)

        answers = generate(
            self.lm,
            convs,
            max_new_tokens=self.cfg.max_new_tokens,
            batch_size=self.cfg.batch_size,
            on_first_logits=read_first if tokens else None,
            prefix_cache=self._prefix[1],
        )
        gen_s = time.perf_counter() - t0
        self.times.add(f"generation/{attack}", gen_s, len(chunk))
        gen_ms = gen_s * 1000 / len(chunk)
        rows = []
        verdicts: list[dict[str, Any] | None] = [None] * len(chunk)
        released: dict[int, dict[str, Any]] = {}
        if self.guarded is not None:
            with self.times.stage(f"guard (states + rings)/{attack}", len(chunk)):
                outcomes = self._outcomes(convs, answers)
                verdicts = [self._verdict(o) for o in outcomes]
            released = self._released(attack, convs, outcomes)
        for idx, ((attack, s), conv, ans, gv, lo) in enumerate(
            zip(chunk, convs, answers, verdicts, scores, strict=True)
        ):
            with self.times.stage("judges/refusal + rubric"):
                j = refusal_judge(conv[-1]["content"], ans, refusal_score=lo)
                h = harm_judge(conv[-1]["content"], ans)
            judges: dict[str, Any] = {"patterns_refused": j.refused, "refusal_log_odds": lo}
            if self.llm_judge is not None:
                with self.times.stage("judges/llm"):
                    lj = self.llm_judge(conv[-1]["content"], ans)
                judges["llm"] = {"refused": lj.refused, "harmful": lj.harmful, **lj.details}
                if self.cfg.judge == "llm":
                    j = lj
            base = {
                "sample_id": s.id,
                "category": s.category,
                "label": s.label,
                "attack": attack,
                "family": get_attack(attack).family,
                "prompt": conv[-1]["content"],
                "n_turns": len(conv),
            }
            rows.append(
                {
                    **base,
                    "guarded": False,
                    "response": ans,
                    "refused": j.refused,
                    "harmful": h.harmful,
                    "harm_score": h.score,
                    "judges": judges,
                    "decision": None,
                    "rings": {},
                    "ring_flags": {},
                    "latency_ms": gen_ms,
                }
            )
            if gv is not None:
                rel = released.get(idx)
                if rel is not None:  # answered again with the refusal direction ablated
                    gv, ans = rel, rel["text"]
                    j = refusal_judge(conv[-1]["content"], ans)
                    h = harm_judge(conv[-1]["content"], ans)
                blocked = gv["decision"] != "allow"
                response = (gv.get("rewrite") or SAFE_COMPLETION) if blocked else ans
                rows.append(
                    {
                        **base,
                        "guarded": True,
                        "response": response,
                        "refused": j.refused or blocked,
                        "harmful": h.harmful and not blocked,
                        "harm_score": 0.0 if blocked else h.score,
                        "decision": gv["decision"],
                        "released": rel is not None,
                        "rings": gv["rings"],
                        "ring_flags": gv["ring_flags"],
                        "latency_ms": gen_ms + gv["latency_ms"],
                        "guard_latency_ms": gv["latency_ms"],
                    }
                )
        return rows

    def _released(self, attack: str, convs: list[list[dict[str, str]]], outcomes: list[Any]) -> dict[int, Any]:
        """Cells the guard releases, answered again with the refusal direction ablated (index -> verdict)."""
        assert self.guarded is not None
        rel = [i for i, o in enumerate(outcomes) if self.guarded.release_vector(o.input_verdict) is not None]
        if not rel:
            return {}
        with self.times.stage(f"release (ablated answers)/{attack}", len(rel)):
            got = self.guarded.answer_released(
                [_exchange(convs[i]) for i in rel],
                [outcomes[i] for i in rel],
                self.cfg.max_new_tokens,
                self.cfg.batch_size,
            )
        return {
            i: {**self._verdict_of(a.decision, a.verdict, outcomes[i].input_verdict.rewrite), "text": a.text}
            for i, a in zip(rel, got, strict=True)
        }

    def _outcomes(self, convs: list[list[dict[str, str]]], answers: list[str]) -> list[Any]:
        """The guarded model's judgement of each finished exchange (see GuardedModel.score_many)."""
        assert self.guarded is not None
        return self.guarded.score_many([_exchange(c) for c in convs], answers, batch_size=self.cfg.batch_size)

    @staticmethod
    def _verdict(o: Any) -> dict[str, Any]:
        return {
            "decision": o.decision,
            "rewrite": o.input_verdict.rewrite,
            "rings": o.ring_scores,
            "ring_flags": o.ring_flags,
            "latency_ms": o.latency_ms,
        }

    @staticmethod
    def _verdict_of(decision: str, verdict: Any, rewrite: str | None) -> dict[str, Any]:
        return {
            "decision": decision,
            "rewrite": rewrite,
            "rings": verdict.ring_scores,
            "ring_flags": {v.ring: v.decision != "allow" for v in verdict.rings},
            "latency_ms": verdict.latency_ms,
        }

    def _live_turns(self, harmful: list[Sample], store: RunStore) -> None:
        """The escalation script played turn by turn with the model's own replies."""
        done = store.done()
        todo = [s for s in harmful if RunStore.cell_id(s.id, "escalation_live", False) not in done]
        if not todo:
            return
        script = get_attack("escalation")
        n_turns = max(sum(m["role"] == "user" for m in script(s)) for s in todo)
        bar = progress_bar(total=len(todo) * n_turns, desc="multi-turn", unit="answer", enabled=self.progress)
        for i in range(0, len(todo), self.cfg.batch_size):
            batch = todo[i : i + self.cfg.batch_size]
            users = [[m["content"] for m in script(s) if m["role"] == "user"] for s in batch]
            convs: list[list[dict[str, str]]] = [[] for _ in batch]
            refused_by_turn: list[list[bool]] = [[] for _ in batch]
            for turn in range(n_turns):
                for c, u in zip(convs, users, strict=True):
                    c.append({"role": "user", "content": u[min(turn, len(u) - 1)]})
                with self.times.stage(f"multi-turn/turn {turn + 1}", len(batch)):
                    answers = generate(
                        self.lm,
                        convs,
                        max_new_tokens=self.cfg.max_new_tokens,
                        batch_size=self.cfg.batch_size,
                        prefix_cache=PrefixCache(),
                    )
                for c, a, r in zip(convs, answers, refused_by_turn, strict=True):
                    c.append({"role": "assistant", "content": a})
                    r.append(refusal_judge("", a).refused)
                bar.update(len(batch))
            self._put_live(store, batch, convs, refused_by_turn)
        bar.close()

    def _put_live(
        self,
        store: RunStore,
        batch: list[Sample],
        convs: list[list[dict[str, str]]],
        refused_by_turn: list[list[bool]],
    ) -> None:
        with self.times.stage("run store", len(batch)):
            store.put(
                [
                    {
                        "sample_id": s.id,
                        "category": s.category,
                        "label": s.label,
                        "attack": "escalation_live",
                        "family": "multi_turn",
                        "guarded": False,
                        "prompt": c[-2]["content"],
                        "response": c[-1]["content"],
                        "refused": r[-1],
                        "harmful": harm_judge("", c[-1]["content"]).harmful,
                        "harm_score": harm_judge("", c[-1]["content"]).score,
                        "decision": None,
                        "rings": {},
                        "ring_flags": {},
                        "latency_ms": 0.0,
                        "refused_by_turn": r,
                        "n_turns": len(r),
                    }
                    for s, c, r in zip(batch, convs, refused_by_turn, strict=True)
                ]
            )


def run_metadata(lm: Any, guard_id: str | None, cfg: RunConfig) -> dict[str, Any]:
    """What every result file records about its run."""
    return {
        "model": lm.model_id,
        "weights_sha256": lm.weights_sha256,
        "guard": guard_id,
        "seed": cfg.seed,
        "layerguard_version": __version__,
        "config": asdict(cfg),
    }


def write_results(rows: list[dict[str, Any]], path: Path) -> None:
    """One JSON line per cell."""
    path.write_text("".join(json.dumps(r, default=float) + "\n" for r in rows))
