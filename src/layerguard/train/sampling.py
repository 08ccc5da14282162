"""Sampling ``n`` completions per prompt: the candidates that best-of-n selection chooses among.

``models.generate`` is greedy only; :func:`sample_completions` draws temperature / nucleus
samples, seeded per batch so a run is reproducible, and returns them as :class:`Candidate`
values (text, sampled token ids, whether end-of-sequence was reached).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from layerguard.errors import InvalidInputError
from layerguard.models.handle import LoadedModel
from layerguard.models.templates import ConversationLike
from layerguard.progress import progress_bar


@dataclass(frozen=True)
class Candidate:
    """One sampled completion.

    Attributes:
        text: Decoded without special tokens.
        token_ids: The sampled tokens (up to and excluding end-of-sequence and padding).
        finished: Ended with end-of-sequence before ``max_new_tokens``.
        recorded_tokens: The token count when the ids are unknown (a run reloaded from a file
            that did not record them); otherwise None.
    """

    text: str
    token_ids: tuple[int, ...]
    finished: bool
    recorded_tokens: int | None = None

    @property
    def n_tokens(self) -> int:
        """Number of sampled tokens."""
        return len(self.token_ids) if self.recorded_tokens is None else self.recorded_tokens


def sample_completions(
    lm: LoadedModel,
    conversations: Sequence[ConversationLike],
    *,
    n: int,
    max_new_tokens: int = 48,
    temperature: float = 0.8,
    top_p: float = 0.95,
    seed: int = 0,
    batch_size: int = 8,
    system: str | None = None,
    progress: bool | None = False,
) -> list[list[Candidate]]:
    """``n`` sampled completions per conversation (``models.generate`` is greedy only).

    Sequences per forward pass are about ``batch_size`` (``batch_size // n`` prompts, at
    least one). Each batch reseeds torch's generator with ``seed`` and the batch's index,
    so a run is reproducible for the same prompts, order, ``n`` and ``batch_size``.

    Raises:
        InvalidInputError: ``n < 1``, a non-positive temperature, or ``top_p`` outside (0, 1].
    """
    import torch

    from layerguard.models.generate import encode_many, left_pad

    if n < 1:
        raise InvalidInputError(f"n must be >= 1, got {n}")
    if not temperature > 0:
        raise InvalidInputError(f"temperature must be > 0 for sampling, got {temperature}", hint="greedy: generate()")
    if not 0 < top_p <= 1:
        raise InvalidInputError(f"top_p must be in (0, 1], got {top_p}")
    encoded = encode_many(lm, conversations, system)
    out: list[list[Candidate]] = [[] for _ in encoded]
    order = sorted(range(len(encoded)), key=lambda i: -encoded[i].n_tokens)  # similar lengths pad less
    per_call = max(1, batch_size // n)
    pad = lm.tokenizer.pad_token_id
    eos = lm.model.generation_config.eos_token_id or lm.tokenizer.eos_token_id
    eos_ids = set(eos if isinstance(eos, list) else [eos])
    with progress_bar(total=len(order), desc="sampling", unit="prompt", enabled=progress) as bar:
        for b, start in enumerate(range(0, len(order), per_call)):
            rows = order[start : start + per_call]
            ids, mask, _ = left_pad([encoded[r] for r in rows], pad)
            torch.manual_seed(seed * 1_000_003 + b)
            with torch.inference_mode():
                seqs = lm.model.generate(
                    input_ids=ids,
                    attention_mask=mask,
                    max_new_tokens=max_new_tokens,
                    do_sample=True,
                    temperature=temperature,
                    top_p=top_p,
                    top_k=0,  # no top-k cut: nucleus sampling only
                    repetition_penalty=1.0,
                    num_return_sequences=n,
                    pad_token_id=pad,
                    eos_token_id=eos,
                )
            new = seqs[:, ids.shape[1] :].tolist()
            for j, tokens in enumerate(new):
                row = rows[j // n]  # generate() repeats each prompt n times in a row
                cut = next((k for k, t in enumerate(tokens) if t in eos_ids), None)
                kept = tokens if cut is None else tokens[:cut]
                text = lm.tokenizer.decode(kept, skip_special_tokens=True).strip()
                out[row].append(Candidate(text, tuple(kept), cut is not None))
            bar.update(len(rows))
    return out
