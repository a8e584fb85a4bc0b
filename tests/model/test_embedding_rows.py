"""The input embeddings' used rows trained as a parameter of their own: the same fit as the dense matrix."""

import numpy as np
import pytest
import torch
from conftest import encoded_split
from tiny_models import tiny_config

from harness.config import RunConfig
from harness.finetune import fit
from harness.finetune.objective import Objective
from harness.model import embedding_rows

VOCAB, USED = 50, range(5, 20)  # training texts use ids 5-19; 0 is the pad; 20-49 only ever decay


def _bert(seed=0, pad_id=0):
    from transformers import BertForSequenceClassification

    torch.manual_seed(seed)
    return BertForSequenceClassification(tiny_config("bert", VOCAB, pad_token_id=pad_id, initializer_range=0.3,
                                                     num_labels=2))


def _fit(prepare=lambda model: None, **settings):
    """Three epochs of train_fit on 24 texts of ids 5-19 (batches of 8: 9 steps, the schedule decaying the
    learning rate), a strong weight decay so that the unused rows visibly move. (model, its Fit)."""
    model = _bert()
    prepare(model)
    rng = np.random.default_rng(0)
    seqs = [rng.integers(USED.start, USED.stop, size=n) for n in rng.integers(3, 12, size=24)]
    train = encoded_split(seqs, rng.integers(0, 2, size=24))
    test = encoded_split([[5, 30, 41], [44, 6]], [0, 1])  # unused rows read in evaluation
    cfg = RunConfig(epochs=3, batch_size=8, learning_rate=1e-2, weight_decay=0.5, precision="fp32", **settings)
    result = fit.train_fit(model=model, train=train, validation=None, test=test,
                           objective=Objective("classification", ("accuracy",)), cfg=cfg, seed=0, pad_id=0,
                           device=torch.device("cpu"), label="t", train_set="train", validation_source=None,
                           checkpoint_dir=None, log=lambda m: None)
    return model, result


def test_training_the_used_rows_gives_the_dense_fit():
    """Every parameter ends as the dense fit's, to float rounding: the used rows trained by AdamW (with clipping
    and the schedule), the others decayed by the product of each step's 1 - lr * weight_decay; the evaluations
    (which read unused rows) agree; the model is left as it was built (names, trainable, its own forward)."""
    rows_model, rows_fit = _fit()
    dense_model, dense_fit = _fit(used_embedding_rows=False)
    assert (rows_fit.embedding_rows, dense_fit.embedding_rows) == (len(USED) + 1, None)  # + the pad row
    start = _bert().bert.embeddings.word_embeddings.weight.detach()
    end = dense_model.bert.embeddings.word_embeddings.weight.detach()
    # The unused rows moved (only by the decay) far beyond the tolerance below: a missed decay would show.
    decay = 1.0
    for step in range(9):  # the linear schedule's learning rate at each of the 9 steps
        decay *= 1 - 1e-2 * (9 - step) / 9 * 0.5
    torch.testing.assert_close(end[20:], start[20:] * decay, rtol=1e-5, atol=0)
    assert float((end[20:] - start[20:]).abs().max()) > 1e-2
    assert rows_model.state_dict().keys() == dense_model.state_dict().keys()
    for (name, a), b in zip(rows_model.state_dict().items(), dense_model.state_dict().values(), strict=True):
        if name.endswith("key.bias"):  # its gradient is 0 but for rounding (softmax ignores a shift), which AdamW
            continue  # turns into steps of +-lr: a rounding difference anywhere moves it by lr
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4, msg=lambda m, n=name: f"{n}: {m}")  # AdamW: ~1e-2 a step
    for a, b in zip(rows_fit.epochs, dense_fit.epochs, strict=True):
        assert a.test_predictions == b.test_predictions
        assert a.test.loss == pytest.approx(b.test.loss, rel=1e-5)
    embedding = rows_model.get_input_embeddings()
    assert embedding.weight.requires_grad and "forward" not in vars(embedding)


def test_evaluation_reads_the_matrix_written_back():
    """Out of training mode the embedding returns the full matrix's rows, brought up to date first: the used
    rows as trained, the others decayed."""
    model = _bert(pad_id=30)  # the pad's row is not row 0 among the used ones
    weight = model.get_input_embeddings().weight
    before = weight.detach().clone()
    rows = embedding_rows.UsedRows(model, np.array([7, 5, 7]), pad_id=30)
    optimizer = fit.build_optimizer(model, RunConfig(learning_rate=0.1, weight_decay=0.5),
                                    extra=((rows.name, rows.parameter),))
    rows.track(optimizer)
    ids = torch.tensor([[5, 7, 30]])
    model.get_input_embeddings()(ids).sum().backward()
    assert rows.padding_row == 2 and not rows.parameter.grad[2].any() and rows.parameter.grad[:2].all()
    optimizer.step()
    model.eval()
    out = model.get_input_embeddings()(torch.tensor([[5, 33]]))[0]
    torch.testing.assert_close(out[1], before[33] * (1 - 0.1 * 0.5))
    torch.testing.assert_close(out[0], rows.parameter[0].detach())  # id 5: the first used row
    assert not torch.equal(out[0], before[5] * (1 - 0.1 * 0.5))  # the used row was trained, not only decayed
    assert len(rows) == 3  # ids 5, 7 and the pad, 30


def test_a_model_that_reads_the_matrix_itself_stops_the_fit_and_gets_its_embedding_back():
    """Were the module bypassed, the embeddings would train frozen: the first step says so, and the model
    leaves the failed fit as it came (trainable matrix, its own forward)."""
    from harness.errors import RunFailed

    def bypass(model):
        embeddings = model.bert.embeddings
        original = embeddings.forward

        def forward(input_ids=None, **kwargs):
            kwargs["inputs_embeds"] = torch.nn.functional.embedding(input_ids, embeddings.word_embeddings.weight)
            return original(input_ids=None, **kwargs)

        embeddings.forward = forward
        bypass.model = model

    with pytest.raises(RunFailed, match="--no-used-embedding-rows"):
        _fit(prepare=bypass)
    embedding = bypass.model.get_input_embeddings()
    assert embedding.weight.requires_grad and "forward" not in vars(embedding)


def test_tied_or_unusual_embeddings_are_trained_densely():
    from transformers import BertForMaskedLM

    tied = BertForMaskedLM(tiny_config("bert", VOCAB))
    assert "tied" in embedding_rows.why_not(tied)
    model = _bert()
    assert embedding_rows.why_not(model) is None
    model.bert.embeddings.word_embeddings.max_norm = 1.0
    assert "max_norm" in embedding_rows.why_not(model)
