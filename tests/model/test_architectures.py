"""Every supported architecture trains through the routine; pad tokens as the registry names them."""
import dataclasses

import numpy as np
import pytest
import torch
from tiny_models import ARCHS, DECODERS, PAD_TOKEN, make_model

from harness.config import RunConfig
from harness.data.splits import EncodedSplit
from harness.errors import UserError
from harness.finetune import batches, cell
from harness.model import loading, pooled_layer
from harness.registry.load import load_models, load_tasks, local_model

POOLED = {"llama", "mistral", "qwen2", "qwen3", "bert", "roberta", "xlm-roberta", "modernbert"}  # DeBERTa: full


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """arch -> a saved tiny model folder, built on first use."""
    folders = {}

    def get(arch):
        if arch not in folders:
            folders[arch] = make_model(tmp_path_factory.mktemp("archs") / arch, arch)
        return folders[arch]

    return get


def _spec(folder, arch):
    """What a models.yaml entry says about it: the family, and the pad token for tokenizers without one."""
    return dataclasses.replace(local_model(folder), pad_token=PAD_TOKEN.get(arch))


def _load(folder, arch, pooled=True):
    spec = _spec(folder, arch)
    tok = loading.load_tokenizer(spec, str(folder), None, False)
    torch.manual_seed(0)
    model = loading.load_model(spec, str(folder), None, 2, ["A", "B"], tok, RunConfig(), False).eval()
    if pooled:
        pooled_layer.install(model)
    return spec, tok, model


def _texts(tok, family):
    """A short and a long text, as the routine formats them (BOS/EOS glued in for decoders; a pair for encoders)."""
    if family == "decoder":
        bos, eos = tok.bos_token or "", tok.eos_token or ""
        return [tok(f"{bos}curto{eos}")], [tok(f"{bos}um texto bem mais longo que o outro{eos}")]
    return [tok("curto", "sim", return_token_type_ids=True)], [tok("um texto bem mais longo", "que o outro",
                                                                    return_token_type_ids=True)]


def _split(encodings, with_types):
    ids = [e["input_ids"] for e in encodings]
    lengths = [len(x) for x in ids]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    types = np.concatenate([np.asarray(e["token_type_ids"], dtype=np.int8) for e in encodings]) if with_types else None
    return EncodedSplit(np.concatenate([np.asarray(x, dtype=np.int32) for x in ids]), offsets,
                        np.zeros(len(ids), dtype=np.int64), types)


@pytest.mark.slow  # two short trainings per architecture: about 5 s each on a quiet 2-core CPU
@pytest.mark.parametrize("arch", ARCHS)
def test_trains_every_weight_and_a_seed_fixes_the_numbers(arch, tiny, toy_env, tmp_path):
    """Six steps through run_cell: the loss falls, every pretrained tensor moves (gradients reach the whole
    model, through the pooled last layer where it runs), and the same seed gives the same numbers."""
    from safetensors.torch import load_file

    folder = tiny(arch)
    spec = _spec(folder, arch)
    task = load_tasks()["toy"]
    kwargs = dict(seed=3, limit=32, mirror=str(toy_env["mirror"]), log=lambda m: None)
    first = cell.run_cell(task, spec, RunConfig(epochs=3, learning_rate=1e-2, save_every_epoch=True),
                             checkpoint_dir=tmp_path, **kwargs)
    again = cell.run_cell(task, spec, RunConfig(epochs=3, learning_rate=1e-2), **kwargs)
    losses = [e.train_loss for e in first.fits[0].epochs]
    assert losses[-1] < losses[0], losses
    assert [e.test_predictions for e in again.fits[0].epochs] == [e.test_predictions for e in first.fits[0].epochs]
    assert [e.train_loss for e in again.fits[0].epochs] == losses
    assert first.model.family == ("decoder" if arch in DECODERS else "encoder")
    assert first.model.last_layer == ("pooled" if arch in POOLED else "full")
    before, after = load_file(folder / "model.safetensors"), load_file(tmp_path / "train-epoch3" / "model.safetensors")
    shared = sorted(set(before) & set(after))
    assert len(shared) > 10
    assert [k for k in shared if torch.equal(before[k], after[k])] == []


