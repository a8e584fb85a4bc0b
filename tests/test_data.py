import numpy as np
import pytest

from harness.data import prepare, splits
from harness.errors import UserError
from harness.registry.load import load_tasks
from harness.registry.parse import parse_task


def example(split, i):
    """Token ids (and type ids) of example i of an EncodedSplit."""
    a, b = split.offsets[i], split.offsets[i + 1]
    return split.ids[a:b], (None if split.type_ids is None else split.type_ids[a:b])


def test_stratified_subset_keeps_class_shares_and_is_seeded():
    labels = np.array([0] * 300 + [1] * 100)
    sub = splits.stratified_subset(labels, 40, seed=0)
    assert len(sub) == 40 and len(set(sub)) == 40
    assert np.sum(labels[sub] == 1) == 10  # 25% of 40
    assert np.array_equal(sub, splits.stratified_subset(labels, 40, seed=0))
    assert not np.array_equal(sub, splits.stratified_subset(labels, 40, seed=1))


def test_carve_validation_is_disjoint_stratified_and_fixed():
    labels = np.array([0, 1, 2, 3] * 50)
    parts = splits.carve_validation(labels, 40, seed=0)
    assert len(parts["validation"]) == 40 and len(parts["train"]) == 160
    assert not set(parts["validation"]) & set(parts["train"])
    assert np.bincount(labels[parts["validation"]]).tolist() == [10, 10, 10, 10]
    assert np.array_equal(parts["validation"], splits.carve_validation(labels, 40, seed=0)["validation"])


def test_labels_bool_int_and_rejections():
    task = load_tasks()["hatebr"]
    assert splits.encode_labels(task, [True, False, True], "train").tolist() == [1, 0, 1]
    with pytest.raises(UserError, match="outside the declared classes"):
        splits.encode_labels(task, [0, 1, 2], "train")
    with pytest.raises(UserError, match="holds str 'yes'.*label.map"):
        splits.encode_labels(task, ["yes"], "train")


def test_label_map_for_string_labels():
    task = parse_task({"name": "t", "display_name": "T", "hub_id": "o/t", "splits": {"train": "a", "test": "b"},
                       "text": {"decoder": "{x}", "encoder": "{x}"},
                       "label": {"column": "y", "names": ["A", "B"], "map": {"neg": 0, "pos": 1}}}, "t.yaml")
    assert splits.encode_labels(task, ["pos", "neg"], "a").tolist() == [1, 0]


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


def test_subset_of_encoded_split():
    split = splits.EncodedSplit(np.arange(10, dtype=np.int32), np.array([0, 3, 5, 10]), np.array([0, 1, 0]))
    sub = split.subset(np.array([2, 0]))
    assert example(sub, 0)[0].tolist() == [5, 6, 7, 8, 9] and example(sub, 1)[0].tolist() == [0, 1, 2]
    assert sub.labels.tolist() == [0, 0]


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
    assert np.array_equal(second.splits["test"].ids, first.splits["test"].ids)
    full = splits.load_raw(task, str(assin2_mirror))[0]
    assert {k: len(v) for k, v in full.items()} == {"train": 6500, "validation": 500, "test": 2448}


def test_missing_column_is_named(toy_env, tiny_encoder):
    from transformers import AutoTokenizer

    bad = load_tasks()["toy"]
    bad = bad.__class__(**{**bad.__dict__, "encoder_templates": ("{premisse}",)})
    tok = AutoTokenizer.from_pretrained(tiny_encoder)
    with pytest.raises(UserError, match="column 'premisse' not in split 'train'"):
        prepare.prepare(bad, tok, "encoder", max_positions=512, mirror=str(toy_env["mirror"]))


def test_hub_unreachable_points_to_the_mirror(tiny_encoder):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_encoder)
    with pytest.raises(UserError, match=r"cannot load the dataset from the hub.*--mirror DIR"):
        prepare.prepare(load_tasks()["imdb"], tok, "encoder", max_positions=512)


def test_empty_split_is_refused():
    import datasets

    task = load_tasks()["assin2"]
    empty = datasets.Dataset.from_dict({"premise": [], "hypothesis": [], "entailment_judgment": []})
    with pytest.raises(UserError, match="split 'test' is empty"):
        splits._to_raw(task, empty, "test")


def test_text_column_of_the_wrong_type_is_refused():
    import datasets

    task = load_tasks()["assin2"]
    ds = datasets.Dataset.from_dict({"premise": [1, 2], "hypothesis": ["a", "b"], "entailment_judgment": [0, 1]})
    with pytest.raises(UserError, match="column 'premise' in split 'train' holds int, not text"):
        splits._to_raw(task, ds, "train")
