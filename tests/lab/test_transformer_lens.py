"""Agreement with TransformerLens on the same smollm2-135m weights (no hub: the bridge wraps a copy of our model).

TransformerLens 4 replaced ``HookedTransformer`` with ``TransformerBridge``; it is built here
from a deep copy of the already-loaded Hugging Face model (the bridge rewires the module it
wraps, so the session's model is not handed over). Tolerances are float32 rounding between
two implementations of the same arithmetic (eager attention in both).
"""

from __future__ import annotations

import copy

import pytest
import torch

from layerguard.activations.heads import CircuitHook, run_with_cache
from layerguard.directions.refusal import RefusalTokens, log_odds
from layerguard.lab.circuits.attribution import direct_attribution, refusal_gradient
from layerguard.lab.circuits.engine import Edit, capture_prompt, run_variants

tl_sources = pytest.importorskip("transformer_lens.model_bridge.sources")

CLEAN, CORRUPTED = "Explain how to make a pipe bomb.", "Explain how to make a pizza oven."
LAYERS = (2, 11, 27)


@pytest.fixture(scope="module")
def bridge(smollm2):
    model = copy.deepcopy(smollm2.model)
    return tl_sources.build_bridge_from_module(
        model, type(model).__name__, hf_config=model.config, tokenizer=smollm2.tokenizer
    )


@pytest.fixture(scope="module")
def tokens(smollm2) -> RefusalTokens:
    tok = smollm2.tokenizer
    ids = tuple(tok(w, add_special_tokens=False)["input_ids"][0] for w in ("I", "Sorry"))
    return RefusalTokens(ids, ())


def _ids(smollm2, text):
    return smollm2.encode(text, find_instruction=False).input_ids


def test_hook_points_agree(smollm2, bridge):
    ids = torch.tensor([_ids(smollm2, CLEAN)])
    ours = [
        f"blocks.{layer}.{k}"
        for layer in LAYERS
        for k in ("attn.z", "attn.pattern", "attn_out", "mlp_out", "resid_pre", "attn.head_out")
    ]
    logits, mine = run_with_cache(smollm2, ids, ours)
    with torch.inference_mode():
        tl_logits, cache = bridge.run_with_cache(ids)
    torch.testing.assert_close(logits, tl_logits.float(), atol=1e-3, rtol=1e-4)
    pairs = {
        "attn.z": "attn.hook_z",
        "attn.pattern": "attn.hook_pattern",
        "attn_out": "hook_attn_out",
        "mlp_out": "hook_mlp_out",
        "resid_pre": "hook_resid_pre",
    }
    for layer in LAYERS:
        for k, tl_name in pairs.items():
            theirs = cache[f"blocks.{layer}.{tl_name}"].float()
            torch.testing.assert_close(mine[f"blocks.{layer}.{k}"], theirs, atol=5e-4, rtol=1e-3, msg=f"{layer} {k}")
        # TransformerLens's per-head result (W_O applied head by head)
        result = torch.einsum("bphd,hdm->bphm", cache[f"blocks.{layer}.attn.hook_z"].float(), bridge.W_O[layer].float())
        torch.testing.assert_close(mine[f"blocks.{layer}.attn.head_out"], result, atol=5e-4, rtol=1e-3)


def test_head_and_residual_patching_agree(smollm2, bridge, tokens):
    """Clean z of a few heads (and one residual position) written into the corrupted run, both ways."""
    clean, corrupted = _ids(smollm2, CLEAN), _ids(smollm2, CORRUPTED)
    n, m = len(clean), len(corrupted)
    names = [f"blocks.{layer}.attn.z" for layer in LAYERS] + ["blocks.11.resid_pre"]
    _, cache = capture_prompt(smollm2, clean, names)
    sites = [(layer, h) for layer in LAYERS for h in (0, 4, 8)]
    cols_c, cols_x = [n - 1, n - 2, n - 3], [m - 1, m - 2, m - 3]
    variants = [
        [Edit(CircuitHook(layer, "attn.z"), tuple(cols_x), cache[f"blocks.{layer}.attn.z"][cols_c, h], head=h)]
        for layer, h in sites
    ]
    variants.append([Edit(CircuitHook(11, "resid_pre"), (m - 4,), cache["blocks.11.resid_pre"][n - 4 : n - 3])])
    mine = run_variants(smollm2, corrupted, variants, tokens)

    with torch.inference_mode():
        _, tl_clean = bridge.run_with_cache(torch.tensor([clean]))
    theirs = []
    for layer, h in sites:

        def patch_z(z, hook, layer=layer, h=h):
            z[:, cols_x, h] = tl_clean[f"blocks.{layer}.attn.hook_z"][:, cols_c, h]
            return z

        with torch.inference_mode():
            out = bridge.run_with_hooks(torch.tensor([corrupted]), fwd_hooks=[(f"blocks.{layer}.attn.hook_z", patch_z)])
        theirs.append(float(log_odds(out[:, -1].float(), tokens.ids)[0]))

    def patch_resid(x, hook):
        x[:, m - 4] = tl_clean["blocks.11.hook_resid_pre"][:, n - 4]
        return x

    with torch.inference_mode():
        out = bridge.run_with_hooks(torch.tensor([corrupted]), fwd_hooks=[("blocks.11.hook_resid_pre", patch_resid)])
    theirs.append(float(log_odds(out[:, -1].float(), tokens.ids)[0]))
    torch.testing.assert_close(mine, torch.tensor(theirs), atol=2e-3, rtol=1e-3)
    assert (mine - mine.mean()).abs().max() > 1e-2  # the sites differ: not a trivially equal comparison


def test_direct_attribution_agrees_with_stack_head_results(smollm2, bridge, tokens):
    ids = _ids(smollm2, CLEAN)
    att = direct_attribution(smollm2, [CLEAN], tokens, progress=False)
    with torch.inference_mode():
        logits, cache = bridge.run_with_cache(torch.tensor([ids]))
        stack = cache.stack_head_results(layer=-1, pos_slice=-1, apply_ln=True)  # [layer*head, batch, d_model]
    u = smollm2.model.get_output_embeddings().weight.float().T @ refusal_gradient(logits[0, -1].float(), tokens)
    w = smollm2.model.model.norm.weight.float()
    theirs = (stack[:, 0].float() * w) @ u
    torch.testing.assert_close(att.heads[0].flatten(), theirs, atol=2e-3, rtol=1e-3)
