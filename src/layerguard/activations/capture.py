"""Batched capture of the residual stream at chosen layers x chosen positions.

Prompts are sorted by length, batched with left padding and explicit position ids, so a
batched capture equals one-by-one runs (to float32 rounding). Only the requested
positions are kept; the forward pass stops after the last requested layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from layerguard.activations.hooks import HookPoint, StopForward, hook_points, residual_hooks
from layerguard.activations.store import ActivationSet, ShardWriter
from layerguard.errors import InvalidInputError
from layerguard.models.architecture import find_base_model
from layerguard.models.generate import cache_kwarg, shared_prefix
from layerguard.models.generate import left_pad as pad_left
from layerguard.models.handle import LoadedModel
from layerguard.models.positions import PromptPositions, needs_template_parse, parse_position
from layerguard.models.templates import ConversationLike
from layerguard.progress import progress_bar
from layerguard.version import __version__

DEFAULT_POSITIONS = ("t_inst", "last")


def expand_positions(
    encoded: Sequence[PromptPositions], specs: Sequence[str | int]
) -> tuple[list[str], list[list[int]]]:
    """Resolve position specs for every prompt into labels and token indices.

    ``post_inst`` and ``inst`` expand to one column per token; all prompts must then have
    the same span length (true for one template), else an error asks for ``post_inst[k]``.
    """
    labels: list[str] = []
    columns: list[list[int]] = [[] for _ in encoded]
    for spec in specs:
        kind, k = parse_position(spec)
        per_prompt = [p.resolve(spec) for p in encoded]
        widths = {len(ix) for ix in per_prompt}
        if len(widths) != 1:
            raise InvalidInputError(
                f"position {spec!r} spans {sorted(widths)} tokens in different prompts",
                hint=f"capture single tokens instead, e.g. {kind}[0] or {kind}[-1]",
            )
        width = widths.pop()
        if width == 1:
            labels.append(str(spec))
        else:
            labels.extend(f"{kind}[{j}]" for j in range(width))
        for col, ix in zip(columns, per_prompt, strict=True):
            col.extend(ix)
    return labels, columns


def encode_all(
    lm: LoadedModel, conversations: Sequence[ConversationLike], positions: Sequence[str | int], system: str | None
) -> list[PromptPositions]:
    """Render and tokenize every conversation, parsing the template only when a spec needs it."""
    find = needs_template_parse(positions)
    return [lm.encode(c, system=system, find_instruction=find) for c in conversations]


def _batches(lengths: list[int], batch_size: int, max_tokens: int) -> list[list[int]]:
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        width = lengths[current[0]] if current else lengths[i]
        if current and (len(current) >= batch_size or width * (len(current) + 1) > max_tokens):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def left_pad(encoded: Sequence[PromptPositions], pad_id: int) -> tuple[Any, Any, Any, list[int]]:
    """Left-pad token ids; return ids, attention mask, position ids [batch, pos] and the pad offsets."""
    ids, mask, pos = pad_left(encoded, pad_id)
    width = ids.shape[1]
    return ids, mask, pos, [width - p.n_tokens for p in encoded]


def capture_activations(
    lm: LoadedModel,
    conversations: Sequence[ConversationLike],
    *,
    layers: Sequence[int] | None = None,
    points: Sequence[str] = ("resid_pre",),
    positions: Sequence[str | int] = DEFAULT_POSITIONS,
    system: str | None = None,
    batch_size: int = 8,
    max_tokens: int = 8192,
    prefix_cache: bool = True,
    out_dir: str | Path | None = None,
    shard_size: int = 512,
    progress: bool | None = None,
) -> ActivationSet | Path:
    """Capture residual-stream activations.

    Args:
        lm: The loaded model.
        conversations: Prompts or message lists, each ending with the user turn of interest.
        layers: Layer indices (negative from the end); None means all layers.
        points: ``resid_pre`` and/or ``resid_post``.
        positions: Position specs (see :meth:`PromptPositions.resolve`).
        system: Optional system prompt for every conversation.
        batch_size: Prompts per forward pass (capped by ``max_tokens`` of padded tokens).
        max_tokens: Cap on padded tokens per forward pass (bounds peak memory).
        out_dir: When given, stream shards of ``shard_size`` prompts to this directory and
            return its path; otherwise return an in-memory :class:`ActivationSet`.
        prefix_cache: Compute the template opening that all prompts share once and reuse
            its key/value cache (same results, fewer tokens); False left-pads whole prompts.
        shard_size: Prompts per shard on disk (and per encoding block in memory).
        progress: Show a progress bar (default: when stderr is a terminal).

    Returns:
        An :class:`ActivationSet` (``data[name]`` is ``[n_prompts, n_positions, d_model]``),
        or the output directory when ``out_dir`` is set.
    """
    import torch

    if len(conversations) == 0:
        raise InvalidInputError("no prompts to capture", hint="pass at least one prompt")
    if batch_size < 1 or shard_size < 1:
        raise InvalidInputError("batch_size and shard_size must be >= 1")
    n_layers = lm.n_layers
    hps = hook_points(list(range(n_layers)) if layers is None else list(layers), points, n_layers)
    if not hps:
        raise InvalidInputError("no layers selected", hint="pass at least one layer")
    meta = {
        "model_id": lm.model_id,
        "weights_sha256": lm.weights_sha256,
        "template_sha256": lm.template_hash,
        "layerguard_version": __version__,
        "system": system,
    }
    writer = ShardWriter(Path(out_dir), [], meta) if out_dir is not None else None

    chunks: dict[str, list[Any]] = {h.name: [] for h in hps}
    index_chunks: list[Any] = []
    labels: list[str] | None = None
    total = len(conversations)
    with progress_bar(total=total, desc="capturing", unit="prompt", enabled=progress) as bar:
        for start in range(0, total, shard_size):
            block = conversations[start : start + shard_size]
            encoded = encode_all(lm, block, positions, system)
            block_labels, columns = expand_positions(encoded, positions)
            if labels is None:
                labels = block_labels
                if writer is not None:
                    writer.positions = labels
            elif block_labels != labels:
                raise InvalidInputError("position labels differ between prompts", hint="use single-token positions")
            data, index = _capture_block(
                lm, encoded, columns, hps, batch_size, max_tokens, bar, min_prefix=8 if prefix_cache else 10**9
            )
            if writer is not None:
                writer.write(data, index)
            else:
                for name, t in data.items():
                    chunks[name].append(t)
                index_chunks.append(index)
    assert labels is not None
    if writer is not None:
        writer.close()
        return writer.directory
    return ActivationSet(
        {n: torch.cat(c) for n, c in chunks.items()}, labels, torch.cat(index_chunks), {**meta, "positions": labels}
    )


def common_prefix_len(encoded: Sequence[PromptPositions], columns: Sequence[Sequence[int]]) -> int:
    """Tokens shared by every prompt's start that no requested column falls in.

    At least one token of every prompt stays outside the prefix.
    """
    return max(0, min(shared_prefix(encoded, min_len=0), min(min(c) for c in columns)))


def prefix_kv_cache(lm: LoadedModel, prefix: list[int]) -> Any:
    """The key/value cache of one token prefix (a chat template's shared opening), computed once."""
    import torch

    base = find_base_model(lm.model)
    with torch.inference_mode():
        out = base(input_ids=torch.tensor([prefix]), use_cache=True)
    return out.cache if hasattr(out, "cache") else out.past_key_values


def _capture_block(
    lm: LoadedModel,
    encoded: list[PromptPositions],
    columns: list[list[int]],
    hps: list[HookPoint],
    batch_size: int,
    max_tokens: int,
    bar: Any,
    min_prefix: int = 8,
) -> tuple[dict[str, Any], Any]:
    import copy

    import torch

    n, n_pos, d = len(encoded), len(columns[0]), lm.d_model
    out = {h.name: torch.empty((n, n_pos, d), dtype=torch.float32) for h in hps}
    index = torch.tensor(columns, dtype=torch.long)  # [n, n_pos]
    pad_id = lm.tokenizer.pad_token_id
    # Chat templates give every prompt the same opening (system prompt, role header): it
    # is computed once and its key/value cache reused, and the rest is right-padded.
    n_prefix = common_prefix_len(encoded, columns)
    use_prefix = n_prefix >= min_prefix
    prefix_cache = prefix_kv_cache(lm, encoded[0].input_ids[:n_prefix]) if use_prefix else None
    cache_kw = cache_kwarg(lm.model)
    for rows in _batches([p.n_tokens for p in encoded], batch_size, max_tokens):
        batch = [encoded[r] for r in rows]
        kwargs: dict[str, Any] = {"use_cache": False}
        if use_prefix:
            ids, mask = right_pad([p.input_ids[n_prefix:] for p in batch], pad_id)
            mask = torch.cat([torch.ones((len(rows), n_prefix), dtype=torch.long), mask], dim=1)
            assert prefix_cache is not None
            cache = copy.deepcopy(prefix_cache)
            cache.batch_repeat_interleave(len(rows))
            kwargs = {cache_kw: cache, "use_cache": True}
            gather = index[rows] - n_prefix  # [batch, n_pos]
        else:
            ids, mask, pos, offsets = left_pad(batch, pad_id)
            kwargs["position_ids"] = pos
            gather = torch.stack([index[r] + off for r, off in zip(rows, offsets, strict=True)])
        row_t = torch.tensor(rows)

        def read(hp: HookPoint, hidden: Any, gather: Any = gather, row_t: Any = row_t) -> None:
            picked = hidden.gather(1, gather.unsqueeze(-1).expand(-1, -1, hidden.shape[-1]))
            out[hp.name][row_t] = picked.detach().float()

        with torch.inference_mode(), residual_hooks(lm.layers, hps, read, stop_after_last=True):
            try:
                lm.model(input_ids=ids, attention_mask=mask, **kwargs)
            except StopForward:
                pass
        bar.update(len(rows))
    return out, index


def right_pad(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[Any, Any]:
    """Right-pad token id lists; return ids and attention mask [batch, pos]."""
    import torch

    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = torch.tensor(list(seq), dtype=torch.long)
        mask[row, : len(seq)] = 1
    return ids, mask
