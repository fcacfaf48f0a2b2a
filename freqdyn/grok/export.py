"""A trained Nanda transformer in TransformerLens's layout, for the tools readers use.

:func:`hooked_transformer_state` gives the ``HookedTransformerConfig`` keys and the parameter
state dict of ``transformer_lens.HookedTransformer`` for a
:class:`freqdyn.grok.models.NandaTransformer` (one layer, no LayerNorm, ReLU MLP, learned
positions, untied unembedding): ``embed.W_E`` (d_vocab, d_model), ``pos_embed.W_pos``
(3, d_model), ``blocks.0.attn.W_Q/W_K/W_V`` (heads, d_model, d_head) with zero biases,
``W_O`` (heads, d_head, d_model), ``blocks.0.mlp.W_in`` (d_model, d_mlp), ``b_in``,
``W_out`` (d_mlp, d_model), ``b_out``, ``unembed.W_U`` (d_model, d_vocab_out), zero ``b_U``.
The logits of ``HookedTransformer(cfg)`` with this state (``strict=False``: its masks are
buffers) at the last position of the tokens "a b =" are the model's logits.

:func:`save_hooked_transformer` writes ``{"cfg": …, "state_dict": …}`` with ``torch.save``
(read it with ``torch.load(path)``; then ``HookedTransformer(HookedTransformerConfig(**cfg))``
and ``load_state_dict(state_dict, strict=False)``).
"""

from __future__ import annotations

from pathlib import Path

import torch

from freqdyn.errors import InputError
from freqdyn.grok.models import NandaTransformer
from freqdyn.results import atomic_write


def hooked_transformer_state(model: NandaTransformer) -> tuple[dict, dict[str, torch.Tensor]]:
    """(HookedTransformerConfig keyword arguments, parameter state dict) of ``model``."""
    if not isinstance(model, NandaTransformer):
        raise InputError("settings.model", "only Nanda's transformer has a TransformerLens "
                                           f"layout, not {type(model).__name__}")
    att = model.attention
    h, dh = att.n_heads, att.d_head
    d_vocab, d_model = model.W_E.shape
    d_mlp, d_out = model.W_in.shape[1], model.W_U.shape[1]
    cfg = {"n_layers": 1, "d_model": d_model, "d_head": dh, "n_heads": h, "d_mlp": d_mlp,
           "d_vocab": d_vocab, "d_vocab_out": d_out, "n_ctx": 3, "act_fn": "relu",
           "normalization_type": None, "positional_embedding_type": "standard"}

    def copy(tensor):
        return tensor.detach().cpu().clone()

    state = {
        "embed.W_E": copy(model.W_E), "pos_embed.W_pos": copy(model.W_pos),
        "blocks.0.attn.W_Q": copy(att.W_Q), "blocks.0.attn.W_K": copy(att.W_K),
        "blocks.0.attn.W_V": copy(att.W_V),
        "blocks.0.attn.W_O": copy(att.W_O.reshape(h, dh, d_model)),
        "blocks.0.attn.b_Q": torch.zeros(h, dh), "blocks.0.attn.b_K": torch.zeros(h, dh),
        "blocks.0.attn.b_V": torch.zeros(h, dh), "blocks.0.attn.b_O": torch.zeros(d_model),
        "blocks.0.mlp.W_in": copy(model.W_in), "blocks.0.mlp.b_in": copy(model.b_in),
        "blocks.0.mlp.W_out": copy(model.W_out), "blocks.0.mlp.b_out": copy(model.b_out),
        "unembed.W_U": copy(model.W_U), "unembed.b_U": torch.zeros(d_out),
    }
    return cfg, state


def save_hooked_transformer(model: NandaTransformer, path: str | Path) -> Path:
    """Write ``model`` in TransformerLens's layout to ``path`` (atomically)."""
    cfg, state = hooked_transformer_state(model)
    return atomic_write(Path(path), lambda tmp: torch.save({"cfg": cfg, "state_dict": state,
                                                            "eq_token": model.eq_token}, tmp))


def export_seed_models(runs, out: str | Path) -> list[str]:
    """``out/models/seed-N.pt`` for every run (``.seed``, ``.model``) whose model is Nanda's
    transformer; the relative paths written (none for other models)."""
    written = []
    for run in runs:
        if isinstance(run.model, NandaTransformer):
            name = Path("models") / f"seed-{run.seed}.pt"
            save_hooked_transformer(run.model, Path(out) / name)
            written.append(str(name))
    return written
