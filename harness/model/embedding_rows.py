"""An exact shortcut for training the input embeddings: only the rows the training split uses are trained as rows.

A batch's gradient of the word embeddings is zero outside its tokens' rows, yet a dense gradient costs passes
over the whole vocabulary-sized matrix every step: filling it, clipping it, AdamW over it and its two moments
(MiniLM-L6: 30,522 x 384, half the model; Assin2's training texts use 1,521 of those rows). A row that no
training text uses has zero moments for the whole fit, so AdamW only decays it: p <- p * (1 - lr * weight_decay)
each step. So during a fit the used rows are a parameter of their own (a lookup maps each token id to its row),
clipped with the others and trained by the same AdamW in the group the full matrix would be in; the other rows'
decay is a running product, applied when the full matrix is next read: an evaluation (the module's forward out
of training mode), a checkpoint, the end of the fit (`remove`). The same function up to float rounding: the
clipping norm sums the same squares in another order, and the decay is one multiply instead of one per step.
The model's parameters, names and checkpoints stay as they are: the row parameter lives here, not in the model.

Not installed (the full matrix is trained densely, as before) where that could be wrong: embeddings that are
not a plain nn.Embedding or use its max_norm / scale_grad_by_freq / sparse options, embeddings tied to another
layer (an output layer reads every row), and data-parallel runs (the wrapper syncs the model's parameters only).
Frozen embeddings (LoRA) need nothing.
"""
from __future__ import annotations

import numpy as np

from harness.errors import RunFailed


def _input_embeddings(model):
    try:
        return model.get_input_embeddings()
    except (NotImplementedError, AttributeError):  # remote code may not say which module they are
        return None


def why_not(model) -> str | None:
    """Why the shortcut cannot serve this model (None: it can). `model` is the transformers model."""
    import torch

    emb = _input_embeddings(model)
    if emb is None:
        return "the model does not say which module its input embeddings are"
    if type(emb) is not torch.nn.Embedding:
        return f"the input embeddings are a {type(emb).__name__}, not a plain nn.Embedding"
    if emb.max_norm is not None or emb.scale_grad_by_freq or emb.sparse:
        return "the input embeddings use max_norm, scale_grad_by_freq or sparse gradients"
    uses = sum(p is emb.weight for _, p in model.named_parameters(remove_duplicate=False))
    if uses > 1:
        return "the input embeddings are tied to another layer, which reads every row"
    return None


def is_frozen(model) -> bool:
    emb = _input_embeddings(model)
    weight = getattr(emb, "weight", None)
    return weight is not None and not weight.requires_grad


class UsedRows:
    """The used rows of a model's input embeddings, trained as a parameter of their own during one fit."""

    def __init__(self, model, token_ids: np.ndarray, pad_id: int | None):
        import torch

        self.embedding = model.get_input_embeddings()
        weight = self.embedding.weight
        self.name = next(n for n, p in model.named_parameters() if p is weight)  # for the optimizer's groups
        used = np.unique(np.asarray(token_ids, dtype=np.int64))
        if pad_id is not None:  # batches are padded with it
            used = np.union1d(used, [pad_id])
        self.rows = torch.as_tensor(used, device=weight.device)
        self.lookup = torch.full((weight.shape[0],), -1, dtype=torch.long, device=weight.device)
        self.lookup[self.rows] = torch.arange(len(used), device=weight.device)
        self.parameter = torch.nn.Parameter(weight.detach()[self.rows].clone())
        pad = self.embedding.padding_idx  # its row gets no gradient; as a row here, the same
        row = int(self.lookup[pad]) if pad is not None else -1
        self.padding_row = row if row >= 0 else None
        self.pending_decay = 1.0  # the product of the other rows' decay factors since the full matrix was written
        self.current = True  # the full matrix holds the rows' latest values
        self._hook = None
        weight.requires_grad_(False)  # not in the optimizer or the clipping: the row parameter is
        self.embedding.forward = self._forward

    def __len__(self) -> int:
        return len(self.rows)

    def track(self, optimizer) -> None:
        """Count each optimizer step's decay of the unused rows: the group's lr as that step used it (the
        schedule moves it after the step) and its weight decay, as torch's AdamW applies them."""
        group = next(g for g in optimizer.param_groups if any(p is self.parameter for p in g["params"]))

        def after_step(opt, args, kwargs):
            self.pending_decay *= 1.0 - float(group["lr"]) * group["weight_decay"]
            self.current = False

        self._hook = optimizer.register_step_post_hook(after_step)

    def write_back(self) -> None:
        """Bring the full matrix up to date: every row decayed as pending, the used rows overwritten."""
        import torch

        if self.current:
            return
        with torch.no_grad():
            weight = self.embedding.weight
            weight.mul_(self.pending_decay)
            weight[self.rows] = self.parameter.detach().to(weight.dtype)
        self.pending_decay, self.current = 1.0, True

    def check_trained(self) -> None:
        """After the first backward pass: the rows have a gradient, so the model read its embeddings through
        their module (one that reads the matrix itself would train with the embeddings frozen, silently)."""
        if self.parameter.grad is None:
            raise RunFailed("the model reads its input embeddings' matrix without calling their module, so their "
                            "used rows would not train: rerun with --no-used-embedding-rows")

    def remove(self, after_error: bool = False) -> None:
        """Write the matrix back and give the model its embedding as it was (trainable, its own forward).
        after_error: the fit is failing, and a failure to write back must not hide why."""
        try:
            self.write_back()
        except Exception:
            if not after_error:
                raise
        finally:
            if self._hook is not None:
                self._hook.remove()
            del self.embedding.forward
            self.embedding.weight.requires_grad_(True)

    def _forward(self, ids):
        import torch.nn.functional as F

        if not self.embedding.training:  # evaluation may read any row
            self.write_back()
            return type(self.embedding).forward(self.embedding, ids)
        return F.embedding(self.lookup[ids], self.parameter, self.padding_row)
