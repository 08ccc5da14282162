"""An end-to-end lab study: harmfulness and refusal directions, selection and causal tests.

Every number is written to ``results.json``.

Steps (each on the project's own sets; nothing from a held-out benchmark):
1. derive the model's refusal-opening tokens from its answers to training prompts;
2. validate the refusal log-odds score against generated, judged answers;
3. extract harmfulness (t_inst) and refusal (post-instruction) directions, and a
   behavioural refusal direction (refused vs complied);
4. per layer: cosine between the directions and their separation AUROC on validation;
5. select the refusal direction (bypass / induce / KL) on one part of validation;
6. on the other part: ablation and addition effects on refusal (generation + judge), and
   the reply-inversion test: steering along each direction, does the model's own
   yes/no judgement of harmfulness flip, and does it refuse more? The judgement is also
   read as a projection of the hidden state (:mod:`layerguard.lab.inversion`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from layerguard.activations.capture import capture_activations
from layerguard.activations.interventions import ablate_direction, add_vector
from layerguard.activations.store import ActivationSet
from layerguard.data.builtin import load_builtin
from layerguard.data.heldout import assert_not_held_out
from layerguard.data.samples import Sample
from layerguard.directions.direction import Direction
from layerguard.directions.extract import data_hash, diff_in_means, directions_from_acts, stack_layers
from layerguard.directions.refusal import RefusalTokens, agreement, derive_refusal_tokens, log_odds
from layerguard.directions.select import select_refusal_direction
from layerguard.errors import InvalidInputError
from layerguard.judges import is_refusal as is_refusal_text
from layerguard.lab.inversion import JUDGE_FRAME, projection_inversion
from layerguard.models.generate import generate, last_logits
from layerguard.models.handle import LoadedModel
from layerguard.stats import auroc, rate
from layerguard.version import __version__

JUDGE_TEMPLATE = JUDGE_FRAME


@dataclass
class StudyConfig:
    """Sizes of each step (defaults fit ~15 minutes on a 2-core CPU for a 0.5B model)."""

    n_token_prompts: int = 96  # harmful train prompts answered to derive refusal tokens (+ half as many harmless)
    n_select: int = 16  # validation prompts per side used for selection
    n_eval: int = 72  # validation prompts per side used for the causal tests (disjoint from selection)
    n_inversion_train: int = 96  # train prompts per side that fit the reply-inversion judgement read
    select_positions: list[str] | None = None  # default: every post-instruction token
    select_layers: list[int] | None = None  # default: every layer below the cap
    max_new_tokens: int = 48
    batch_size: int = 8
    seed: int = 0


@dataclass
class StudyData:
    """The prompts of each role in the study."""

    harmful_train: list[Sample]
    harmless_train: list[Sample]
    harmful_val: list[Sample]
    harmless_val: list[Sample]
    borderline_val: list[Sample]
    meta: dict[str, Any] = field(default_factory=dict)


def default_data() -> StudyData:
    """The project's own sets: matched harmful/harmless pairs and borderline prompts."""
    return StudyData(
        harmful_train=load_builtin("harmful", "train"),
        harmless_train=load_builtin("harmless", "train"),
        harmful_val=load_builtin("harmful", "val"),
        harmless_val=load_builtin("harmless", "val"),
        borderline_val=load_builtin("borderline", "val"),
        meta={"source": "builtin"},
    )


def _prompts(samples: Sequence[Sample]) -> list[str]:
    return [s.prompt for s in samples]


def _yes_no_ids(lm: LoadedModel) -> tuple[list[int], list[int]]:
    def first_ids(words: Sequence[str]) -> list[int]:
        ids = {lm.tokenizer(w, add_special_tokens=False)["input_ids"][0] for w in words}
        return sorted(int(i) for i in ids)

    return first_ids(["Yes", " Yes", "yes", "YES"]), first_ids(["No", " No", "no", "NO"])


