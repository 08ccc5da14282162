"""Refusal tokens: a LoRA fine-tune that makes the model open every answer with a category tag.

After training, a reply begins with ``[refuse:<category>]`` (one tag per hazard category of the
training set) or ``[respond]``. At inference the probability of each tag at the first generated
position is compared with a per-category threshold (see
:mod:`layerguard.train.refusal_tokens_eval`), so refusal rates are tuned without retraining.

Design choice: each tag is a **new single special token**. Spelled with existing sub-tokens every
tag would begin with the same ``[`` piece, so the first step's distribution could not tell the
categories apart. The new rows of the (tied) embedding / output matrix are trained with peft's
``trainable_token_indices``, which stores only those rows, next to LoRA adapters on the
attention projections. Loss is on the answer tag and a short continuation: a canned refusal after a refusal tag, and
the base model's own first answer tokens after ``[respond]`` (so the tag, not the LoRA, decides
whether refusal text follows); the prompt is never in the loss.

The user's model is never modified: training and loading work on a deep copy.
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from layerguard.data.samples import Sample
from layerguard.errors import InvalidInputError
from layerguard.models.handle import LoadedModel
from layerguard.progress import progress_bar
from layerguard.version import __version__

FORMAT = "layerguard.refusal_tokens/1"
META_FILE = "refusal_tokens.json"
RESPOND = "[respond]"
CANNED_REFUSAL = " I can't help with that request."
TOKEN_LR_MULT = 10.0
TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj")
_NO_CATEGORY = {"", "uncategorized", "unknown"}


def refuse_tag(category: str) -> str:
    """The tag that opens a refusal of ``category``."""
    return f"[refuse:{category}]"


@dataclass(frozen=True)
class TrainExample:
    """One training item: a prompt and the tag its answer must begin with."""

    prompt: Sample
    tag: str


@dataclass
class TrainResult:
    """What :func:`train_refusal_tokens` returns; ``model`` is the peft-wrapped copy."""

    model: Any
    tokenizer: Any
    meta: dict[str, Any]
    losses: list[float] = field(default_factory=list)

    @property
    def tag_ids(self) -> dict[str, int]:
        return dict(self.meta["tag_token_ids"])


def build_examples(harmful: Sequence[Sample], benign: Sequence[Sample]) -> tuple[list[TrainExample], list[str]]:
    """Label harmful prompts with their category's refusal tag and benign ones with ``[respond]``.

    Returns:
        The examples and the sorted category names.

    Raises:
        InvalidInputError: empty sides, or a harmful prompt with no hazard category.
    """
    if not harmful or not benign:
        side = "harmful" if not harmful else "benign"
        raise InvalidInputError(
            f"the {side} training set is empty", hint="give harmful prompts with categories and benign prompts"
        )
    missing = [s.id for s in harmful if s.category.strip() in _NO_CATEGORY]
    if missing:
        raise InvalidInputError(
            f"{len(missing)} harmful prompt(s) have no hazard category (e.g. {', '.join(missing[:3])})",
            hint="refusal tokens need one tag per category: give a 'category' field (e.g. builtin:harmful:train)",
        )
    bad = sorted({s.category for s in harmful if any(ch in s.category for ch in "[] \n")})
    if bad:
        raise InvalidInputError(
            f"categories {bad[:3]} contain spaces or brackets", hint="use names like S1_violent_crimes"
        )
    cats = sorted({s.category for s in harmful})
    ex = [TrainExample(s, refuse_tag(s.category)) for s in harmful] + [TrainExample(s, RESPOND) for s in benign]
    return ex, cats


def data_hash(examples: Sequence[TrainExample]) -> str:
    """sha256 over (prompt conversation, tag) pairs, in order."""
    h = hashlib.sha256()
    for e in examples:
        h.update(json.dumps([e.prompt.conversation(), e.tag], sort_keys=True).encode())
    return h.hexdigest()


def add_tag_tokens(model: Any, tokenizer: Any, tags: Sequence[str]) -> dict[str, int]:
    """Add the tags as special tokens, grow the embeddings and initialise each new row.

    A new row starts as the mean embedding of the tag's sub-token spelling, so ``[refuse:...]``
    begins near the meaning of its words rather than at random. Mutates ``model`` and ``tokenizer``
    (callers pass copies).
    """
    import torch

    pieces = {t: tokenizer(t, add_special_tokens=False)["input_ids"] for t in tags}
    tokenizer.add_tokens(list(tags), special_tokens=True)
    model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    ids = {t: int(tokenizer.convert_tokens_to_ids(t)) for t in tags}
    emb = model.get_input_embeddings().weight
    with torch.no_grad():
        for t, tid in ids.items():
            emb[tid] = emb[torch.tensor(pieces[t])].mean(0)
    out = model.get_output_embeddings()
    if out is not None and out.weight.data_ptr() != emb.data_ptr():  # untied head: copy the same init
        with torch.no_grad():
            for tid in ids.values():
                out.weight[tid] = emb[tid]
    return ids


def _encode(
    lm: LoadedModel, tokenizer: Any, ex: TrainExample, tag_id: int, answer: str | None
) -> tuple[list[int], list[int]]:
    prompt = lm.encode(ex.prompt.conversation(), find_instruction=False).input_ids
    target = [tag_id]
    if answer:
        target += tokenizer(answer, add_special_tokens=False)["input_ids"]
    elif ex.tag != RESPOND:
        eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
        target += tokenizer(CANNED_REFUSAL, add_special_tokens=False)["input_ids"]
        if isinstance(eos, int) and eos != tokenizer.unk_token_id:
            target.append(eos)
    ids = list(prompt) + target
    labels = [-100] * len(prompt) + target
    return ids, labels


def _batch(rows: list[tuple[list[int], list[int]]], pad: int) -> tuple[Any, Any, Any]:
    import torch

    width = max(len(r[0]) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (x, y) in enumerate(rows):  # right padding: positions stay 0..n-1 without position ids
        ids[i, : len(x)] = torch.tensor(x)
        labels[i, : len(y)] = torch.tensor(y)
        mask[i, : len(x)] = 1
    return ids, mask, labels


def _losses(logits: Any, labels: Any) -> tuple[Any, Any]:
    """(tag loss, continuation loss): cross-entropy of the first answer token, and of the rest."""
    import torch
    import torch.nn.functional as F

    shift_logits, shift_labels = logits[:, :-1].float(), labels[:, 1:]
    valid = shift_labels != -100
    first = valid & (valid.cumsum(1) == 1)  # the first labelled position of each row: the tag
    tag_loss = F.cross_entropy(shift_logits[first], shift_labels[first])
    rest = valid & ~first
    cont = F.cross_entropy(shift_logits[rest], shift_labels[rest]) if rest.any() else torch.zeros(())
    return tag_loss, cont


def train_refusal_tokens(
    lm: LoadedModel,
    harmful: Sequence[Sample],
    benign: Sequence[Sample],
    *,
    steps: int = 240,
    batch_size: int = 8,
    rank: int = 8,
    lr: float = 2e-3,
    seed: int = 0,
    answer_tokens: int = 12,
    data_specs: Sequence[str] = (),
    progress: bool | None = None,
    log: Callable[[str], None] | None = None,
) -> TrainResult:
    """LoRA-train a copy of ``lm`` to open each answer with a refusal-category tag or ``[respond]``.

    Args:
        lm: The base model (left untouched; a deep copy is trained).
        harmful: Prompts to refuse; each needs a hazard ``category`` (one tag per category).
        benign: Prompts to answer (harmless and borderline).
        steps: Optimizer steps (batches drawn by cycling through seeded shuffles of the data).
        batch_size: Examples per step.
        rank: LoRA rank on the attention projections.
        lr: AdamW learning rate (LoRA weights and the new token rows).
        seed: Seeds shuffling and initialisation; recorded.
        answer_tokens: After ``[respond]`` the target is the base model's own greedy answer, cut to
            this many tokens (0: the tag alone). Without it the canned refusal, the only text ever
            trained on, leaks after ``[respond]`` too.
        data_specs: Names of the datasets, recorded in the metadata.
        progress: Draw a progress bar (None: decide from the environment).
        log: Optional sink for one-line messages.

    Raises:
        InvalidInputError: bad hyper-parameters or data (see :func:`build_examples`).
    """
    import peft
    import torch

    if steps < 1 or batch_size < 1 or rank < 1 or not lr > 0:
        raise InvalidInputError(
            f"steps={steps}, batch_size={batch_size}, rank={rank}, lr={lr}: all must be positive",
            hint="e.g. --steps 240 --rank 8 --lr 2e-3",
        )
    from layerguard.data.loaders import assert_not_held_out

    assert_not_held_out([*harmful, *benign], "refusal-token training")
    examples, cats = build_examples(harmful, benign)
    tags = [RESPOND, *(refuse_tag(c) for c in cats)]
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    rng = random.Random(seed)
    model, tokenizer = copy.deepcopy(lm.model), copy.deepcopy(lm.tokenizer)
    base_vocab = int(model.get_input_embeddings().weight.shape[0])
    tag_ids = add_tag_tokens(model, tokenizer, tags)
    cfg = peft.LoraConfig(
        r=rank,
        lora_alpha=2 * rank,
        lora_dropout=0.0,
        target_modules=list(TARGET_MODULES),
        trainable_token_indices=sorted(tag_ids.values()),
        task_type="CAUSAL_LM",
    )
    answers = _base_answers(lm, examples, answer_tokens, progress)
    pmodel = peft.get_peft_model(model, cfg)
    pmodel.train()
    encoded = [_encode(lm, tokenizer, e, tag_ids[e.tag], answers.get(i)) for i, e in enumerate(examples)]
    losses = _train_loop(
        pmodel, tokenizer, encoded, steps=steps, batch_size=batch_size, lr=lr, rng=rng, progress=progress
    )
    pmodel.eval()
    duration = time.perf_counter() - t0
    meta = _metadata(
        lm,
        examples,
        losses,
        tags=tags,
        cats=cats,
        tag_ids=tag_ids,
        base_vocab=base_vocab,
        answer_tokens=answer_tokens,
        data_specs=data_specs,
        n=(len(harmful), len(benign)),
        hyper={"seed": seed, "steps": steps, "batch_size": batch_size, "rank": rank, "lr": lr},
        duration=duration,
    )
    if log:
        log(f"trained {steps} steps in {duration:.1f} s; tag loss {meta['tag_loss_first']:.3f} -> {losses[-1]:.3f}")
    return TrainResult(pmodel, tokenizer, meta, losses)


def _metadata(
    lm: LoadedModel,
    examples: Sequence[Any],
    losses: list[float],
    *,
    tags: list[str],
    cats: list[str],
    tag_ids: dict[str, int],
    base_vocab: int,
    answer_tokens: int,
    data_specs: Sequence[str],
    n: tuple[int, int],
    hyper: dict[str, Any],
    duration: float,
) -> dict[str, Any]:
    """What ``refusal_tokens.json`` records about a training run."""
    import peft
    import torch

    steps, rank, lr = int(hyper["steps"]), int(hyper["rank"]), float(hyper["lr"])
    k = max(1, min(10, steps // 4))
    return {
        "format": FORMAT,
        "model": lm.name,
        "model_id": lm.model_id,
        "weights_sha256": lm.weights_sha256,
        "template_sha256": lm.template_hash,
        "base_vocab_size": base_vocab,
        "tags": tags,
        "categories": cats,
        "tag_token_ids": tag_ids,
        "token_choice": "new special tokens (trainable_token_indices)",
        "canned_refusal": CANNED_REFUSAL,
        "respond_continuation": f"the base model's own greedy answer, first {answer_tokens} tokens",
        "answer_tokens": answer_tokens,
        "data_specs": list(data_specs),
        "data_sha256": data_hash(examples),
        "n_harmful": n[0],
        "n_benign": n[1],
        "seed": hyper["seed"],
        "steps": steps,
        "batch_size": hyper["batch_size"],
        "rank": rank,
        "lora_alpha": 2 * rank,
        "target_modules": list(TARGET_MODULES),
        "lr": lr,
        "token_lr": lr * TOKEN_LR_MULT,
        "tag_loss_first": sum(losses[:k]) / k,
        "tag_loss_last": sum(losses[-k:]) / k,
        "duration_seconds": round(duration, 2),
        "layerguard_version": __version__,
        "peft_version": peft.__version__,
        "torch_version": torch.__version__,
    }


def _base_answers(
    lm: LoadedModel, examples: Sequence[Any], answer_tokens: int, progress: bool | None
) -> dict[int, str]:
    """The base model's greedy answers to the ``[respond]`` examples, cut to ``answer_tokens`` (index -> text)."""
    if answer_tokens <= 0:
        return {}
    from layerguard.models.generate import generate

    benign_idx = [i for i, e in enumerate(examples) if e.tag == RESPOND]
    texts = generate(
        lm,
        [examples[i].prompt.conversation() for i in benign_idx],
        max_new_tokens=answer_tokens,
        progress=progress,
        desc="base answers",
    )
    return dict(zip(benign_idx, texts, strict=True))


