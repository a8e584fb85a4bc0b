"""Dropout with PCG64 masks: torch's dropout function (keep rate, scale rounded as torch rounds it, the backward
pass), on hidden states and on attention probabilities (torch's math form of the attention), a seed fixes the masks,
and it is what a CPU run trains with."""
import json

import pytest
import torch
from tiny_models import make_encoder, tiny_config

from harness.config import RunConfig
from harness.finetune import cell
from harness.model import dropout_masks
from harness.registry.load import load_tasks, local_model


def _dropout(p=0.1, inplace=False):
    module = torch.nn.Dropout(p, inplace=inplace)
    assert dropout_masks.install(module) == 1
    return module


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_same_function_as_torchs_dropout(dtype):
    torch.manual_seed(0)
    x = torch.rand(1000, 1000).add_(0.5).to(dtype)  # no zeros: a zero output means a dropped element
    out = _dropout()(x)
    kept = out != 0
    assert abs(kept.double().mean().item() - 0.9) < 0.001  # 1M draws: within 3 standard deviations of 1 - p
    theirs = torch.nn.functional.dropout(x, 0.1, training=True)
    both = kept & (theirs != 0)
    assert both.sum() > 700_000
    assert torch.equal(out[both], theirs[both])  # kept values scaled exactly as torch does it, in this dtype
    assert out.dtype == dtype and out.shape == x.shape


def test_the_backward_pass_multiplies_by_the_same_mask():
    torch.manual_seed(1)
    x = torch.rand(128, 64).add_(0.5).requires_grad_()
    out = _dropout(0.3)(x)
    out.backward(torch.ones_like(out))
    torch.testing.assert_close(x.grad, out.detach() / x.detach(), rtol=1e-6, atol=0)
    assert x.grad.unique().tolist() == [0.0, pytest.approx(1 / 0.7)]


def test_a_seed_fixes_the_masks_and_the_module_keeps_what_nn_dropout_has():
    x = torch.ones(100, 100)

    def mask(seed, module):
        torch.manual_seed(seed)
        return module(x) != 0

    module = _dropout(0.5)
    assert torch.equal(mask(3, module), mask(3, module)) and not torch.equal(mask(3, module), mask(4, module))
    assert isinstance(module, torch.nn.Dropout) and module.p == 0.5
    module.eval()
    assert module(x) is x  # evaluation: no dropout, as nn.Dropout
    inplace = _dropout(0.5, inplace=True)
    y = torch.ones(100, 100)
    assert inplace(y) is y and (y == 0).any()
    assert torch.equal(_dropout(1.0)(x), torch.zeros_like(x))


@pytest.mark.parametrize("n", [7, 2 * dropout_masks.DRAWS_PER_CHUNK, 5 * dropout_masks.DRAWS_PER_CHUNK + 3])
def test_a_mask_drawn_in_chunks_is_the_mask_drawn_at_once(n):
    """PCG64's stream cut into chunks: the same draws, in the same places, as one draw of the whole mask."""
    import numpy as np

    torch.manual_seed(9)
    ours = dropout_masks.keep_mask((n,), 0.25)
    torch.manual_seed(9)
    seed = int(torch.randint(0, 2**63 - 1, (), dtype=torch.int64))
    draws = np.random.PCG64(seed).random_raw((n + 1) // 2).view("<u4")[:n]
    assert torch.equal(ours, torch.from_numpy(draws >= np.uint32(round(0.25 * 2**32))))


def test_small_masks_stay_torchs():
    """Under PCG64_FROM elements torch's generator is the cheaper one: the same output as nn.Dropout's."""
    small, large = torch.ones(dropout_masks.PCG64_FROM - 1), torch.ones(dropout_masks.PCG64_FROM)
    for x, same in ((small, True), (large, False)):
        torch.manual_seed(5)
        ours = _dropout(0.5)(x)
        torch.manual_seed(5)
        assert torch.equal(ours, torch.nn.Dropout(0.5)(x)) == same


def test_install_swaps_every_plain_dropout_module_of_a_model():
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_config(tiny_config("bert", num_labels=2))
    plain = [m for m in model.modules() if type(m) is torch.nn.Dropout]
    assert len(plain) > 3  # embeddings, each layer's hidden states and attention, the classifier
    assert dropout_masks.install(model) == len(plain)
    assert not [m for m in model.modules() if type(m) is torch.nn.Dropout]


def _qkv(dtype, seed=0, length=37):
    torch.manual_seed(seed)
    return [torch.randn(4, 3, length, 16).to(dtype) for _ in range(3)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_attention_is_torchs_math_form_with_the_mask_given(dtype):
    from torch.nn.attention import SDPBackend, sdpa_kernel

    q, k, v = _qkv(dtype)
    attend = torch.rand(4, 1, 37, 37) > 0.2
    attend[..., 0] = True
    with sdpa_kernel(SDPBackend.MATH):
        theirs = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=attend)
    everything = torch.ones(4, 3, 37, 37, dtype=torch.bool)
    assert torch.equal(dropout_masks.attention(q, k, v, attend, 0.0, None, keep=everything), theirs)  # to the bit
    keep = torch.rand(4, 3, 37, 37) > 0.1
    additive = torch.zeros(4, 1, 37, 37, dtype=dtype).masked_fill(~attend, float("-inf"))
    # torch's math form with a given mask (it warns, once, that dropout_mask is for tests: this is one).
    theirs = torch.ops.aten._scaled_dot_product_attention_math(q, k, v, additive, 0.1, False, dropout_mask=keep)[0]
    ours = dropout_masks.attention(q, k, v, attend, 0.1, None, keep=keep)
    # torch scales v by 1/(1-p) here, and the probabilities in its dropout: the same to rounding.
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5 if dtype == torch.float32 else 1e-2)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_a_query_the_mask_blocks_entirely_attends_to_nothing_as_in_torch(dtype):
    from torch.nn.attention import SDPBackend, sdpa_kernel

    q, k, v = _qkv(dtype)
    attend = torch.rand(4, 1, 37, 37) > 0.2
    attend[..., 0] = True
    attend[1, :, 5] = False  # query 5 of example 1 may attend to no key: torch gives zeros there, not NaN
    with sdpa_kernel(SDPBackend.MATH):
        theirs = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=attend)
    everything = torch.ones(4, 3, 37, 37, dtype=torch.bool)
    ours = dropout_masks.attention(q, k, v, attend, 0.0, None, keep=everything)
    assert torch.equal(ours, theirs)
    assert (ours[1, :, 5] == 0).all() and not ours.isnan().any()


