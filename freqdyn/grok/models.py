"""Models for algorithmic grokking: Nanda's 1-layer transformer, Power's decoder, a pair MLP.

Every model maps a batch of operand pairs (B, 2) (element tokens, see
:mod:`freqdyn.grok.modular`) to answer logits (B, n_classes) in two stages,

    forward(pairs) = head(embed(pairs)),

so that input perturbations (G4) act on a named input representation:

* ``embed(pairs)``: token + position embeddings (B, T, d) for the transformers, the first
  layer's pre-activation on the one-hot pair [e_x, e_y] (B, width) for the MLP;
* ``head(emb)``: everything after it, up to the logits;
* ``features(emb)``: the representation the output layer reads, (B, F): the residual stream
  at the "=" position for the transformers, the last hidden activations for the MLP.

All models are initialised from ``seed`` alone (:func:`build_model`), and every parameter is
multiplied by ``init_scale`` after initialisation (Omnigrok's α; 1 by default).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from freqdyn import memory
from freqdyn.config import Table
from freqdyn.errors import InputError
from freqdyn.grok.modular import ModularData


class _Attention(nn.Module):
    """Causal multi-head self-attention without biases: softmax(QKᵀ/√d_head + mask) V W_O."""

    def __init__(self, d_model: int, n_heads: int, d_head: int):
        super().__init__()
        self.n_heads, self.d_head = n_heads, d_head
        std = 1.0 / math.sqrt(d_model)
        self.W_Q = nn.Parameter(torch.randn(n_heads, d_model, d_head) * std)
        self.W_K = nn.Parameter(torch.randn(n_heads, d_model, d_head) * std)
        self.W_V = nn.Parameter(torch.randn(n_heads, d_model, d_head) * std)
        self.W_O = nn.Parameter(torch.randn(n_heads * d_head, d_model) * std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = torch.einsum("btd,hde->bhte", x, self.W_Q)
        k = torch.einsum("btd,hde->bhte", x, self.W_K)
        v = torch.einsum("btd,hde->bhte", x, self.W_V)
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.d_head)
        t = x.shape[1]
        future = torch.triu(torch.ones(t, t, dtype=torch.bool, device=x.device), diagonal=1)
        z = torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1) @ v
        return z.transpose(1, 2).reshape(x.shape[0], t, -1) @ self.W_O


class NandaTransformer(nn.Module):
    """Nanda et al.'s one-layer transformer (Nanda et al. 2023), read at the "=" position.

    Input "x y =", learned positional embeddings, one attention layer (``n_heads`` heads of
    size ``d_head``), one ReLU MLP of width ``d_mlp``, no LayerNorm, untied unembedding to the
    n_classes answers.  Initialisation as in Nanda's code: N(0, 1/d_model) for every weight
    except the unembedding, N(0, 1/n_classes); zero MLP biases.

    Only the residual stream at "=" is read out, and attention is causal, so the queries,
    the MLP and the unembedding are needed at that position alone (keys and values at all
    three).  ``features``/``head`` compute exactly that from any embedding (B, 3, d).
    ``forward(pairs)`` computes the same function faster, by the linearity of everything
    before the ReLU: with e_i = W_E[token_i] + W_pos[i] and the "=" token fixed,

    * the query q = e_2 W_Q is one vector per head, so the score of position i is a lookup
      s_i = (e_i W_K q)/√d_head in a (tokens, heads) table;
    * the attention output Σ_h Σ_i a_hi e_i W_V^h W_O^h is a weighted sum of rows of the
      per-token tables e_i W_V^h W_O^h (tokens, heads, d), and so are its images under
      W_in and W_U: the MLP pre-activation and the direct logits are
      ``embedding_bag`` sums of (tokens·heads, d_mlp + n_classes) table rows with the
      attention weights a as per-sample weights;
    * the MLP output reaches the logits through W_out W_U (d_mlp, n_classes).

    Per pair this costs O(h·(d_mlp + n) + d_mlp·n) instead of the O(T·d·(d_mlp + 4d)) of
    the plain pass; the tables cost O(tokens·h·d·(d + d_mlp)) once per call.
    """

    def __init__(self, n_tokens: int, n_classes: int, eq_token: int, *, d_model: int = 128,
                 n_heads: int = 4, d_head: int = 32, d_mlp: int = 512):
        super().__init__()
        std = 1.0 / math.sqrt(d_model)
        self.eq_token = eq_token
        self.W_E = nn.Parameter(torch.randn(n_tokens, d_model) * std)
        self.W_pos = nn.Parameter(torch.randn(3, d_model) * std)
        self.attention = _Attention(d_model, n_heads, d_head)
        self.W_in = nn.Parameter(torch.randn(d_model, d_mlp) * std)
        self.b_in = nn.Parameter(torch.zeros(d_mlp))
        self.W_out = nn.Parameter(torch.randn(d_mlp, d_model) * std)
        self.b_out = nn.Parameter(torch.zeros(d_model))
        self.W_U = nn.Parameter(torch.randn(d_model, n_classes) / math.sqrt(n_classes))

    def embed(self, pairs: torch.Tensor) -> torch.Tensor:
        eq = torch.full_like(pairs[:, :1], self.eq_token)
        return self.W_E[torch.cat([pairs, eq], dim=1)] + self.W_pos

    def features(self, emb: torch.Tensor) -> torch.Tensor:
        """The residual stream at "=" (B, d) for embeddings (B, 3, d)."""
        att = self.attention
        last = emb[:, -1]
        q = torch.einsum("bd,hde->bhe", last, att.W_Q)
        k = torch.einsum("btd,hde->bhte", emb, att.W_K)
        v = torch.einsum("btd,hde->bhte", emb, att.W_V)
        weights = torch.softmax(torch.einsum("bhe,bhte->bht", q, k) / math.sqrt(att.d_head),
                                dim=-1)
        z = torch.einsum("bht,bhte->bhe", weights, v).reshape(emb.shape[0], -1)
        x = last + z @ att.W_O
        return x + torch.relu(x @ self.W_in + self.b_in) @ self.W_out + self.b_out

    def head(self, emb: torch.Tensor) -> torch.Tensor:
        return self.features(emb) @ self.W_U

    def _tables(self, pairs: torch.Tensor):
        """Attention weights a (B, h, 3) and the table sums of the fast pass (see class)."""
        att = self.attention
        h, dh = att.n_heads, att.d_head
        e_eq = self.W_E[self.eq_token] + self.W_pos[2]                      # (d,)
        e01 = torch.stack([self.W_E + self.W_pos[0], self.W_E + self.W_pos[1]])  # (2, T, d)
        query = torch.einsum("d,hde->he", e_eq, att.W_Q)
        score_map = torch.einsum("hde,he->dh", att.W_K, query) / math.sqrt(dh)   # (d, h)
        scores01 = e01 @ score_map                                          # (2, T, h)
        x, y = pairs[:, 0], pairs[:, 1]
        scores = torch.stack([scores01[0][x], scores01[1][y],
                              (e_eq @ score_map).expand(x.shape[0], h)], dim=-1)
        weights = torch.softmax(scores, dim=-1)                             # (B, h, 3)
        value_out = torch.einsum("hde,hef->hdf", att.W_V, att.W_O.reshape(h, dh, -1))
        read = torch.cat([self.W_in, self.W_U], dim=1)                      # (d, d_mlp + n)
        tables = torch.einsum("ptd,hdf->pthf", e01, value_out) @ read       # (2, T, h, K)
        n_tok = self.W_E.shape[0]
        heads = torch.arange(h, device=pairs.device)
        index = torch.cat([x[:, None] * h + heads, (n_tok + y[:, None]) * h + heads], dim=1)
        summed = nn.functional.embedding_bag(
            index, tables.reshape(2 * n_tok * h, -1), mode="sum",
            per_sample_weights=torch.cat([weights[..., 0], weights[..., 1]], dim=1))
        eq_row = e_eq @ read + weights[..., 2] @ (torch.einsum("d,hdf->hf", e_eq, value_out)
                                                   @ read)
        return summed + eq_row

    def reference_forward(self, pairs: torch.Tensor) -> torch.Tensor:
        """The plain pass in Nanda's einsum style: causal attention and the MLP at every
        position, then the logits at "=" (the same function as ``forward``, for tests and
        benchmarks)."""
        x = self.embed(pairs)
        x = x + self.attention(x)
        x = x + torch.relu(x @ self.W_in + self.b_in) @ self.W_out + self.b_out
        return x[:, -1] @ self.W_U

    def mlp_activations(self, pairs: torch.Tensor) -> torch.Tensor:
        """The ReLU neuron activations at "=" (B, d_mlp)."""
        d_mlp = self.W_in.shape[1]
        return torch.relu(self._tables(pairs)[:, :d_mlp] + self.b_in)

    def forward(self, pairs: torch.Tensor) -> torch.Tensor:
        z = self._tables(pairs)
        d_mlp = self.W_in.shape[1]
        hidden = torch.relu(z[:, :d_mlp] + self.b_in)
        return z[:, d_mlp:] + hidden @ (self.W_out @ self.W_U) + self.b_out @ self.W_U


class _PostNormBlock(nn.Module):
    """Decoder block of Power et al.'s code: x ← LN(x + Attn(x)); x ← LN(x + FFN(x))."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int):
        super().__init__()
        self.attention = _Attention(d_model, n_heads, d_model // n_heads)
        self.attention_norm = nn.LayerNorm(d_model)
        self.ffn = nn.Sequential(nn.Linear(d_model, d_ff), nn.ReLU(), nn.Linear(d_ff, d_model))
        self.ffn_norm = nn.LayerNorm(d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.attention_norm(x + self.attention(x))
        return self.ffn_norm(x + self.ffn(x))


def _sinusoidal_positions(n_ctx: int, d_model: int) -> torch.Tensor:
    """PE[t, 2i] = sin(t/10000^(2i/d)), PE[t, 2i+1] = cos(t/10000^(2i/d))."""
    t = torch.arange(n_ctx, dtype=torch.float32)[:, None]
    rate = torch.exp(-math.log(10000.0) * torch.arange(0, d_model, 2) / d_model)
    pe = torch.zeros(n_ctx, d_model)
    pe[:, 0::2] = torch.sin(t * rate)
    pe[:, 1::2] = torch.cos(t * rate)
    return pe


class PowerDecoder(nn.Module):
    """The decoder-only transformer of Power et al. 2022 (as in Notsawo et al. 2023) on "x ∘ y =".

    ``n_layers`` causal post-LayerNorm blocks of width ``d_model`` with ``n_heads`` heads and
    a ReLU feed-forward layer of width 4·d_model, sinusoidal positions, no dropout.  The
    output is tied to the token embedding: logits_c = h · e(c) for the answer tokens c, with h
    the final state at "=", so the loss sits on the answer token only.
    """

    def __init__(self, n_tokens: int, n_classes: int, op_token: int, eq_token: int, *,
                 d_model: int = 128, n_heads: int = 4, n_layers: int = 2):
        super().__init__()
        self.op_token, self.eq_token, self.n_classes = op_token, eq_token, n_classes
        self.embedding = nn.Embedding(n_tokens, d_model)
        self.register_buffer("positions", _sinusoidal_positions(4, d_model))
        self.blocks = nn.ModuleList(_PostNormBlock(d_model, n_heads, 4 * d_model)
                                    for _ in range(n_layers))

    def embed(self, pairs: torch.Tensor) -> torch.Tensor:
        op = torch.full_like(pairs[:, :1], self.op_token)
        eq = torch.full_like(pairs[:, :1], self.eq_token)
        tokens = torch.cat([pairs[:, :1], op, pairs[:, 1:], eq], dim=1)
        return self.embedding(tokens) + self.positions

    def features(self, emb: torch.Tensor) -> torch.Tensor:
        x = emb
        for block in self.blocks:
            x = block(x)
        return x[:, -1]

    def head(self, emb: torch.Tensor) -> torch.Tensor:
        return self.features(emb) @ self.embedding.weight[: self.n_classes].T

    def forward(self, pairs: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(pairs))


_ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "quadratic": None}


class _Square(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * x


class PairMLP(nn.Module):
    """MLP on the one-hot pair [e_x, e_y] ∈ {0, 1}^{2p}: ``depth`` hidden layers of ``width``.

    Layers are PyTorch's ``nn.Linear`` (weights and biases U(−1/√fan_in, 1/√fan_in)).  The
    first layer's weight columns W[:, x] and W[:, p + y] are the per-operand embeddings
    (their Fourier norms are what the progress measures read), and the input representation
    ``embed(pairs)`` is the first layer's pre-activation W[e_x; e_y] + b = W[:, x] +
    W[:, p + y] + b, (B, width): the MLP's analogue of a transformer's summed token
    embeddings, computed by lookup rather than by a product with the one-hot vector.
    """

    def __init__(self, p: int, n_classes: int, *, width: int = 256, depth: int = 1,
                 activation: str = "relu"):
        super().__init__()
        self.p = p
        act = _ACTIVATIONS[activation]
        self.first = nn.Linear(2 * p, width)
        self.activation = _Square() if act is None else act()
        layers: list[nn.Module] = []
        for _ in range(depth - 1):
            layers += [nn.Linear(width, width), _Square() if act is None else act()]
        self.hidden = nn.Sequential(*layers)
        self.output = nn.Linear(width, n_classes)

    @property
    def W_E(self) -> torch.Tensor:
        """The (2p, width) map from the one-hot pair to ``embed``: the token-embedding matrix."""
        return self.first.weight.T

    def embed(self, pairs: torch.Tensor) -> torch.Tensor:
        columns = self.W_E
        return columns[pairs[:, 0]] + columns[self.p + pairs[:, 1]] + self.first.bias

    def features(self, emb: torch.Tensor) -> torch.Tensor:
        return self.hidden(self.activation(emb))

    def head(self, emb: torch.Tensor) -> torch.Tensor:
        return self.output(self.features(emb))

    def forward(self, pairs: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(pairs))


MODELS = ("nanda", "power", "mlp")


def _positive_int(cfg: dict, key: str, default: int) -> int:
    return Table(cfg, "settings").integer(key, default, low=1)


OUTPUTS = ("answers", "vocabulary")
#: Bytes per parameter of a training run: weights, gradients, AdamW's two moments and a
#: checkpoint copy, float32.
BYTES_PER_PARAMETER = 5 * 4
#: Activations kept for the backward pass per sample and hidden unit (float32, a margin of 4).
BYTES_PER_ACTIVATION = 4 * 4


def model_bytes(cfg: dict, data: ModularData) -> float:
    """Estimated bytes of training ``cfg``'s model on ``data`` (full batch): parameters with
    their optimizer state, and the activations of every pair, before anything is allocated."""
    kind, p, pairs = cfg.get("model", "mlp"), data.p, data.p ** 2
    if kind == "mlp":
        width, depth = _positive_int(cfg, "width", 256), _positive_int(cfg, "depth", 1)
        params = 2 * p * width + (depth - 1) * width * width + width * data.n_classes
        hidden = depth * width
    else:
        d = _positive_int(cfg, "d_model", 128)
        d_mlp = _positive_int(cfg, "d_mlp", 512) if kind == "nanda" else 4 * d
        layers = 1 if kind == "nanda" else _positive_int(cfg, "n_layers", 2)
        heads = _positive_int(cfg, "n_heads", 4) * _positive_int(cfg, "d_head", d // 4 or 1)
        params = (data.n_tokens + data.n_classes) * d + layers * (4 * d * heads + 2 * d * d_mlp)
        hidden = 4 * layers * (4 * d + d_mlp)
    return float(params) * BYTES_PER_PARAMETER + float(pairs) * hidden * BYTES_PER_ACTIVATION


def _nanda_vocabulary(cfg: dict, data: ModularData) -> tuple[int, int, int]:
    """(tokens, output classes, "=" token) of the Nanda model.

    ``output = "answers"``: the shared numbering of :mod:`freqdyn.grok.modular` (n + 2
    tokens) and the n answers.  ``"vocabulary"``: the authors' vocabulary, the n elements
    and "=" (token n), and an unembedding onto all n + 1 of them, so that "=" is a 114th
    class at P = 113 which training learns never to answer.
    """
    output = cfg.get("output", "answers")
    if output not in OUTPUTS:
        raise InputError("settings.output", f"must be one of {OUTPUTS}, got {output!r}")
    if output == "answers":
        return data.n_tokens, data.n_classes, data.eq_token
    return data.p + 1, data.p + 1, data.p


def build_model(cfg: dict, data: ModularData, seed: int) -> nn.Module:
    """The model ``cfg["model"]`` for ``data``, initialised from ``seed``.

    Keys (defaults): ``model`` ("nanda", "power" or "mlp"; "mlp"); transformers: ``d_model``
    (128), ``n_heads`` (4), ``d_head`` (32, Nanda), ``d_mlp`` (512, Nanda), ``n_layers``
    (2, Power); MLP: ``width`` (256), ``depth`` (1), ``activation`` ("relu", "gelu",
    "quadratic"; "relu"); all: ``init_scale`` (1.0), multiplying every initial parameter;
    Nanda only: ``output`` ("answers", or "vocabulary", see :func:`_nanda_vocabulary`).
    The global torch RNG is left untouched.
    """
    kind = cfg.get("model", "mlp")
    if kind not in MODELS:
        raise InputError("settings.model", f"unknown model {kind!r}; choose one of {MODELS}")
    if kind != "nanda" and cfg.get("output", "answers") != "answers":
        raise InputError("settings.output", f"\"vocabulary\" is the Nanda model's output; "
                                           f"model {kind!r} answers the n elements")
    init_scale = cfg.get("init_scale", 1.0)
    if not isinstance(init_scale, int | float) or not init_scale > 0:
        raise InputError("settings.init_scale", f"must be a positive number, got {init_scale!r}")
    activation = cfg.get("activation", "relu")
    if activation not in _ACTIVATIONS:
        raise InputError("settings.activation",
                        f"unknown activation {activation!r}; choose one of {tuple(_ACTIVATIONS)}")
    memory.require("settings.width" if kind == "mlp" else "settings.d_model",
                   model_bytes(cfg, data),
                   f"the {kind} model on {data.p} elements with its AdamW state and "
                   "activations", "choose a smaller width (d_model, d_mlp, width, depth)")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if kind == "nanda":
            n_tokens, n_classes, eq_token = _nanda_vocabulary(cfg, data)
            model = NandaTransformer(
                n_tokens, n_classes, eq_token,
                d_model=_positive_int(cfg, "d_model", 128),
                n_heads=_positive_int(cfg, "n_heads", 4),
                d_head=_positive_int(cfg, "d_head", 32), d_mlp=_positive_int(cfg, "d_mlp", 512))
        elif kind == "power":
            d_model, n_heads = _positive_int(cfg, "d_model", 128), _positive_int(cfg, "n_heads", 4)
            if d_model % n_heads:
                raise InputError("settings.n_heads", f"must divide d_model = {d_model}")
            model = PowerDecoder(data.n_tokens, data.n_classes, data.op_token, data.eq_token,
                                 d_model=d_model, n_heads=n_heads,
                                 n_layers=_positive_int(cfg, "n_layers", 2))
        else:
            model = PairMLP(data.p, data.n_classes, width=_positive_int(cfg, "width", 256),
                            depth=_positive_int(cfg, "depth", 1), activation=activation)
    if init_scale != 1.0:
        with torch.no_grad():
            for param in model.parameters():
                param.mul_(init_scale)
    return model