def _train_loop(
    pmodel: Any,
    tokenizer: Any,
    encoded: list[Any],
    *,
    steps: int,
    batch_size: int,
    lr: float,
    rng: random.Random,
    progress: bool | None,
) -> list[float]:
    """AdamW over the LoRA weights and tag rows; returns the tag loss of every step."""
    import torch

    named = [(n, p) for n, p in pmodel.named_parameters() if p.requires_grad]
    params = [p for _, p in named]
    # The tag rows act as a linear read-out of the last hidden state and start far below the
    # vocabulary's logits; a larger step size lets them catch up within a few steps.
    groups = [
        {"params": [p for n, p in named if "trainable_tokens" not in n], "lr": lr},
        {"params": [p for n, p in named if "trainable_tokens" in n], "lr": lr * TOKEN_LR_MULT},
    ]
    opt = torch.optim.AdamW(groups, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 10) * max(0.05, 1 - s / steps))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    order: list[int] = []
    losses: list[float] = []
    with progress_bar(total=steps, desc="refusal tokens", unit="step", enabled=progress) as bar:
        for _ in range(steps):
            if len(order) < batch_size:
                fresh = list(range(len(encoded)))
                rng.shuffle(fresh)
                order += fresh
            rows, order = [encoded[i] for i in order[:batch_size]], order[batch_size:]
            ids, mask, labels = _batch(rows, pad)
            logits = pmodel(input_ids=ids, attention_mask=mask).logits  # [batch, pos, vocab]
            tag_loss, cont_loss = _losses(logits, labels)
            loss = tag_loss + 0.5 * cont_loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            losses.append(float(tag_loss.detach()))
            bar.update(1)
            bar.set_postfix(tag_loss=f"{losses[-1]:.3f}")
    return losses


