"""The three modular models: shapes, the embed/head split, tying, causality, seeding, sizes."""

import pytest
import torch

from freqdyn.errors import InputError
from freqdyn.grok.models import NandaTransformer, PairMLP, PowerDecoder, _Attention, build_model
from freqdyn.grok.modular import modular_dataset

DATA = modular_dataset(7, "+", train_fraction=0.5, seed=0)
SMALL = {"d_model": 16, "n_heads": 2, "d_head": 8, "d_mlp": 32, "width": 24}


@pytest.mark.parametrize("kind,cls", [("nanda", NandaTransformer), ("power", PowerDecoder),
                                      ("mlp", PairMLP)])
def test_forward_is_head_of_embed_with_documented_shapes(kind, cls):
    model = build_model({"model": kind, **SMALL}, DATA, seed=1)
    assert isinstance(model, cls)
    pairs = DATA.pairs_train[:5]
    emb = model.embed(pairs)
    expected_emb = {"nanda": (5, 3, 16), "power": (5, 4, 16), "mlp": (5, 24)}[kind]
    assert tuple(emb.shape) == expected_emb
    assert tuple(model.features(emb).shape) == (5, 24 if kind == "mlp" else 16)
    logits = model(pairs)
    assert tuple(logits.shape) == (5, 7)
    # Nanda's forward is the table pass: the same function, other rounding
    exact = {"rtol": 1e-5, "atol": 1e-6} if kind == "nanda" else {"rtol": 0, "atol": 0}
    torch.testing.assert_close(logits, model.head(emb), **exact)


