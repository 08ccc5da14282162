"""The local backend: the guarded model runs in-process and shares its forward pass.

``prepare`` runs the prefill once, with hooks that keep the prompt states the latent rings
read (``t_inst`` and the other prompt read positions of :mod:`layerguard.guard.states`);
``stream`` continues from the same key/value cache, so the guard adds no forward pass of
its own. During decoding an optional output monitor reads each new token's hidden state and
can halt generation.

The work is split into batched steps so that a scheduler (the service's) can serve many
requests at once: :meth:`LocalBackend.prefill_batch` runs one right-padded forward pass over
several prompts (each row keeps its own reads, last logits and KV cache), and
:meth:`LocalBackend.decode_step` advances several answers by one token in one forward pass
(their caches left-padded into one batch). Alone, ``prepare`` and ``stream`` are batches of
one; with a runner attached (:meth:`LocalBackend.attach`), they hand their work to it.
A request whose :class:`GenerationParams` carries ``ablate`` (a direction projected out of
the residual stream) is never batched with others: it is prefilled and decoded alone inside
:func:`~layerguard.activations.interventions.ablate_direction`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from layerguard.activations.hooks import HookPoint, StopForward, parse_read, read_name, residual_hooks
from layerguard.guard.backend import Chunk, FinishReason, GenerationParams, StreamMonitor
from layerguard.guard.states import (
    after_opening,
    encode_for_reads,
    opening_cache,
    opens_with,
    read_prompt_state,
    split_reads,
    template_opening,
)
from layerguard.guard.types import Exchange
from layerguard.models.generate import cache_kwarg
from layerguard.models.positions import PromptPositions


def chat_messages(exchange: Exchange) -> list[dict[str, str]]:
    """The exchange as chat dicts for the model's template.

    An assistant turn's tool calls are written as the Qwen-format ``<tool_call>`` text the
    service parses (templates given only role and content would drop them); an empty tool
    result is kept (it is a turn of the conversation).
    """
    import json

    out = []
    for m in exchange.messages:
        content = m.content or ""
        calls = getattr(m, "tool_calls", None) or []
        for c in calls if m.role == "assistant" and isinstance(calls, list) else []:
            fn = c.get("function", {}) if isinstance(c, dict) else {}
            call = {"name": fn.get("name", ""), "arguments": fn.get("arguments", {})}
            content += (
                ("\n" if content else "") + "<tool_call>\n" + json.dumps(call, ensure_ascii=False) + "\n</tool_call>"
            )
        out.append({"role": m.role, "content": content})
    return out


def ablation_of(params: GenerationParams | None) -> Any:
    """The direction a request asks to project out (``GenerationParams.ablate``), if any."""
    return getattr(params, "ablate", None) if params is not None else None


@dataclass
class Decoding:
    """One answer being decoded: what :meth:`LocalBackend.decode_step` advances by one token."""

    params: GenerationParams
    cache: Any  # this row's own KV cache (DynamicCache), real tokens only
    logits: Any  # [vocab] logits of the last token fed in
    n_prompt: int
    gen: Any  # torch.Generator
    mon_state: Any = None
    out_ids: list[int] = field(default_factory=list)
    emitted: str = ""
    finish: FinishReason | None = None
    halted: str | None = None
    score: float | None = None
    done: bool = False

    @property
    def ablate(self) -> Any:
        return ablation_of(self.params)

    def usage(self) -> dict[str, int]:
        n = len(self.out_ids)
        return {"prompt_tokens": self.n_prompt, "completion_tokens": n, "total_tokens": self.n_prompt + n}


class LocalBackend:
    """Serve a LoadedModel with the guard reading its own activations.

    Args:
        lm: The model.
        reads: Read names (``blocks.{l}.resid_pre@t_inst`` and the other prompt positions)
            whose states the prefill keeps in ``exchange.activations``; ``@response`` reads
            are served by the monitor.
        monitor: Optional stream monitor (see :class:`~layerguard.guard.backend.StreamMonitor`)
            that reads each new token's state and can halt generation.
    """

    text_only = False

    def __init__(self, lm: Any, reads: Sequence[str] = (), monitor: StreamMonitor | None = None) -> None:
        self.lm = lm
        self.prompt_reads, _ = split_reads([r for r in reads if parse_read(r)[0].point == "resid_pre"])
        self.layers = sorted(self.prompt_reads)
        self.monitor = monitor
        self.model_name = lm.name
        # a scheduler that batches this backend's work (see attach); None: run in the caller's thread
        self.runner: Any = None
        self._opening: tuple[list[int], Any] | None = None  # the template opening and its cache, made once
        # check-only prefills run after the template's cached opening (off: over the whole prompt)
        self.use_opening_cache = True

    def info(self) -> dict[str, Any]:
        """Model identity and what the guard can read."""
        return {
            "model": self.lm.model_id,
            "backend": "local",
            "layers": self.layers,
            "output_monitor": self.monitor is not None,
            "context_length": self.context_length,
        }

    @property
    def context_length(self) -> int:
        """Positions the model can attend over (prompt plus answer)."""
        n = getattr(self.lm.model.config, "max_position_embeddings", None)
        return int(n) if n else 2048

    def attach(self, runner: Any) -> None:
        """Hand ``prepare`` and ``stream`` to a runner with ``prepare(exchange)`` and ``stream(exchange, params)``."""
        self.runner = runner

    def encode(self, exchange: Exchange) -> PromptPositions:
        """The prompt's tokens (after the chat template) and its read positions."""
        return encode_for_reads(self.lm, chat_messages(exchange))

    def count_tokens(self, exchange: Exchange) -> int:
        """Prompt tokens of an exchange after the chat template."""
        return self.encode(exchange).n_tokens

    # ------------------------------------------------------------------ one request

    def prepare(self, exchange: Exchange) -> None:
        """Prefill: one forward pass over the prompt, keeping the prompt reads and the KV cache."""
        if self.runner is not None:
            self.runner.prepare(exchange)
            return
        self.prefill_batch([exchange])

    def stream(self, exchange: Exchange, params: GenerationParams) -> Iterator[Chunk]:
        """Decode from the prefill; stop at EOS, a stop string, max_tokens or a monitor halt."""
        if self.runner is not None:
            yield from self.runner.stream(exchange, params)
            return
        state = self.start_decode(exchange, params)
        while True:
            chunks = self.decode_step([state])[0]
            yield from chunks
            if state.done:
                return

    # ------------------------------------------------------------------ batched prefill

    def prefill_batch(
        self,
        exchanges: Sequence[Exchange],
        encoded: Sequence[PromptPositions | None] | None = None,
        *,
        keep_cache: Sequence[bool] | None = None,
        ablate: Any = None,
    ) -> None:
        """One right-padded forward pass over several prompts; each row keeps its own results.

        Each exchange gets its prompt reads in ``activations`` and, where ``keep_cache``, its KV
        cache and last logits in ``prefill``. When no row keeps its cache, the pass stops after
        the deepest layer read (a guard check needs nothing more).

        Args:
            exchanges: The requests.
            encoded: Their encodings from :meth:`encode`, where already known.
            keep_cache: Per row, whether generation follows (default: yes).
            ablate: A direction projected out of the residual stream during the pass.
        """
        import torch

        if not exchanges:
            return
        encs = [
            e if e is not None else self.encode(x)
            for x, e in zip(exchanges, encoded or [None] * len(exchanges), strict=True)
        ]
        keep = list(keep_cache) if keep_cache is not None else [True] * len(exchanges)
        points = [HookPoint(layer, "resid_pre") for layer in self.layers]
        full = any(keep) or not points
        # a check-only batch runs after the template's cached opening (system prompt, user header)
        use = self.use_opening_cache and not full and ablate is None
        opening, kv = self.opening() if use else ([], None)
        skip = len(opening) if opening and all(opens_with(p, opening) for p in encs) else 0
        lengths = [len(p.input_ids) for p in encs]
        width = max(lengths) - skip
        pad = self.lm.tokenizer.pad_token_id if self.lm.tokenizer.pad_token_id is not None else 0
        ids = torch.full((len(encs), width), pad, dtype=torch.long)
        mask = torch.zeros((len(encs), width), dtype=torch.long)
        for j, p in enumerate(encs):  # right padding: no real token attends to a pad, positions unchanged
            ids[j, : lengths[j] - skip] = torch.tensor(p.input_ids[skip:])
            mask[j, : lengths[j] - skip] = 1
        kwargs: dict[str, Any] = {"use_cache": full}
        if skip:
            mask, kwargs = after_opening(self.lm, kv, mask)
        states: list[dict[str, Any]] = [{} for _ in encs]

        def read(hp: HookPoint, hidden: Any) -> None:  # hidden: [batch, pos, d]
            for j, p in enumerate(encs):
                for position in self.prompt_reads[hp.layer]:
                    h = hidden[j, : lengths[j] - skip]
                    states[j][read_name(hp.layer, position)] = read_prompt_state(h, p, position, skip)

        last = sorted({n - 1 for n in lengths})
        t0 = time.perf_counter()
        out = None
        ablating = self._ablating(ablate)
        with torch.inference_mode(), ablating, residual_hooks(self.lm.layers, points, read, stop_after_last=not full):
            try:
                out = self.lm.model(
                    input_ids=ids,
                    attention_mask=mask,
                    logits_to_keep=torch.tensor(last) if full else 1,
                    **kwargs,
                )
            except StopForward:
                pass
        seconds = time.perf_counter() - t0
        cache = (out.cache if hasattr(out, "cache") else out.past_key_values) if out is not None else None
        for j, ex in enumerate(exchanges):
            ex.activations = {**(ex.activations or {}), **states[j]}
            if not keep[j] or out is None:
                continue
            ex.prefill = {
                "ids": encs[j].input_ids,
                "cache": _row_cache(cache, j, lengths[j], batch=len(encs)),
                "logits": out.logits[j, last.index(lengths[j] - 1)].float(),
                "seconds": seconds,
                "batch": len(encs),
                "ablate": ablate,
            }

    def opening(self) -> tuple[list[int], Any]:
        """The chat template's shared opening and its key/value cache (empty when too short to pay)."""
        if self._opening is None:
            tokens = template_opening(self.lm)
            self._opening = (tokens, opening_cache(self.lm, tokens) if tokens else None)
        return self._opening

    def _ablating(self, ablate: Any) -> Any:
        if ablate is None:
            return contextlib.nullcontext()
        from layerguard.activations.interventions import ablate_direction

        return ablate_direction(self.lm, ablate)

    # ------------------------------------------------------------------ batched decoding

    def start_decode(self, exchange: Exchange, params: GenerationParams) -> Decoding:
        """The decoding state of an answer, from the exchange's prefill (prefilled here if missing).

        A request that asks for an ablation is prefilled again under it unless its prefill
        already was.
        """
        import torch

        pre = exchange.prefill
        if pre is None or (ablation_of(params) is not None and pre.get("ablate") is not ablation_of(params)):
            exchange.prefill = None
            self.prefill_batch([exchange], ablate=ablation_of(params))
            pre = exchange.prefill
        exchange.prefill = None
        seed = params.seed if params.seed is not None else 0
        mon = self.monitor
        return Decoding(
            params=params,
            cache=pre["cache"],
            logits=pre["logits"],
            n_prompt=len(pre["ids"]),
            gen=torch.Generator().manual_seed(seed % (1 << 64)),
            mon_state=mon.start() if mon is not None else None,
        )

    def _eos_ids(self) -> set[int]:
        eos = self.lm.model.generation_config.eos_token_id
        return set(eos if isinstance(eos, list) else [eos]) | {self.lm.tokenizer.eos_token_id}

    def decode_step(self, rows: Sequence[Decoding]) -> list[list[Chunk]]:
        """Advance each unfinished answer by one token (one forward pass per ablation group).

        Returns, per row, the chunks that step produced (the last one of a finished row carries
        its finish reason, usage and any halt).
        """
        out: list[list[Chunk]] = [[] for _ in rows]
        eos_ids = self._eos_ids()
        fed: list[int] = []
        for i, r in enumerate(rows):
            if r.done:
                continue
            if len(r.out_ids) >= r.params.max_tokens:
                r.finish = r.finish or "length"
                out[i].extend(self._finish(r))
                continue
            tok = _next_token(r.logits, r.params, r.gen)
            if tok in eos_ids:
                r.finish = "stop"
                out[i].extend(self._finish(r))
                continue
            r.out_ids.append(tok)
            fed.append(i)
        plain = [i for i in fed if rows[i].ablate is None]
        groups = ([plain] if plain else []) + [[i] for i in fed if rows[i].ablate is not None]
        for group in groups:
            hidden = self._forward_rows([rows[i] for i in group])
            for k, i in enumerate(group):
                out[i].extend(self._after_token(rows[i], hidden[k] if hidden is not None else None))
        return out

    def _forward_rows(self, rows: Sequence[Decoding]) -> Any:
        """Feed each row's newest token in one forward pass; update caches and logits in place."""
        import torch

        mon = self.monitor
        captured: dict[str, Any] = {}
        points = [HookPoint(mon.layer, "resid_pre")] if mon is not None else []

        def read(hp: HookPoint, hidden: Any) -> None:
            captured["h"] = hidden[:, -1].detach().float()  # [batch, d]

        lens = [r.n_prompt + len(r.out_ids) - 1 for r in rows]  # cached tokens per row
        ids = torch.tensor([[r.out_ids[-1]] for r in rows])
        pos = torch.tensor([[n] for n in lens])
        if len(rows) == 1:
            cache, mask = rows[0].cache, None
        else:
            cache, mask = _merge_caches([r.cache for r in rows], lens)
        kwargs: dict[str, Any] = {cache_kwarg(self.lm.model): cache}
        if mask is not None:
            kwargs["attention_mask"] = mask
        with torch.inference_mode(), self._ablating(rows[0].ablate), residual_hooks(self.lm.layers, points, read):
            res = self.lm.model(input_ids=ids, use_cache=True, position_ids=pos, logits_to_keep=1, **kwargs)
        new = res.cache if hasattr(res, "cache") else res.past_key_values
        width = max(lens) + 1
        for j, r in enumerate(rows):
            r.cache = (
                new if len(rows) == 1 else _row_cache(new, j, lens[j] + 1, batch=len(rows), start=width - lens[j] - 1)
            )
            r.logits = res.logits[j, -1].float()
        return captured.get("h")

    def _after_token(self, r: Decoding, hidden: Any) -> list[Chunk]:
        """Text, stop strings and the monitor after a token was fed in."""
        text = self.lm.tokenizer.decode(r.out_ids, skip_special_tokens=True)
        stop_at = min((text.find(s) for s in r.params.stop if s and s in text), default=-1)
        if stop_at >= 0:
            text, r.finish = text[:stop_at], "stop"
        mon = self.monitor
        if mon is not None and hidden is not None:
            # the hidden state of the token just fed in: the monitor reads what the model wrote
            r.score = mon.update(r.mon_state, hidden)
            if r.score >= mon.threshold and len(r.out_ids) >= mon.min_tokens:
                r.finish, r.halted = "content_filter", "output_monitor"
                return self._finish(r)
        chunks: list[Chunk] = []
        if not text.endswith("\ufffd") and len(text) > len(r.emitted):  # wait for a whole character
            chunks.append(Chunk(text[len(r.emitted) :]))
            r.emitted = text
        if r.finish == "stop":
            chunks.extend(self._finish(r, flush=False))
        elif len(r.out_ids) >= r.params.max_tokens:
            r.finish = "length"
            chunks.extend(self._finish(r))
        return chunks

    def _finish(self, r: Decoding, flush: bool = True) -> list[Chunk]:
        """The last chunks of an answer (the rest of its text unless halted or cut at a stop string)."""
        r.done = True
        r.cache = None
        out = []
        if flush and r.halted is None and r.finish != "stop":
            final = self.lm.tokenizer.decode(r.out_ids, skip_special_tokens=True)
            if len(final) > len(r.emitted):
                out.append(Chunk(final[len(r.emitted) :]))
                r.emitted = final
        out.append(
            Chunk("", finish_reason=r.finish or "stop", halted_by=r.halted, monitor_score=r.score, usage=r.usage())
        )
        return out