def save_adapter(result: TrainResult, out: str | Path) -> Path:
    """Write the peft adapter (LoRA weights + the tag rows) and ``refusal_tokens.json`` into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    # save_embedding_layers=False: only the new tag rows are stored (trainable tokens), not 49k rows.
    result.model.save_pretrained(str(out), save_embedding_layers=False)
    (out / META_FILE).write_text(json.dumps(result.meta, indent=2) + "\n", encoding="utf-8")
    return out


def read_meta(adapter_dir: str | Path) -> dict[str, Any]:
    """The metadata of a saved adapter directory.

    Raises:
        InvalidInputError: the directory or its metadata is missing or not a refusal-token adapter.
    """
    path = Path(adapter_dir) / META_FILE
    if not path.is_file():
        raise InvalidInputError(
            f"{adapter_dir} is not a refusal-token adapter (no {META_FILE})",
            hint="create one with `layerguard train refusal-tokens --out DIR`",
        )
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{path} is not valid JSON: {exc}", hint="re-run the training command") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise InvalidInputError(f"{path} has an unknown format", hint=f"expected format {FORMAT!r}")
    return meta


def load_adapter(adapter_dir: str | Path, lm: LoadedModel | None = None) -> TrainResult:
    """Load a saved adapter onto a copy of its base model.

    Args:
        adapter_dir: A directory written by :func:`save_adapter`.
        lm: The base model; loaded from the metadata's name when omitted. Its weights hash
            must match the one the adapter was trained on.

    Raises:
        InvalidInputError: not an adapter directory, or an adapter trained on another model.
    """
    import peft

    meta = read_meta(adapter_dir)
    if lm is None:
        from layerguard.models import load_model

        lm = load_model(meta["model"])
    if lm.weights_sha256 != meta["weights_sha256"]:
        raise InvalidInputError(
            f"adapter {adapter_dir} was trained on {meta['model_id']}, not on {lm.model_id}",
            hint=f"use --model {meta['model']} (the same weights), or train a new adapter for {lm.name}",
        )
    model, tokenizer = copy.deepcopy(lm.model), copy.deepcopy(lm.tokenizer)
    ids = add_tag_tokens(model, tokenizer, meta["tags"])
    if ids != {k: int(v) for k, v in meta["tag_token_ids"].items()}:
        raise InvalidInputError(
            f"the tag token ids of {adapter_dir} do not match this tokenizer", hint="retrain the adapter"
        )
    pmodel = peft.PeftModel.from_pretrained(model, str(adapter_dir))
    pmodel.eval()
    return TrainResult(pmodel, tokenizer, meta)
