"""The pad token a model entry names (models.yaml field `pad_token`), for tokenizers that ship without one.

Batched classification pads every text to the longest in its batch, and decoders classify on the last token
that is not the pad token; so the pad token must be a token of the vocabulary (no new embedding row: the
model stays as published) and, for decoders, never EOS, which ends every text.
"""
from __future__ import annotations

from harness.errors import UserError
from harness.registry.specs import ModelSpec


def apply_pad_token(spec: ModelSpec, tokenizer) -> None:
    """Set the tokenizer's pad token to the one the entry names; nothing when it names none."""
    name = spec.pad_token
    if name is None:
        return
    where = f"{spec.defined_in or 'models.yaml'}: {spec.name}: field 'pad_token'"
    if name not in tokenizer.get_vocab():
        raise UserError(f"{where} names {name!r}, which is not in the tokenizer's vocabulary: name one of its "
                        f"tokens that never ends a text (an unused special token, or <unk>)")
    if spec.family == "decoder" and tokenizer.eos_token is not None and name == tokenizer.eos_token:
        raise UserError(f"{where} names the EOS token {name!r}: EOS ends every text and decoders classify on the "
                        f"last non-pad token, so name another token")
    tokenizer.pad_token = name
