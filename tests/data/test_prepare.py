"""A task's splits formatted per model family, tokenized once and cached."""
import numpy as np
from conftest import example

from harness.data import prepare, splits
from harness.registry.load import load_tasks


def test_decoder_template_glues_bos_eos_and_tokenizer_adds_its_own(tiny_decoder):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_decoder)
    task = load_tasks()["assin2"]
    raw = splits.RawSplit({"premise": ["Um homem"], "hypothesis": ["Alguém"]}, np.array([1]))
    first, second = prepare.format_texts(task, raw, "decoder", tok)
    assert first == ["<s>Um homem<s>Alguém</s>"] and second is None
    enc = prepare.encode(tok, first, second, raw.labels, 512, pairs_need_types=False)
    ids, _ = example(enc, 0)
    assert ids[:2].tolist() == [1, 1] and ids[-1] == 2  # TTL: two BOS at the start, EOS last


def test_encoder_pair_gets_token_type_ids(tiny_encoder):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_encoder)
    task = load_tasks()["assin2"]
    raw = splits.RawSplit({"premise": ["abc"], "hypothesis": ["de"]}, np.array([0]))
    first, second = prepare.format_texts(task, raw, "encoder", tok)
    assert (first, second) == (["abc"], ["de"])
    enc = prepare.encode(tok, first, second, raw.labels, 512, pairs_need_types=True)
    ids, types = example(enc, 0)
    assert types is not None
    # [CLS] a b c [SEP] d e [SEP]: the second segment (and its [SEP]) has type 1
    assert types.tolist() == [0, 0, 0, 0, 0, 1, 1, 1]
    assert ids[0] == tok.cls_token_id and ids[4] == tok.sep_token_id


def test_real_assin2_loads_from_the_mirror_and_caches(assin2_mirror, tiny_encoder):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_encoder)
    task = load_tasks()["assin2"]
    first = prepare.prepare(task, tok, "encoder", max_positions=512, mirror=str(assin2_mirror), limit=50)
    assert {k: len(v) for k, v in first.splits.items()} == {"train": 50, "validation": 50, "test": 50}
    assert first.source.endswith("nilc-nlp/assin2") and first.revision.startswith("sha256:")
    assert not first.cache_hit
    second = prepare.prepare(task, tok, "encoder", max_positions=512, mirror=str(assin2_mirror), limit=50)
    assert second.cache_hit and second.fingerprint == first.fingerprint
    # The splits come in one order, read from the data or from the cache (which keeps them by name).
    assert list(first.splits) == list(second.splits) == ["train", "validation", "test"]
    assert np.array_equal(second.splits["test"].ids, first.splits["test"].ids)
    full = splits.load_raw(task, str(assin2_mirror))[0]
    assert {k: len(v) for k, v in full.items()} == {"train": 6500, "validation": 500, "test": 2448}
