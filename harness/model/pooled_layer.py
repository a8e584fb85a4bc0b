"""An exact shortcut for sequence classification: the last layer computed only where the head reads.

The classification head reads one position per row: the first token ([CLS] / <s>) for BERT, RoBERTa,
XLM-RoBERTa and ModernBERT with `classifier_pooling: cls`; the rightmost token that is not the pad token for
Llama, Mistral, Qwen2 and Qwen3 (transformers' own pooling rule). In the last layer every other position's
query, attention output and feed-forward block feeds nothing: about 10/12 of that layer's work, so
1/num_layers of the model's. `install()` gives the model's last layer a forward that computes the read rows
only (keys and values still come from every token, with the mask the layer is given) and passes the other
rows through as they came in; nothing downstream reads them. Results are the same up to float rounding; the
parameters, and so checkpoints, are untouched.

Never silently wrong:
- the read positions are computed from the input ids by the model's own forward, handed to the last layer of
  that same call and bound into it (a gradient-checkpointing recompute reuses them); a call that did not come
  through the model's forward (the inner model called directly) gets the full layer;
- calls whose outputs would show the skipped rows or that this code does not know get the full layer:
  `output_hidden_states` / `output_attentions` (argument or config), `inputs_embeds`, a cache holding earlier
  tokens, cross-attention, a 2-D or non-tensor mask, extra arguments;
- other classifiers keep their own forward: DeBERTa (v1 and v2: relative-position attention in both directions,
  not a simple row), ModernBERT with mean pooling (reads every position), other attention kernels than
  sdpa/eager (flash attention unpads the batch).
A model wrapped by peft is handled through its base model; LoRA layers are called as modules, so adapters act
on the computed rows as they would in the full layer.
"""
from __future__ import annotations

import functools
import inspect
import types
from dataclasses import dataclass
from typing import Callable

from harness.model.layer_rows import bert_rows, decoder_rows, modernbert_rows

SUPPORTED_ATTENTION = ("sdpa", "eager")
_STATE = "_pooled_layer"  # attribute on the patched model and layer: {"arch": ..., "slot": {...}}
_OUTPUT_FLAGS = ("output_hidden_states", "output_attentions")


@dataclass(frozen=True)
class _Arch:
    layers: Callable  # model -> the list of its encoder/decoder layers
    layer_class: str
    reads: str  # "first" or "last_non_pad"
    rows: Callable  # the last layer's computation at the read rows: (layer, positions, hidden, args) -> hidden
    named: tuple[str, ...]  # the layer's arguments the row computation understands


def install(model) -> bool:
    """Patch the last layer of a supported sequence classifier (or of the base model under a peft wrapper);
    False (nothing changed) where `why_not` gives a reason. Installing twice changes nothing."""
    target = _unwrap(model)
    if why_not(target) is not None:
        return False
    if is_installed(target):
        return True
    arch_name = type(target).__name__
    layer = _last_layer(target, _ARCHS[arch_name])
    slot: dict = {}  # shared by the model's forward (writes the positions) and the layer's (takes them)
    runs = {"pooled": 0, "full": 0}  # classifier calls that ran the read rows / the full layer
    setattr(target, _STATE, {"arch": arch_name, "slot": slot, "runs": runs})
    setattr(layer, _STATE, {"arch": arch_name, "slot": slot, "runs": runs})
    # No closures over the model: a deepcopy of the model carries forwards bound to the copy.
    target.forward = _ModelForward(target)
    layer.forward = types.MethodType(_layer_forward, layer)
    return True


def is_installed(model) -> bool:
    """Whether the model's last layer runs the shortcut."""
    target = _unwrap(model)
    state = getattr(target, _STATE, None)
    if state is None or "forward" not in vars(target):
        return False
    layer = _last_layer(target, _ARCHS[state["arch"]])
    return "forward" in vars(layer) and getattr(layer, _STATE, None) is not None


def which_ran(model) -> str:
    """What the record says (model.last_layer): "pooled" where every classifier call since install ran the
    read rows, "full" where none did (or it is not installed), "mixed" where some calls needed the full layer."""
    target = _unwrap(model)
    runs = getattr(target, _STATE, {}).get("runs") if is_installed(target) else None
    if not runs or not runs["pooled"]:
        return "full"
    return "mixed" if runs["full"] else "pooled"