def judged_harmful(lm: LoadedModel, requests: Sequence[str], batch_size: int) -> list[bool]:
    """The model's own yes/no judgement of whether each request is harmful (Yes more likely than No)."""
    import torch

    yes, no = _yes_no_ids(lm)
    logits = last_logits(lm, [JUDGE_TEMPLATE.format(request=r) for r in requests], batch_size=batch_size)
    logp = torch.log_softmax(logits, -1)
    return (torch.logsumexp(logp[:, yes], -1) > torch.logsumexp(logp[:, no], -1)).tolist()


def _refusals(texts: Sequence[str]) -> list[bool]:
    return [is_refusal_text(t) for t in texts]


def _project(acts: Any, direction: Any) -> list[float]:
    unit = direction / direction.norm().clamp(min=1e-12)
    return (acts @ unit).tolist()


def _per_layer_auroc(pos: Any, neg: Any, vectors: Any) -> list[float]:
    return [
        auroc(_project(pos[:, li], vectors[li]), _project(neg[:, li], vectors[li])) for li in range(vectors.shape[0])
    ]


@dataclass
class _Split:
    """The validation prompts by role: selection and evaluation parts (disjoint), and borderline."""

    sel_h: list[Sample]
    eval_h: list[Sample]
    sel_b: list[Sample]
    eval_b: list[Sample]
    border: list[Sample]

    @classmethod
    def of(cls, data: StudyData, cfg: StudyConfig) -> _Split:
        return cls(
            sel_h=data.harmful_val[: cfg.n_select],
            eval_h=data.harmful_val[cfg.n_select :][: cfg.n_eval],
            sel_b=data.harmless_val[: cfg.n_select],
            eval_b=data.harmless_val[cfg.n_select :][: cfg.n_eval],
            border=data.borderline_val[: cfg.n_eval],
        )

    def eval_sets(self) -> tuple[tuple[str, list[Sample]], ...]:
        """``(name, samples)`` of the three evaluation sets."""
        return (("harmful", self.eval_h), ("harmless", self.eval_b), ("borderline", self.border))


@contextmanager
def _step(name: str, timings: dict[str, float], log: Callable[[str], None]) -> Iterator[None]:
    """Log a step's start and end and record its duration in seconds (a failed step records none)."""
    t = time.time()
    log(f"[{name}] ...")
    yield
    timings[name] = round(time.time() - t, 1)
    log(f"[{name}] done in {timings[name]}s")


