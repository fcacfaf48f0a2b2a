"""The TransformerLens layout of a Nanda transformer reproduces its logits."""

import math

import pytest
import torch

from freqdyn.grok.export import hooked_transformer_state, save_hooked_transformer
from freqdyn.grok.models import build_model
from freqdyn.grok.modular import modular_dataset


def _hooked_forward(cfg: dict, state: dict, tokens: torch.Tensor) -> torch.Tensor:
    """HookedTransformer's forward for this config, written from its documented layout:
    embed + pos, causal attention with biases, ReLU MLP, unembed; all positions."""
    x = state["embed.W_E"][tokens] + state["pos_embed.W_pos"][: tokens.shape[1]]
    q = torch.einsum("bpd,hde->bphe", x, state["blocks.0.attn.W_Q"]) + state["blocks.0.attn.b_Q"]
    k = torch.einsum("bpd,hde->bphe", x, state["blocks.0.attn.W_K"]) + state["blocks.0.attn.b_K"]
    v = torch.einsum("bpd,hde->bphe", x, state["blocks.0.attn.W_V"]) + state["blocks.0.attn.b_V"]
    scores = torch.einsum("bqhe,bkhe->bhqk", q, k) / math.sqrt(cfg["d_head"])
    n = tokens.shape[1]
    scores = scores.masked_fill(torch.triu(torch.ones(n, n, dtype=torch.bool), 1), -math.inf)
    z = torch.einsum("bhqk,bkhe->bqhe", scores.softmax(-1), v)
    x = x + torch.einsum("bqhe,hed->bqd", z, state["blocks.0.attn.W_O"]) \
        + state["blocks.0.attn.b_O"]
    hidden = torch.relu(x @ state["blocks.0.mlp.W_in"] + state["blocks.0.mlp.b_in"])
    x = x + hidden @ state["blocks.0.mlp.W_out"] + state["blocks.0.mlp.b_out"]
    return x @ state["unembed.W_U"] + state["unembed.b_U"]


@pytest.mark.parametrize("output", ["answers", "vocabulary"])
def test_layout_gives_the_models_logits(output, tmp_path):
    data = modular_dataset(13, "+", 0.5, seed=0, split="authors")
    model = build_model({"model": "nanda", "output": output, "d_model": 32, "n_heads": 4,
                         "d_head": 8, "d_mlp": 64}, data, seed=1)
    with torch.no_grad():
        model.b_in.normal_()
        model.b_out.normal_()
    cfg, state = hooked_transformer_state(model)
    assert cfg["d_vocab"] == model.W_E.shape[0] and cfg["d_vocab_out"] == model.W_U.shape[1]
    pairs = data.pairs_train
    tokens = torch.cat([pairs, torch.full_like(pairs[:, :1], model.eq_token)], dim=1)
    with torch.no_grad():
        expected = model(pairs)
    assert torch.allclose(_hooked_forward(cfg, state, tokens)[:, -1], expected, atol=1e-5)
    saved = torch.load(save_hooked_transformer(model, tmp_path / "model.pt"))
    assert saved["cfg"] == cfg and saved["eq_token"] == model.eq_token
    assert all(torch.equal(saved["state_dict"][k], v) for k, v in state.items())


def test_transformer_lens_loads_it_when_installed():
    lens = pytest.importorskip("transformer_lens")
    data = modular_dataset(13, "+", 0.5, seed=0)
    model = build_model({"model": "nanda", "output": "vocabulary", "d_model": 32,
                         "n_heads": 4, "d_head": 8, "d_mlp": 64}, data, seed=1)
    cfg, state = hooked_transformer_state(model)
    hooked = lens.HookedTransformer(lens.HookedTransformerConfig(**cfg))
    hooked.load_state_dict(state, strict=False)
    pairs = data.pairs_train
    tokens = torch.cat([pairs, torch.full_like(pairs[:, :1], model.eq_token)], dim=1)
    with torch.no_grad():
        assert torch.allclose(hooked(tokens)[:, -1], model(pairs), atol=1e-5)