def why_not(model) -> str | None:
    """Why the shortcut cannot be installed on this model (None: it can, or already is)."""
    target = _unwrap(model)
    cls = type(target).__name__
    arch = _ARCHS.get(cls)
    if arch is None:
        if cls.startswith("Deberta"):
            return f"{cls}: its attention mixes relative positions both ways; no simple read-rows form"
        return f"{cls} is not among the supported classifiers ({', '.join(sorted(_ARCHS))})"
    attn = getattr(target.config, "_attn_implementation", None)
    if attn not in SUPPORTED_ATTENTION:
        return f"attention '{attn}' (the shortcut supports {', '.join(SUPPORTED_ATTENTION)})"
    if cls == "ModernBertForSequenceClassification" and target.config.classifier_pooling != "cls":
        return f"classifier_pooling '{target.config.classifier_pooling}' reads every position"
    if arch.reads == "first" and getattr(target.config, "is_decoder", False):
        return "a causal (is_decoder) encoder"
    layers = arch.layers(target)
    if arch.reads == "last_non_pad" and len(layers) != target.config.num_hidden_layers:
        return "the model runs fewer layers than it holds"
    layer = layers[-1]
    if type(layer).__name__ != arch.layer_class and not is_installed(target):
        return f"last layer is a {type(layer).__name__}, not a {arch.layer_class}"
    if getattr(layer, "add_cross_attention", False):
        return "cross-attention"
    return None


# ------------------------------------------------------------------ the two patched forwards

class _ModelForward:
    """The classifier's own forward, with the read positions of this very call handed to its last layer.
    A callable object rather than a closure, so that a deepcopy of the model follows the copy, and so that
    inspect.signature(model.forward) still shows the classifier's parameters (peft and trainers read it)."""

    def __init__(self, model):
        self.model = model

    def __call__(self, *args, **kwargs):
        model = self.model
        state = getattr(model, _STATE)
        slot = state["slot"]
        previous = slot.get("positions")
        slot["positions"] = _read_positions(model, args, kwargs)
        if slot["positions"] is None:
            state["runs"]["full"] += 1
        try:
            return type(model).forward(model, *args, **kwargs)
        finally:
            slot["positions"] = previous

    @property
    def __signature__(self):
        sig = _signature(type(self.model))
        return sig.replace(parameters=list(sig.parameters.values())[1:])


def _layer_forward(self, *args, **kwargs):
    import torch

    state = getattr(self, _STATE)
    positions = state["slot"].pop("positions", None)  # taken: one use per model call
    arch = _ARCHS[state["arch"]]
    given = None if positions is None else _layer_arguments(self, arch, args, kwargs, positions)
    if positions is not None:  # a classifier call (a direct call of the inner model is not counted)
        state["runs"]["full" if given is None else "pooled"] += 1
    if given is None:
        return type(self).forward(self, *args, **kwargs)
    hidden_states = given.pop("hidden_states")
    if getattr(self, "gradient_checkpointing", False) and self.training and torch.is_grad_enabled():
        # As transformers' checkpointed layers do: the recompute must not write the cache a second time. The
        # positions are bound into the recomputed function, so the recompute reads the same rows.
        if "cache" in given:
            given["cache"] = None
        return self._gradient_checkpointing_func(functools.partial(arch.rows, self, positions, **given),
                                                 hidden_states)
    return arch.rows(self, positions, hidden_states, **given)


def _read_positions(model, args, kwargs):
    """The positions the head will read for this call, or None where the call must run the full layer."""
    import torch

    if len(args) > 1 or kwargs.get("inputs_embeds") is not None:
        return None
    if kwargs.get("cache") is not None or kwargs.get("past_key_values") is not None:
        return None
    for flag in _OUTPUT_FLAGS:  # the caller would see the rows the shortcut skips
        value = kwargs.get(flag)
        if value or (value is None and getattr(model.config, flag, False)):
            return None
    input_ids = kwargs.get("input_ids", args[0] if args else None)
    if input_ids is None or input_ids.dim() != 2:
        return None
    batch, length = input_ids.shape
    # The class installed on, by name: FSDP (sharding.py) swaps a sharded module's class for a subclass.
    arch_name = getattr(model, _STATE)["arch"]
    arch = _ARCHS[arch_name]
    if arch.reads == "first":
        if arch_name == "ModernBertForSequenceClassification" and model.config.classifier_pooling != "cls":
            return None
        return torch.zeros(batch, dtype=torch.long, device=input_ids.device)
    pad = model.config.get_text_config().pad_token_id
    if pad is None:  # transformers reads the last position (and refuses batches larger than one)
        return torch.full((batch,), length - 1, dtype=torch.long, device=input_ids.device) if batch == 1 else None
    return last_non_pad(input_ids, pad)