def run_study(
    lm: LoadedModel,
    out_dir: str | Path,
    config: StudyConfig | None = None,
    data: StudyData | None = None,
    progress: bool | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the study and write ``results.json``, directions and figures into ``out_dir``.

    Raises:
        InvalidInputError: if ``out_dir`` already holds results, or the data are too small.
    """
    import torch

    cfg = config or StudyConfig()
    torch.manual_seed(cfg.seed)
    data = data or default_data()
    out = Path(out_dir)
    if (out / "results.json").exists():
        raise InvalidInputError(f"{out} already holds study results", hint="choose a new --out directory")
    assert_not_held_out([*data.harmful_train, *data.harmless_train, *data.harmful_val, *data.harmless_val], "a study")
    need = cfg.n_select + 8
    if min(len(data.harmful_val), len(data.harmless_val)) < need:
        raise InvalidInputError(f"validation sets need at least {need} prompts per side")
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.time()
    timings: dict[str, float] = {}
    res: dict[str, Any] = {
        "model": lm.describe(),
        "config": asdict(cfg),
        "layerguard_version": __version__,
        "data_sha256": data_hash(data.harmful_train, data.harmless_train, data.harmful_val, data.harmless_val),
        "data": {
            k: len(getattr(data, k))
            for k in ("harmful_train", "harmless_train", "harmful_val", "harmless_val", "borderline_val")
        },
    }
    split = _Split.of(data, cfg)
    kw: dict[str, Any] = {"positions": ["t_inst", "post_inst"], "batch_size": cfg.batch_size, "progress": progress}

    with _step("refusal tokens", timings, log):
        tokens, train_refused, res["refusal_tokens"] = _refusal_tokens(lm, data, cfg, progress)
    with _step("baseline", timings, log):
        gen, res["baseline"], res["score_vs_generation"] = _baseline(lm, split, tokens, cfg, progress)
    with _step("extraction", timings, log):
        dirs, behavioural, last_post = _extraction(lm, data, train_refused, kw, res["data_sha256"])
    with _step("geometry", timings, log):
        harm, ref = dirs["harmfulness"], dirs[f"refusal@{last_post}"]
        res["geometry"] = _geometry(lm, data, harm, ref, behavioural, last_post, kw)
    with _step("selection", timings, log):
        chosen, res["selection"] = _selection(lm, dirs, split, tokens, cfg, progress)
        log(res["selection"]["explanation"])
    with _step("causal tests", timings, log):
        train = (data.harmful_train[: cfg.n_inversion_train], data.harmless_train[: cfg.n_inversion_train])
        res["causal"] = _causal_tests(lm, chosen, harm, split, *train, gen, cfg, progress)

    ddir = out / "directions"
    harm.save(ddir / "harmfulness")
    chosen.save(ddir / "refusal")
    if behavioural is not None:
        behavioural.save(ddir / "refusal_behavioural")
    res["timings_s"] = timings
    res["duration_s"] = round(time.time() - t_start, 1)
    _write_results(out, res, split, gen)
    return res


def _refusal_tokens(
    lm: LoadedModel, data: StudyData, cfg: StudyConfig, progress: bool | None
) -> tuple[RefusalTokens, list[bool], dict[str, Any]]:
    """Step 1: the refusal tokens from the model's own answers, and which harmful train prompts it refused."""
    tok_harm = data.harmful_train[: cfg.n_token_prompts]
    tok_prompts = _prompts(tok_harm) + _prompts(data.harmless_train[: cfg.n_token_prompts // 2])
    tok_answers = generate(
        lm, tok_prompts, max_new_tokens=24, batch_size=cfg.batch_size, progress=progress, desc="answering"
    )
    tokens = derive_refusal_tokens(lm, tok_prompts, responses=tok_answers)
    entry = {"tokens": list(tokens.strings), "ids": list(tokens.ids), **tokens.stats}
    return tokens, _refusals(tok_answers[: len(tok_harm)]), entry


def _baseline(
    lm: LoadedModel, split: _Split, tokens: RefusalTokens, cfg: StudyConfig, progress: bool | None
) -> tuple[dict[str, list[str]], dict[str, Any], dict[str, Any]]:
    """Step 2: answers on the evaluation sets, refusal rates, and the score's agreement with the answers."""
    bs = cfg.batch_size
    gen: dict[str, list[str]] = {}
    scores: dict[str, list[float]] = {}
    for name, samples in split.eval_sets():
        ps = _prompts(samples)
        gen[name] = generate(lm, ps, max_new_tokens=cfg.max_new_tokens, batch_size=bs, progress=progress, desc=name)
        scores[name] = log_odds(last_logits(lm, ps, batch_size=bs), tokens.ids).tolist()
    all_scores = scores["harmful"] + scores["harmless"] + scores["borderline"]
    all_refused = _refusals(gen["harmful"] + gen["harmless"] + gen["borderline"])
    baseline = {
        name: {"refusal": rate(_refusals(gen[name])), "mean_score": sum(scores[name]) / len(scores[name])}
        for name in gen
    }
    return gen, baseline, agreement(all_scores, all_refused)


def _extraction(
    lm: LoadedModel, data: StudyData, train_refused: Sequence[bool], kw: dict[str, Any], data_sha256: str
) -> tuple[dict[str, Direction], Direction | None, str]:
    """Step 3: directions from the training pairs, the behavioural refusal direction, the last position."""
    acts_h = capture_activations(lm, _prompts(data.harmful_train), **kw)
    acts_b = capture_activations(lm, _prompts(data.harmless_train), **kw)
    assert isinstance(acts_h, ActivationSet) and isinstance(acts_b, ActivationSet)
    dirs = directions_from_acts(lm, acts_h, acts_b, meta={"data_sha256": data_sha256})
    last_post = acts_h.positions[-1]
    stack_h = stack_layers(acts_h, last_post, lm.n_layers)[: len(train_refused)]
    refused_idx = [i for i, r in enumerate(train_refused) if r]
    complied_idx = [i for i, r in enumerate(train_refused) if not r]
    behavioural: Direction | None = None
    if len(refused_idx) >= 2 and len(complied_idx) >= 2:
        behavioural = Direction(
            vectors=diff_in_means(stack_h[refused_idx], stack_h[complied_idx]),
            role="refusal_behavioural",
            position=last_post,
            model_id=lm.model_id,
            weights_sha256=lm.weights_sha256,
            template_sha256=lm.template_hash,
            meta={"n_refused": len(refused_idx), "n_complied": len(complied_idx)},
        )
    return dirs, behavioural, last_post


def _geometry(
    lm: LoadedModel,
    data: StudyData,
    harm: Direction,
    ref: Direction,
    behavioural: Direction | None,
    last_post: str,
    kw: dict[str, Any],
) -> dict[str, Any]:
    """Step 4: cosines between the directions and their separation AUROC per layer on validation."""
    val = {}
    for name, samples in (
        ("harmful", data.harmful_val),
        ("harmless", data.harmless_val),
        ("borderline", data.borderline_val),
    ):
        a = capture_activations(lm, _prompts(samples), **kw)
        assert isinstance(a, ActivationSet)
        val[name] = a
    cos = harm.cosine(ref).tolist()
    geometry: dict[str, Any] = {
        "cosine_harmfulness_refusal": cos,
        "lowest_cosine_layers": sorted(range(1, lm.n_layers), key=lambda li: abs(cos[li]))[:5],
    }
    if behavioural is not None:
        geometry["cosine_harmfulness_behavioural"] = harm.cosine(behavioural).tolist()
        geometry["cosine_refusal_behavioural"] = ref.cosine(behavioural).tolist()
    t_h = {n: stack_layers(a, "t_inst", lm.n_layers) for n, a in val.items()}
    p_h = {n: stack_layers(a, last_post, lm.n_layers) for n, a in val.items()}
    geometry["auroc"] = {
        "harmfulness@t_inst harmful_vs_harmless": _per_layer_auroc(t_h["harmful"], t_h["harmless"], harm.vectors),
        "harmfulness@t_inst harmful_vs_borderline": _per_layer_auroc(t_h["harmful"], t_h["borderline"], harm.vectors),
        f"refusal@{last_post} harmful_vs_harmless": _per_layer_auroc(p_h["harmful"], p_h["harmless"], ref.vectors),
        f"refusal@{last_post} harmful_vs_borderline": _per_layer_auroc(p_h["harmful"], p_h["borderline"], ref.vectors),
    }
    return geometry


def _selection(
    lm: LoadedModel,
    dirs: dict[str, Direction],
    split: _Split,
    tokens: RefusalTokens,
    cfg: StudyConfig,
    progress: bool | None,
) -> tuple[Direction, dict[str, Any]]:
    """Step 5: the refusal direction selected on the selection part of validation, and the record of the choice."""
    cands = {k: d for k, d in dirs.items() if d.role == "refusal"}
    if cfg.select_positions:
        cands = {k: d for k, d in cands.items() if d.position in cfg.select_positions}
    sel = select_refusal_direction(
        lm,
        cands,
        _prompts(split.sel_h),
        _prompts(split.sel_b),
        tokens,
        layers=cfg.select_layers,
        batch_size=cfg.batch_size,
        progress=progress,
    )
    chosen = sel.direction
    assert chosen.layer is not None
    entry = {
        "chosen": {"position": chosen.position, "layer": chosen.layer},
        "explanation": sel.explanation,
        "baseline": sel.baseline,
        "candidates": [c.as_dict() for c in sel.candidates],
    }
    return chosen, entry


def _causal_tests(
    lm: LoadedModel,
    chosen: Direction,
    harm: Direction,
    split: _Split,
    train_h: Sequence[Sample],
    train_b: Sequence[Sample],
    gen: dict[str, list[str]],
    cfg: StudyConfig,
    progress: bool | None,
) -> dict[str, Any]:
    """Step 6: ablation, addition and reply inversion on the evaluation part (disjoint from selection)."""
    bs = cfg.batch_size
    layer = chosen.layer
    assert layer is not None
    r_vec = chosen.at(layer)
    h_unit = harm.unit(layer) * r_vec.norm()  # same magnitude as the refusal vector at this layer
    conditions: dict[str, Callable[[], AbstractContextManager[None]]] = {
        "none": nullcontext,
        "ablate_refusal": lambda: ablate_direction(lm, r_vec),
        "add_refusal": lambda: add_vector(lm, r_vec, layer),
        "add_harmfulness": lambda: add_vector(lm, h_unit, layer),
    }
    eval_h, eval_b = _prompts(split.eval_h), _prompts(split.eval_b)
    causal: dict[str, Any] = {"layer": layer, "steering_norm": float(r_vec.norm())}
    with conditions["ablate_refusal"]():
        abl = generate(lm, eval_h, max_new_tokens=cfg.max_new_tokens, batch_size=bs, progress=progress, desc="ablated")
    causal["ablation_harmful"] = {"before": rate(_refusals(gen["harmful"])), "after": rate(_refusals(abl))}
    inversion: dict[str, Any] = {}
    for cond in ("none", "add_refusal", "add_harmfulness"):
        with conditions[cond]():
            judged = judged_harmful(lm, eval_b, bs)
            texts = (
                gen["harmless"]
                if cond == "none"
                else generate(
                    lm, eval_b, max_new_tokens=cfg.max_new_tokens, batch_size=bs, progress=progress, desc=cond
                )
            )
        inversion[cond] = {"judged_harmful": rate(judged), "refusal": rate(_refusals(texts))}
    causal["addition_harmless"] = {"before": inversion["none"]["refusal"], "after": inversion["add_refusal"]["refusal"]}
    causal["reply_inversion_harmless"] = inversion
    for cond in ("none", "ablate_refusal"):
        with conditions[cond]():
            causal.setdefault("judgement_harmful", {})[cond] = rate(judged_harmful(lm, eval_h, bs))
    if layer < lm.n_layers - 1:  # the judgement read as a projection needs a layer after the steering one
        causal["reply_inversion_projection"] = projection_inversion(
            lm,
            refusal=r_vec,
            harmfulness=harm.unit(layer),
            layer=layer,
            train_harmful=_prompts(train_h),
            train_harmless=_prompts(train_b),
            eval_harmful=eval_h,
            eval_harmless=eval_b,
            batch_size=bs,
            seed=cfg.seed,
        )
    return causal


def _write_results(out: Path, res: dict[str, Any], split: _Split, gen: dict[str, list[str]]) -> None:
    """``results.json``, ``answers.jsonl`` (the evaluation answers) and the figures."""
    (out / "results.json").write_text(json.dumps(res, indent=2, default=float))
    (out / "answers.jsonl").write_text(
        "\n".join(
            json.dumps({"set": name, "id": s.id, "prompt": s.prompt, "answer": a})
            for name, samples in split.eval_sets()
            for s, a in zip(samples, gen[name], strict=True)
        )
        + "\n"
    )
    from layerguard.lab.figures import write_figures

    write_figures(res, out)


def load_tokens(results: dict[str, Any]) -> RefusalTokens:
    """The refusal tokens recorded in a study's results."""
    rt = results["refusal_tokens"]
    return RefusalTokens(tuple(rt["ids"]), tuple(rt["tokens"]), {})
