"""The local backend: the guarded model runs in-process and shares its forward pass.

``prepare`` runs the prefill once, with hooks that keep the residual stream at ``t_inst``
for the latent ring; ``stream`` continues from the same key/value cache, so the guard
adds no forward pass of its own. During decoding an optional output monitor reads each
new token's hidden state and can halt generation.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

from layerguard.activations.hooks import HookPoint, parse_read, read_name, residual_hooks
from layerguard.errors import InvalidInputError, TemplateError
from layerguard.guard.backend import Chunk, FinishReason, GenerationParams, StreamMonitor
from layerguard.guard.types import Exchange
from layerguard.models.generate import cache_kwarg


class LocalBackend:
    """Serve a LoadedModel with the guard reading its own activations.

    Args:
        lm: The model.
        reads: Read names (``blocks.{l}.resid_pre@t_inst``) whose states the prefill keeps
            in ``exchange.activations``; ``@response`` reads are served by the monitor.
        monitor: Optional stream monitor (see :class:`~layerguard.guard.backend.StreamMonitor`)
            that reads each new token's state and can halt generation.
    """

    text_only = False

    def __init__(self, lm: Any, reads: Sequence[str] = (), monitor: StreamMonitor | None = None) -> None:
        self.lm = lm
        parsed = [parse_read(r) for r in reads]
        self.layers = sorted({hp.layer for hp, pos in parsed if pos == "t_inst" and hp.point == "resid_pre"})
        self.monitor = monitor
        self.model_name = lm.name

    def info(self) -> dict[str, Any]:
        """Model identity and what the guard can read."""
        return {
            "model": self.lm.model_id,
            "backend": "local",
            "layers": self.layers,
            "output_monitor": self.monitor is not None,
        }

    def _encode(self, exchange: Exchange) -> tuple[list[int], int]:
        conv = [{"role": m.role, "content": m.content} for m in exchange.messages if m.role != "tool" or m.content]
        try:
            pp = self.lm.encode(conv)
            return pp.input_ids, pp.t_inst
        except (TemplateError, InvalidInputError):  # no instruction to find (e.g. an empty message)
            pp = self.lm.encode(conv, find_instruction=False)
            return pp.input_ids, pp.n_tokens - 1

    def prepare(self, exchange: Exchange) -> None:
        """Prefill: one forward pass over the prompt, keeping t_inst states and the KV cache."""
        import torch

        ids, t_inst = self._encode(exchange)
        states: dict[str, Any] = {}
        points = [HookPoint(layer, "resid_pre") for layer in self.layers]

        def read(hp: HookPoint, hidden: Any) -> None:
            states[read_name(hp.layer, "t_inst")] = hidden[0, t_inst].detach().float().clone()

        t0 = time.perf_counter()
        with torch.inference_mode(), residual_hooks(self.lm.layers, points, read):
            out = self.lm.model(input_ids=torch.tensor([ids]), use_cache=True, logits_to_keep=1)
        exchange.activations = {**(exchange.activations or {}), **states}
        cache = out.cache if hasattr(out, "cache") else out.past_key_values
        exchange.prefill = {
            "ids": ids,
            "cache": cache,
            "logits": out.logits[0, -1].float(),
            "seconds": time.perf_counter() - t0,
        }

    def _next_token(self, logits: Any, params: GenerationParams, gen: Any) -> int:
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

    def stream(self, exchange: Exchange, params: GenerationParams) -> Iterator[Chunk]:
        """Decode from the prefill; stop at EOS, a stop string, max_tokens or a monitor halt."""
        import torch

        if exchange.prefill is None:
            self.prepare(exchange)
        pre, exchange.prefill = exchange.prefill, None
        cache, logits, n_prompt = pre["cache"], pre["logits"], len(pre["ids"])
        eos = self.lm.model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos]) | {self.lm.tokenizer.eos_token_id}
        gen = torch.Generator().manual_seed(params.seed if params.seed is not None else 0)
        mon = self.monitor
        mon_state = mon.start() if mon is not None else None
        captured: dict[str, Any] = {}
        points = [HookPoint(mon.layer, "resid_pre")] if mon is not None else []

        def read(hp: HookPoint, hidden: Any) -> None:
            captured["h"] = hidden[0, -1].detach().float()

        out_ids: list[int] = []
        emitted = ""
        finish: FinishReason = "length"
        halted = None
        score = None
        with torch.inference_mode(), residual_hooks(self.lm.layers, points, read):
            for step in range(params.max_tokens):
                tok = self._next_token(logits, params, gen)
                if tok in eos_ids:
                    finish = "stop"
                    break
                out_ids.append(tok)
                pos = torch.tensor([[n_prompt + step]])
                res = self.lm.model(
                    input_ids=torch.tensor([[tok]]),
                    use_cache=True,
                    position_ids=pos,
                    logits_to_keep=1,
                    **{cache_kwarg(self.lm.model): cache},
                )
                cache = res.cache if hasattr(res, "cache") else res.past_key_values
                logits = res.logits[0, -1].float()
                text = self.lm.tokenizer.decode(out_ids, skip_special_tokens=True)
                stop_at = min((text.find(s) for s in params.stop if s and s in text), default=-1)
                if stop_at >= 0:
                    text, finish = text[:stop_at], "stop"
                if mon is not None and "h" in captured:
                    # the hidden state of the token just fed in: the monitor reads what the model wrote
                    score = mon.update(mon_state, captured["h"])
                    if score >= mon.threshold and step + 1 >= mon.min_tokens:
                        finish, halted = "content_filter", "output_monitor"
                        break
                if text.endswith("\ufffd"):  # an incomplete multi-byte character: wait for the next token
                    continue
                if len(text) > len(emitted):
                    yield Chunk(text[len(emitted) :])
                    emitted = text
                if finish == "stop":
                    break
        if halted is None:
            final = self.lm.tokenizer.decode(out_ids, skip_special_tokens=True)
            if finish != "stop" and len(final) > len(emitted):
                yield Chunk(final[len(emitted) :])
        yield Chunk(
            "",
            finish_reason=finish,
            halted_by=halted,
            monitor_score=score,
            usage={
                "prompt_tokens": n_prompt,
                "completion_tokens": len(out_ids),
                "total_tokens": n_prompt + len(out_ids),
            },
        )
