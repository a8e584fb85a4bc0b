"""Models: where a registered model lives (hub, mirror, package, folder), and loading its
tokenizer, config and sequence-classification model; the device a run uses."""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

from harness.config import RunConfig
from harness.errors import UserError, short
from harness.hub.mirror import MIRROR_ENV, mirror_entry
from harness.model import pad_token
from harness.registry.specs import ModelSpec


def model_location(spec: ModelSpec, mirror: str | None) -> tuple[str, str | None]:
    """(path or hub id, revision). A mirror's DIR/<hub id>/ wins over the hub."""
    if spec.path:
        if not Path(spec.path).is_dir():
            raise UserError(f"model {spec.name}: folder '{spec.path}' does not exist")
        return spec.path, None
    if spec.package:
        try:
            module = importlib.import_module(spec.package)
        except ImportError:
            extra = f"pip install 'poeta-harness[{spec.extra}]'" if spec.extra else f"install {spec.package}"
            raise UserError(f"model {spec.name} needs the package '{spec.package}': {extra}") from None
        return str(module.get_model_path()), None
    folder = mirror_entry(mirror, spec.hub_id, f"model {spec.name}")
    if folder is not None:
        return str(folder), None
    return spec.hub_id, spec.revision


def _load_failure(spec: ModelSpec, where: str, what: str, exc: Exception) -> UserError:
    reason = short(exc)
    if spec.hub_id and not Path(where).is_dir():
        return UserError(f"model {spec.name}: cannot load the {what} of '{spec.hub_id}' from the hub ({reason}). "
                         f"Offline? Use --mirror DIR (or ${MIRROR_ENV}) with the model at "
                         f"DIR/{spec.hub_id}/, or pass a local model folder as --model")
    return UserError(f"model {spec.name}: cannot load the {what} from '{where}' ({reason})")


def load_tokenizer(spec: ModelSpec, where: str, revision: str | None, trust_remote_code: bool):
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(where, revision=revision, trust_remote_code=trust_remote_code)
    except Exception as exc:
        raise _load_failure(spec, where, "tokenizer", exc) from None
    # transformers 5 builds an empty tokenizer (special tokens only) when a folder has no tokenizer files.
    if not hasattr(tok, "pad_token_id") or len(tok) <= len(set(tok.all_special_ids)) + 1:
        raise UserError(f"model {spec.name}: cannot load the tokenizer from '{where}' (no tokenizer files: "
                        f"save the tokenizer beside the model)")
    pad_token.apply_pad_token(spec, tok)
    if tok.pad_token_id is None:
        raise UserError(f"model {spec.name}: the tokenizer has no pad token; batched classification needs one "
                        f"(name one in the model's models.yaml entry, field pad_token, distinct from EOS for "
                        f"decoders; or add one to the tokenizer)")
    if spec.family == "decoder" and tok.eos_token_id is not None and tok.pad_token_id == tok.eos_token_id:
        print(f"warning: model {spec.name}: pad token equals EOS; with EOS appended to every text the "
              f"last-token pooling lands on the token before EOS (field pad_token in models.yaml names another)",
              file=sys.stderr, flush=True)
    return tok


def load_config(spec: ModelSpec, where: str, revision: str | None, trust_remote_code: bool):
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(where, revision=revision, trust_remote_code=trust_remote_code)
    except Exception as exc:
        raise _load_failure(spec, where, "config", exc) from None


def load_model(spec: ModelSpec, where: str, revision: str | None, num_labels: int, label_names, tokenizer,
               cfg: RunConfig, trust_remote_code: bool, problem_type: str | None = None, extra: dict | None = None):
    """A sequence classifier with a new head of num_labels outputs (1 with problem_type "regression").
    extra: more from_pretrained arguments (QLoRA's quantization config and device map: adapters.load_options)."""
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    # The load report lists the new classification head as "missing": expected here, so kept quiet.
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            where, revision=revision, num_labels=num_labels,
            id2label=dict(enumerate(label_names)), label2id={n: i for i, n in enumerate(label_names)},
            # sdpa (the default) where the architecture has it, eager where not (DeBERTa): transformers' own
            # choice when none is named; the record's model.attn_implementation says which ran.
            attn_implementation=None if cfg.attn_implementation == "sdpa" else cfg.attn_implementation,
            trust_remote_code=trust_remote_code, **({"problem_type": problem_type} if problem_type else {}),
            **(extra or {}))
    except Exception as exc:
        raise _load_failure(spec, where, "model", exc) from None
    # The pooling of decoders reads config.pad_token_id; the tokenizer's pad token alone is not enough.
    model.config.pad_token_id = tokenizer.pad_token_id
    return model


def resolve_device(cfg: RunConfig):
    import torch

    if cfg.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(cfg.device)
    except RuntimeError:
        raise UserError(f"unknown device '{cfg.device}': use auto, cpu or cuda[:N]") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device '{cfg.device}' asked for, but no CUDA GPU is visible: use --device cpu")
    return device