@pytest.mark.parametrize("arch", ARCHS)
def test_padding_does_not_change_the_logits(arch, tiny):
    """A text alone and the same text padded in a batch with a longer one give the same logits (the pad
    invariance test of every architecture; for decoders this also checks the pooled position)."""
    folder = tiny(arch)
    spec, tok, model = _load(folder, arch)
    assert model.config.pad_token_id == tok.pad_token_id is not None  # the decoders' pooling reads the config's
    short, long = _texts(tok, spec.family)
    split = _split(short + long, with_types=getattr(model.config, "type_vocab_size", 0) > 1)  # as the routine
    cpu = torch.device("cpu")
    alone, _, _, _ = batches.collate(split, np.array([0]), tok.pad_token_id, cpu)
    batch, _, real, processed = batches.collate(split, np.array([0, 1]), tok.pad_token_id, cpu)
    n = len(short[0]["input_ids"])
    assert batch["input_ids"][0, n:].eq(tok.pad_token_id).all() and real < processed  # really padded
    with torch.no_grad():
        a, b = model(**alone).logits[0], model(**batch).logits
    torch.testing.assert_close(a, b[0], rtol=1e-4, atol=1e-5)
    assert not torch.allclose(a, b[1])  # and the texts do differ


def _last_layer(model):
    base = model.base_model
    return base.layers[-1] if hasattr(base, "layers") else base.encoder.layer[-1]


@pytest.mark.parametrize("arch", ARCHS)
def test_the_classifier_reads_the_first_token_or_the_last_real_one(arch, tiny):
    """Noise added to the last layer's output everywhere but one position leaves the logits alone; noise at
    that position changes them: the head reads the first token (encoders) or the last real token (decoders)."""
    folder = tiny(arch)
    spec, tok, model = _load(folder, arch, pooled=False)
    short, long = _texts(tok, spec.family)
    split = _split(short + long, with_types=arch == "bert")
    batch, _, _, _ = batches.collate(split, np.array([0, 1]), tok.pad_token_id, torch.device("cpu"))
    lengths = torch.tensor([len(short[0]["input_ids"]), len(long[0]["input_ids"])])
    read = lengths - 1 if arch in DECODERS else torch.zeros(2, dtype=torch.long)
    at_read = torch.zeros(batch["input_ids"].shape, dtype=torch.bool)
    at_read[torch.arange(2), read] = True

    def logits_with_noise(where):
        def add_noise(module, args, output):
            hidden = output[0] if isinstance(output, tuple) else output
            noisy = hidden + 3.0 * where[..., None] * torch.randn_like(hidden)
            return (noisy, *output[1:]) if isinstance(output, tuple) else noisy

        handle = _last_layer(model).register_forward_hook(add_noise)
        try:
            with torch.no_grad():
                return model(**batch).logits
        finally:
            handle.remove()

    with torch.no_grad():
        clean = model(**batch).logits
    torch.testing.assert_close(logits_with_noise(~at_read), clean)
    assert (logits_with_noise(at_read) - clean).abs().amax(-1).min() > 1e-3


def _registry_entry(toy_env, folder, pad_token=None):
    line = f"  pad_token: {pad_token!r}\n" if pad_token is not None else ""
    models = toy_env["registry"] / "models.yaml"
    models.write_text(models.read_text() + f"tiny-qwen:\n  display_name: Tiny Qwen\n  family: decoder\n"
                                           f"  path: {folder}\n{line}")
    return load_models()["tiny-qwen"], models


def test_a_tokenizer_without_pad_token_is_refused_by_default(toy_env, tiny):
    spec, _ = _registry_entry(toy_env, tiny("qwen3"))
    with pytest.raises(UserError, match="no pad token.*field pad_token"):
        loading.load_tokenizer(spec, spec.path, None, False)


def test_the_entry_names_the_pad_token(toy_env, tiny):
    spec, _ = _registry_entry(toy_env, tiny("qwen3"), "<|pad|>")
    tok = loading.load_tokenizer(spec, spec.path, None, False)
    assert tok.pad_token == "<|pad|>" and tok.pad_token_id == tok.get_vocab()["<|pad|>"] != tok.eos_token_id


@pytest.mark.parametrize("pad, message", [
    ("<|endoftext|>", "field 'pad_token' names the EOS token"),
    ("<|nope|>", "field 'pad_token' names '<|nope|>', which is not in the tokenizer's vocabulary"),
])
def test_a_bad_pad_token_names_the_file_and_field(toy_env, tiny, pad, message):
    spec, models_file = _registry_entry(toy_env, tiny("qwen3"), pad)
    with pytest.raises(UserError, match=message) as err:
        loading.load_tokenizer(spec, spec.path, None, False)
    assert str(err.value).startswith(f"{models_file}: tiny-qwen: field 'pad_token'") and "\n" not in str(err.value)