def last_non_pad(input_ids, pad_token_id: int):
    """transformers' rule: the rightmost token that is not the pad token (0 for an all-pad row)."""
    import torch

    non_pad = (input_ids != pad_token_id).to(torch.int32)
    return (torch.arange(input_ids.shape[-1], device=input_ids.device, dtype=torch.int32) * non_pad).argmax(-1).long()


def _layer_arguments(layer, arch: _Arch, args, kwargs, positions) -> dict | None:
    """The layer call's arguments by name, or None where the call needs the full layer."""
    import torch

    try:
        bound = _signature(type(layer)).bind(layer, *args, **kwargs)
    except TypeError:
        return None
    given = {}
    for name, value in bound.arguments.items():
        kind = bound.signature.parameters[name].kind
        values = value.items() if kind is inspect.Parameter.VAR_KEYWORD else [(name, value)]
        for key, v in values:
            if key in arch.named:
                given[key] = v
            elif key != "self" and v is not None and v is not False:
                return None  # an argument this code does not know (flash-attention packing, output flags, ...)
    hidden = given.get("hidden_states")
    mask = given.get("attention_mask")
    if not isinstance(hidden, torch.Tensor) or hidden.dim() != 3 or positions.shape != hidden.shape[:1]:
        return None
    if mask is not None and (not isinstance(mask, torch.Tensor) or mask.dim() != 4):
        return None
    if "position_embeddings" in arch.named and given.get("position_embeddings") is None:
        return None
    if given.get("encoder_hidden_states") is not None or given.get("encoder_attention_mask") is not None:
        return None
    cache = given.get("cache")
    if cache is not None:
        if arch.reads == "first":  # an encoder with a cache is a decoder in disguise
            return None
        if cache.get_seq_length(layer.self_attn.layer_idx):  # earlier tokens: the query rows are not these
            return None
    given.pop("encoder_hidden_states", None)
    given.pop("encoder_attention_mask", None)
    return given


@functools.lru_cache(maxsize=None)
def _signature(cls):
    return inspect.signature(cls.forward)  # follows the decorators' __wrapped__ to the layer's own forward


# ------------------------------------------------------------------ shared pieces

def _unwrap(model):
    """The transformers model under a peft wrapper (PeftModel.get_base_model); the model itself otherwise."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def _last_layer(model, arch: _Arch):
    return arch.layers(model)[-1]


_BERT_ARGS = ("hidden_states", "attention_mask", "cache", "encoder_hidden_states", "encoder_attention_mask")
_DECODER_ARGS = ("hidden_states", "attention_mask", "position_embeddings", "cache", "position_ids", "use_cache")

# The supported classifiers, by class: where their layers are, which class the last one must be, which
# position the head reads, and the read-rows form of that layer.
_ARCHS = {
    "BertForSequenceClassification": _Arch(lambda m: m.bert.encoder.layer, "BertLayer", "first", bert_rows,
                                           _BERT_ARGS),
    "RobertaForSequenceClassification": _Arch(lambda m: m.roberta.encoder.layer, "RobertaLayer", "first",
                                              bert_rows, _BERT_ARGS),
    "XLMRobertaForSequenceClassification": _Arch(lambda m: m.roberta.encoder.layer, "XLMRobertaLayer", "first",
                                                 bert_rows, _BERT_ARGS),
    "ModernBertForSequenceClassification": _Arch(lambda m: m.model.layers, "ModernBertEncoderLayer", "first",
                                                 modernbert_rows,
                                                 ("hidden_states", "attention_mask", "position_embeddings")),
    **{f"{name}ForSequenceClassification": _Arch(lambda m: m.model.layers, f"{name}DecoderLayer", "last_non_pad",
                                                 decoder_rows, _DECODER_ARGS)
       for name in ("Llama", "Mistral", "Qwen2", "Qwen3")},
}