def test_nanda_fast_pass_equals_the_plain_pass_and_its_gradients():
    data = modular_dataset(31, "+", train_fraction=0.5, seed=0)
    model = build_model({"model": "nanda"}, data, seed=3).double()
    pairs = data.pairs_train
    fast, plain = model(pairs), model.reference_forward(pairs)
    torch.testing.assert_close(fast, plain, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(model.head(model.embed(pairs)), plain, rtol=1e-12, atol=1e-12)
    grads = []
    for fn in (model, model.reference_forward):
        model.zero_grad()
        torch.nn.functional.cross_entropy(fn(pairs), data.labels_train).backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    for g_fast, g_plain in zip(*grads, strict=True):
        torch.testing.assert_close(g_fast, g_plain, rtol=1e-10, atol=1e-12)
    hidden = torch.relu(model.embed(pairs)[:, -1] @ model.W_in)  # shape check only
    assert model.mlp_activations(pairs).shape == hidden.shape


def _nanda_curve(data, which: str, dtype, steps: int = 100):
    from freqdyn.nets.records import adamw

    model = build_model({"model": "nanda"}, data, seed=0).to(dtype)
    optimizer, scheduler = adamw(model, 1e-3, 1.0)
    fn = model if which == "fast" else model.reference_forward
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(fn(data.pairs_train), data.labels_train)
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(float(loss.detach()))
    return torch.tensor(losses, dtype=torch.float64)


@pytest.mark.slow
def test_nanda_fast_pass_gives_the_plain_loss_curve_over_100_adamw_steps():
    """Full batch, Nanda's optimiser, 100 updates: in float64 the two passes give the same
    curve to round-off; in float32 the fast pass stays as close to the float64 curve as the
    plain float32 pass does (Adam amplifies rounding, 0.3-0.4 % by step 100 for both)."""
    data = modular_dataset(31, "+", train_fraction=0.5, seed=1)
    reference = _nanda_curve(data, "plain", torch.float64)
    assert reference[-1] < 0.5 * reference[0]  # it learns
    torch.testing.assert_close(_nanda_curve(data, "fast", torch.float64), reference,
                               rtol=1e-11, atol=0)
    plain32 = float(((_nanda_curve(data, "plain", torch.float32) - reference).abs()
                     / reference).max())
    fast32 = float(((_nanda_curve(data, "fast", torch.float32) - reference).abs()
                    / reference).max())
    assert plain32 < 1e-2 and fast32 < 2 * plain32 + 1e-3


def test_mlp_embedding_is_the_first_layer_on_the_one_hot_pair():
    model = build_model({"model": "mlp", "width": 24}, DATA, seed=0)
    pairs = DATA.pairs_train[:9]
    one_hot = torch.cat([torch.eye(7)[pairs[:, 0]], torch.eye(7)[pairs[:, 1]]], dim=1)
    torch.testing.assert_close(model.embed(pairs), model.first(one_hot))
    torch.testing.assert_close(one_hot @ model.W_E, model.embed(pairs) - model.first.bias)
    hidden = torch.relu(model.first(one_hot))
    torch.testing.assert_close(model(pairs), model.output(hidden))


def test_power_decoder_ties_the_output_to_the_answer_token_embeddings():
    model = build_model({"model": "power", **SMALL}, DATA, seed=0)
    emb = model.embed(DATA.pairs_train[:4])
    h = model.features(emb)
    torch.testing.assert_close(model.head(emb), h @ model.embedding.weight[:7].T)
    tokens = emb - model.positions          # x ∘ y =
    torch.testing.assert_close(tokens[:, 1], model.embedding.weight[DATA.op_token].expand(4, -1))
    torch.testing.assert_close(tokens[:, 3], model.embedding.weight[DATA.eq_token].expand(4, -1))


def test_attention_is_causal():
    torch.manual_seed(0)
    attention = _Attention(8, 2, 4)
    x = torch.randn(3, 4, 8)
    y = x.clone()
    y[:, 2:] = torch.randn(3, 2, 8)
    torch.testing.assert_close(attention(x)[:, :2], attention(y)[:, :2])
    assert not torch.allclose(attention(x)[:, 2:], attention(y)[:, 2:])


def test_paper_sizes():
    data = modular_dataset(113, "+", train_fraction=0.3, seed=0)
    nanda = build_model({"model": "nanda"}, data, seed=0)
    d, d_mlp, p = 128, 512, 113
    expected = (p + 2) * d + 3 * d + 4 * 3 * d * 32 + 128 * d + 2 * d * d_mlp + d_mlp + d + d * p
    assert sum(q.numel() for q in nanda.parameters()) == expected
    assert not any(isinstance(m, torch.nn.LayerNorm) for m in nanda.modules())
    power = build_model({"model": "power"}, modular_dataset(97, "+", 0.3, 0), seed=0)
    non_embedding = sum(q.numel() for name, q in power.named_parameters()
                        if not name.startswith("embedding"))
    per_layer = 4 * d * d + 2 * d * 4 * d + 4 * d + d + 4 * d
    assert non_embedding == 2 * per_layer
    assert 3.5e5 < non_embedding < 4.5e5          # Power et al.: about 4·10⁵


def test_seeding_is_local_and_init_scale_multiplies_every_parameter():
    state = torch.get_rng_state()
    a = build_model({"model": "nanda", **SMALL}, DATA, seed=3)
    assert torch.equal(state, torch.get_rng_state())
    b = build_model({"model": "nanda", **SMALL}, DATA, seed=3)
    c = build_model({"model": "nanda", **SMALL}, DATA, seed=4)
    scaled = build_model({"model": "nanda", "init_scale": 2.5, **SMALL}, DATA, seed=3)
    for pa, pb, ps in zip(a.parameters(), b.parameters(), scaled.parameters(), strict=True):
        assert torch.equal(pa, pb)
        torch.testing.assert_close(ps, 2.5 * pa)
    assert not torch.equal(a.W_E, c.W_E)


@pytest.mark.parametrize("cfg,field", [
    ({"model": "lstm"}, "settings.model"),
    ({"model": "mlp", "width": 0}, "settings.width"),
    ({"model": "mlp", "activation": "tanh"}, "settings.activation"),
    ({"model": "power", "d_model": 30, "n_heads": 4}, "settings.n_heads"),
    ({"model": "nanda", "init_scale": -1.0}, "settings.init_scale"),
])
def test_bad_settings_name_the_field(cfg, field):
    with pytest.raises(InputError) as err:
        build_model(cfg, DATA, seed=0)
    assert err.value.field == field
