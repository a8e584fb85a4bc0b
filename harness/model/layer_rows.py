"""The last layer's work at the read rows only, one function per layer kind (harness/model/pooled_layer.py installs
them): the query, attention output and feed-forward block at one position per row, keys and values from
every token, each through the model's own modules (so a LoRA wrapper stays in effect) and attention kernel."""
from __future__ import annotations

import sys


def _mask_rows(mask, positions, batch: int, length: int, causal: bool, dtype):
    """The (B, 1, 1, K) mask of the query rows at `positions`. None stays None for encoders (no padding:
    every key); for decoders None means causal without padding, so the row sees keys up to its own position."""
    import torch

    if mask is None:
        if not causal:
            return None
        allowed = torch.arange(length, device=positions.device) <= positions[:, None]
        return torch.zeros(allowed.shape, dtype=dtype, device=positions.device).masked_fill(
            ~allowed, torch.finfo(dtype).min)[:, None, None]
    mask = mask.expand(batch, -1, -1, -1)
    if mask.shape[2] == 1:  # already one row for every query
        return mask
    return mask[torch.arange(batch, device=mask.device), :, positions].unsqueeze(2)


def _attention(module, q, k, v, mask, dropout: float, scaling: float):
    """The model's own attention kernel (sdpa or its eager function) for the read rows: (B, 1, heads x dim)."""
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    eager = sys.modules[type(module).__module__].eager_attention_forward
    interface = ALL_ATTENTION_FUNCTIONS.get_interface(module.config._attn_implementation, eager)
    out, _ = interface(module, q, k, v, mask, dropout=dropout if module.training else 0.0, scaling=scaling)
    return out.reshape(q.shape[0], 1, -1)


def _rope(module, x, cos, sin):
    """The architecture's own rotary embedding (its module's apply_rotary_pos_emb) applied to x alone."""
    rotated, _ = sys.modules[type(module).__module__].apply_rotary_pos_emb(x, x, cos, sin)
    return rotated


def _put_rows(hidden_states, rows, positions, row):
    return hidden_states.index_put((rows, positions), row.squeeze(1).to(hidden_states.dtype))



def bert_rows(layer, positions, hidden_states, attention_mask=None, cache=None):
    """BertLayer / RobertaLayer / XLMRobertaLayer: post-norm attention and feed-forward at the read rows."""
    import torch

    sa = layer.attention.self
    batch, length, _ = hidden_states.shape
    rows = torch.arange(batch, device=hidden_states.device)
    read = hidden_states[rows, positions].unsqueeze(1)
    q = sa.query(read).view(batch, 1, -1, sa.attention_head_size).transpose(1, 2)
    k = sa.key(hidden_states).view(batch, length, -1, sa.attention_head_size).transpose(1, 2)
    v = sa.value(hidden_states).view(batch, length, -1, sa.attention_head_size).transpose(1, 2)
    mask = _mask_rows(attention_mask, positions, batch, length, causal=False, dtype=q.dtype)
    context = _attention(sa, q, k, v, mask, sa.dropout.p, sa.scaling)
    attended = layer.attention.output(context, read)
    return _put_rows(hidden_states, rows, positions, layer.output(layer.intermediate(attended), attended))


def modernbert_rows(layer, positions, hidden_states, attention_mask=None, position_embeddings=None):
    """ModernBertEncoderLayer: pre-norm, fused QKV, rotary, local or global mask as given."""
    import torch

    attn = layer.attn
    batch, length, _ = hidden_states.shape
    rows = torch.arange(batch, device=hidden_states.device)
    # Wqkv is one Linear: it is called as a module (a LoRA wrapper stays in effect) on every row, and the
    # query is taken at the read rows afterwards.
    qkv = attn.Wqkv(layer.attn_norm(hidden_states)).view(batch, length, 3, -1, attn.head_dim)
    q, k, v = qkv.unbind(dim=2)
    q = q[rows, positions].unsqueeze(1).transpose(1, 2)
    k, v = k.transpose(1, 2), v.transpose(1, 2)
    cos, sin = (t.expand(batch, -1, -1) for t in position_embeddings)
    q = _rope(attn, q, cos[rows, positions].unsqueeze(1), sin[rows, positions].unsqueeze(1))
    k = _rope(attn, k, cos, sin)
    mask = _mask_rows(attention_mask, positions, batch, length, causal=False, dtype=q.dtype)
    context = _attention(attn, q, k, v, mask, attn.attention_dropout, attn.head_dim ** -0.5)
    row = hidden_states[rows, positions].unsqueeze(1) + attn.out_drop(attn.Wo(context))
    row = row + layer.mlp(layer.mlp_norm(row))
    return _put_rows(hidden_states, rows, positions, row)


def decoder_rows(layer, positions, hidden_states, attention_mask=None, position_embeddings=None, cache=None,
                  position_ids=None, use_cache=None):
    """Llama / Mistral / Qwen2 / Qwen3 decoder layers: pre-norm, grouped-query attention, rotary; Qwen3 also
    normalises each head's query and key. The mask (causal, padded, sliding window) is the one the layer got."""
    import torch

    attn = layer.self_attn
    batch, length, _ = hidden_states.shape
    rows = torch.arange(batch, device=hidden_states.device)
    normed = layer.input_layernorm(hidden_states)
    q = attn.q_proj(normed[rows, positions].unsqueeze(1)).view(batch, 1, -1, attn.head_dim)
    k = attn.k_proj(normed).view(batch, length, -1, attn.head_dim)
    v = attn.v_proj(normed).view(batch, length, -1, attn.head_dim).transpose(1, 2)
    if hasattr(attn, "q_norm"):  # Qwen3
        q, k = attn.q_norm(q), attn.k_norm(k)
    q, k = q.transpose(1, 2), k.transpose(1, 2)
    cos, sin = (t.expand(batch, -1, -1) for t in position_embeddings)
    q = _rope(attn, q, cos[rows, positions].unsqueeze(1), sin[rows, positions].unsqueeze(1))
    k = _rope(attn, k, cos, sin)
    if cache is not None:  # keep the cache as the full layer would
        k, v = cache.update(k, v, attn.layer_idx)
    mask = _mask_rows(attention_mask, positions, batch, length, causal=True, dtype=q.dtype)
    context = _attention(attn, q, k, v, mask, attn.attention_dropout, attn.scaling)
    row = hidden_states[rows, positions].unsqueeze(1) + attn.o_proj(context)
    row = row + layer.mlp(layer.post_attention_layernorm(row))
    return _put_rows(hidden_states, rows, positions, row)
