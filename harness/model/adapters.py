"""Training only part of a model: LoRA and QLoRA through peft, and gradient checkpointing.

`prepare()` takes a loaded sequence classifier and returns the model to train plus what the record
says about it. With LoRA, the backbone (the pretrained model under `model.base_model_prefix`) is frozen
and low-rank adapters go on its linear layers; everything outside the backbone is the classification
head (`score` for Llama-style decoders; `classifier` for BERT; pooler and classifier for DeBERTa) and is
trained in full, as peft's modules_to_save. QLoRA is the same on base weights loaded in 4 bits (NF4,
double quantisation, bf16 compute: the QLoRA paper's recipe) through bitsandbytes, on CUDA only.

Gradient checkpointing (non-reentrant, so frozen inputs need no trick) recomputes each layer's forward in
the backward pass, with the random state of the first pass: the same loss and gradients for less memory.
"""
from __future__ import annotations

import importlib.util
import re
import warnings

from harness.errors import UserError

METHODS = ("none", "lora", "qlora")
AUTO_TARGETS = "auto"


def check_supported(cfg, device_type: str) -> None:
    """Refuse, before anything is loaded, what this machine cannot run."""
    if cfg.peft == "none":
        return
    if importlib.util.find_spec("peft") is None:
        raise UserError(f"--peft {cfg.peft} needs the package 'peft': pip install 'poeta-harness[lora]'")
    if cfg.peft == "qlora":
        if device_type != "cuda":
            raise UserError(f"--peft qlora needs a CUDA GPU (4-bit base weights through bitsandbytes) and this run's "
                            f"device is {device_type}: use --peft lora, or run on a GPU")
        if importlib.util.find_spec("bitsandbytes") is None:
            raise UserError("--peft qlora needs the package 'bitsandbytes': pip install 'poeta-harness[qlora]'")


def load_options(cfg, device) -> dict:
    """Extra from_pretrained arguments: QLoRA quantises the base weights to 4 bits as they load."""
    if cfg.peft != "qlora":
        return {}
    import torch
    from transformers import BitsAndBytesConfig

    quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                               bnb_4bit_compute_dtype=torch.bfloat16)
    index = torch.cuda.current_device() if device.index is None else device.index
    return {"quantization_config": quant, "device_map": {"": index}}  # quantised as it lands on the GPU


# ------------------------------------------------------------------ which modules

def backbone(model):
    """The pretrained part of a transformers sequence classifier (BertModel, LlamaModel, ...)."""
    return getattr(model, model.base_model_prefix)


def head_modules(model) -> list[str]:
    """Top-level modules with parameters outside the backbone: the freshly initialised head."""
    return [name for name, child in model.named_children()
            if name != model.base_model_prefix and any(True for _ in child.parameters())]


def linear_names(model) -> list[str]:
    """The distinct names of the backbone's linear layers (the suffixes peft matches targets against)."""
    import torch

    return sorted({name.rsplit(".", 1)[-1] for name, m in backbone(model).named_modules()
                   if isinstance(m, torch.nn.Linear)})


def resolve_targets(model, targets: str) -> list[str]:
    """'auto' = every linear layer of the backbone (attention and feed-forward: what QLoRA found to match
    full fine-tuning); else the comma-separated names given, each of which must name a linear layer."""
    available = linear_names(model)
    if targets == AUTO_TARGETS:
        return available
    wanted = [t.strip() for t in targets.split(",") if t.strip()]
    unknown = [t for t in wanted if t not in available]
    if unknown:
        raise UserError(f"--lora-targets: no linear layer named {', '.join(unknown)} in {type(model).__name__} "
                        f"(its linear layers: {', '.join(available)})")
    return wanted


# ------------------------------------------------------------------ prepare a model for training

def prepare(model, cfg):
    """(model to train, the record's Adaptation). Full fine-tuning returns the model itself."""
    from harness.record.schema import Adaptation, LoraSettings

    base_parameters = count_parameters(model)[1]
    lora_settings = None
    if cfg.peft != "none":
        from peft import LoraConfig, get_peft_model

        targets = resolve_targets(model, cfg.lora_targets)
        heads = head_modules(model)
        if cfg.peft == "qlora":
            from peft import prepare_model_for_kbit_training

            # Norms and other unquantised weights in fp32; checkpointing is switched on below, our way.
            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
        lora = LoraConfig(task_type="SEQ_CLS", r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                          target_modules=targets, modules_to_save=list(heads), bias="none")
        with warnings.catch_warnings():  # peft asks transformers a question under its deprecated name
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            model = get_peft_model(model, lora)
        _check_only_adapters_and_head_train(model)
        lora_settings = LoraSettings(
            r=cfg.lora_r, alpha=cfg.lora_alpha, dropout=cfg.lora_dropout, targets=targets, trained_in_full=heads,
            quantization="nf4, double quantisation, bf16 compute (bitsandbytes)" if cfg.peft == "qlora" else None)
    if cfg.gradient_checkpointing:
        enable_gradient_checkpointing(transformers_model(model))
    trainable, total = count_parameters(model)
    return model, Adaptation(method="full" if cfg.peft == "none" else cfg.peft, trainable_parameters=trainable,
                             total_parameters=total, base_parameters=base_parameters,
                             gradient_checkpointing=cfg.gradient_checkpointing, lora=lora_settings)


def transformers_model(model):
    """The transformers model inside a peft wrapper (or the model itself)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def enable_gradient_checkpointing(model) -> None:
    kwargs = {"use_reentrant": False}  # torch's recommended form (the reentrant one needs inputs that require grad)
    if hasattr(model, "activation_checkpointing_enable"):  # the name since transformers 5.x
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    model.config.use_cache = False


def count_parameters(model) -> tuple[int, int]:
    """(trainable, total) parameters of the model as trained: LoRA's frozen spare copy of the head
    (kept to disable the adapter) is not counted; 4-bit weights count as the parameters they pack."""
    trainable = total = 0
    for name, p in model.named_parameters():
        if ".original_module." in name:
            continue
        n = p.numel()
        if type(p).__name__ == "Params4bit":  # two 4-bit values per byte of storage
            n *= 2 * p.element_size()
        total += n
        trainable += n if p.requires_grad else 0
    return trainable, total


def _check_only_adapters_and_head_train(model) -> None:
    """peft matches module names by suffix; make sure nothing else was left trainable by accident."""
    stray = [n for n, p in model.named_parameters()
             if p.requires_grad and not re.search(r"\.(lora_[AB]|modules_to_save)\.", n)]
    if stray:
        raise RuntimeError(f"LoRA left base parameters trainable: {stray[:3]}")