def test_under_the_context_attention_dropout_draws_pcg64_masks():
    sdpa = torch.nn.functional.scaled_dot_product_attention
    q, k, _ = _qkv(torch.float32)
    eye = torch.eye(37).expand(4, 3, 37, 37)  # the output is then the dropped-out probabilities themselves
    probs = torch.softmax(q @ k.transpose(-2, -1) / 4, -1)

    def dropped(seed, p=0.3):
        torch.manual_seed(seed)
        with dropout_masks.attention_dropout():
            return sdpa(q, k, eye, dropout_p=p)

    out = dropped(1)
    kept = out != 0
    assert abs(kept.double().mean().item() - 0.7) < 0.01
    torch.testing.assert_close(out[kept], (probs / 0.7)[kept], rtol=1e-5, atol=1e-7)
    assert torch.equal(out, dropped(1)) and not torch.equal(out, dropped(2))
    torch.manual_seed(1)
    torchs = sdpa(q, k, eye, dropout_p=0.3)
    assert not torch.equal(out, torchs)  # outside the context: torch's masks
    assert torch.equal(dropped(1, p=0.0), sdpa(q, k, eye))  # no dropout: torch's own call
    torch.manual_seed(1)
    with dropout_masks.attention_dropout(False):
        assert torch.equal(sdpa(q, k, eye, dropout_p=0.3), torchs)


def test_attention_gradients_through_the_mask():
    q, k, v = (t.double().requires_grad_() for t in _qkv(torch.float32, length=5))
    keep = torch.rand(4, 3, 5, 5) > 0.3
    assert torch.autograd.gradcheck(lambda a, b, c: dropout_masks.attention(a, b, c, None, 0.3, None, keep=keep),
                                    (q, k, v))


def test_a_cpu_run_trains_with_them_and_a_seed_fixes_its_numbers(toy_env, tmp_path):
    """A BERT with dropout: the run with PCG64 masks repeats itself to the digit and is not the run with torch's;
    with dropout on the attention probabilities alone, too."""
    task = load_tasks()["toy"]
    attention_only = make_encoder(tmp_path / "bert-attention", dropout=0.3)
    config = json.loads((attention_only / "config.json").read_text())
    (attention_only / "config.json").write_text(json.dumps({**config, "hidden_dropout_prob": 0.0}))
    spec = local_model(make_encoder(tmp_path / "bert", dropout=0.3))
    kwargs = dict(seed=3, limit=32, mirror=str(toy_env["mirror"]), log=lambda m: None)

    def losses(**settings):
        rec = cell.run_cell(task, spec, RunConfig(epochs=1, learning_rate=3e-3, precision="fp32", **settings),
                            **kwargs)
        return [(e.train_loss, e.test.loss, e.test_predictions) for e in rec.fits[0].epochs]

    fast = losses()
    assert fast == losses()
    assert fast != losses(fast_dropout=False)
    spec = local_model(attention_only)
    assert losses() != losses(fast_dropout=False)