def _next_token(logits: Any, params: GenerationParams, gen: Any) -> int:
    import torch

    if params.temperature <= 0:
        return int(logits.argmax())
    probs = torch.softmax(logits / params.temperature, -1)
    if params.top_p < 1.0:
        sorted_p, idx = probs.sort(descending=True)
        keep = sorted_p.cumsum(-1) - sorted_p < params.top_p
        probs = torch.zeros_like(probs).scatter(0, idx[keep], sorted_p[keep])
        probs = probs / probs.sum()
    return int(torch.multinomial(probs, 1, generator=gen))


def _layers_kv(cache: Any) -> list[tuple[Any, Any]]:
    """A DynamicCache's per-layer (keys, values), each ``[batch, heads, pos, head_dim]``."""
    return [(layer.keys, layer.values) for layer in cache.layers]


def _row_cache(cache: Any, row: int, length: int, *, batch: int, start: int = 0) -> Any:
    """One row's own cache (positions ``start .. start+length``) cut from a batched cache."""
    from transformers import DynamicCache

    if batch == 1 and start == 0:  # one unpadded row: the cache is already its own
        return cache
    kv = [(k[row : row + 1, :, start : start + length].clone(), v[row : row + 1, :, start : start + length].clone())
          for k, v in _layers_kv(cache)]  # fmt: skip
    return DynamicCache(ddp_cache_data=kv)


def _merge_caches(caches: Sequence[Any], lens: Sequence[int]) -> tuple[Any, Any]:
    """Several rows' caches left-padded into one batch, and the attention mask for the next token."""
    import torch
    from transformers import DynamicCache

    width = max(lens)
    mask = torch.zeros((len(caches), width + 1), dtype=torch.long)
    per_layer = [_layers_kv(c) for c in caches]
    merged = []
    for layer in range(len(per_layer[0])):
        ks, vs = [], []
        for j, kv in enumerate(per_layer):
            k, v = kv[layer]
            gap = width - lens[j]
            ks.append(torch.nn.functional.pad(k, (0, 0, gap, 0)) if gap else k)
            vs.append(torch.nn.functional.pad(v, (0, 0, gap, 0)) if gap else v)
        merged.append((torch.cat(ks), torch.cat(vs)))
    for j, n in enumerate(lens):
        mask[j, width - n :] = 1
    return DynamicCache(ddp_cache_data=merged), mask
