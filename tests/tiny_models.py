"""Tiny random models built from config in well under a second, each saved with a tokenizer of its kind.

make_decoder: a Llama with TTL's special-token layout (<unk>=0, <s>=1, </s>=2, <pad>=3) and a byte-level
tokenizer that prepends <s> as Llama's does. make_encoder: a BERT with a character WordPiece vocab.
make_model(folder, arch): one of ARCHS, with the tokenizer class the real models of that kind ship (the
transformers 5 classes take a vocabulary directly), and the special-token layout of their family:
Qwen's byte-level BPE with no BOS and no pad token (an entry names one), Mistral's Llama layout without a pad
token, RoBERTa's and DeBERTa's BPE, XLM-RoBERTa's and DeBERTa-v2's unigram, ModernBERT's [CLS]/[SEP] layout.
tiny_config(arch, vocab_size) is the config alone, for model-level tests.
"""
from __future__ import annotations

import string
from pathlib import Path

CHARS = sorted(set(string.ascii_letters + string.digits + string.punctuation + "áàâãéêíóôõúüçÁÀÂÃÉÊÍÓÔÕÚÇ"))
DECODERS = ("llama", "mistral", "qwen2", "qwen3")
ENCODERS = ("bert", "roberta", "xlm-roberta", "deberta-v2", "deberta", "modernbert")
ARCHS = DECODERS + ENCODERS
# The token an entry in models.yaml names for tokenizers without one (field pad_token).
PAD_TOKEN = {"qwen2": "<|pad|>", "qwen3": "<|pad|>", "mistral": "<unk>"}


def make_decoder(folder: Path, *, hidden: int = 32, layers: int = 2, seed: int = 0, pad: bool = True) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tok, vocab_size = _llama_tokenizer(pad)
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=vocab_size, hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=layers, num_attention_heads=2, num_key_value_heads=2,
                         max_position_embeddings=512, bos_token_id=1, eos_token_id=2,
                         pad_token_id=3 if pad else None, tie_word_embeddings=False)
    folder = Path(folder)
    LlamaForCausalLM(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def make_encoder(folder: Path, *, hidden: int = 32, layers: int = 2, seed: int = 0, dropout: float = 0.1) -> Path:
    import torch
    from transformers import BertConfig, BertForMaskedLM

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tok = _wordpiece_tokenizer(bert=True)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden,
                        num_hidden_layers=layers, num_attention_heads=2, max_position_embeddings=512, pad_token_id=0,
                        hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    BertForMaskedLM(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def make_model(folder: Path, arch: str, *, seed: int = 0) -> Path:
    """A tiny `arch` (one of ARCHS) with its tokenizer, saved as a pretrained model (a causal or masked LM)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM

    if arch == "bert":
        return make_encoder(folder, seed=seed, dropout=0.0)
    tok = tokenizer_for(arch)
    torch.manual_seed(seed)
    config = tiny_config(arch, len(tok), routine=True)
    auto = AutoModelForCausalLM if arch in DECODERS else AutoModelForMaskedLM
    folder = Path(folder)
    auto.from_config(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def tiny_config(arch: str, vocab_size: int = 50, *, routine: bool = False, **overrides):
    """hidden 32, 2 layers, 4 heads (2 key/value heads in decoders), no dropout; overrides go to the config's
    constructor. Sliding windows are short (4 tokens) so that they cut into short test texts; `routine=True`
    widens them for training runs."""
    window = 16 if routine else 4
    common = dict(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                  num_attention_heads=4, max_position_embeddings=512)
    decoder = dict(common, num_key_value_heads=2, tie_word_embeddings=False, attention_dropout=0.0)
    bert_like = dict(common, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    deberta = dict(bert_like, pad_token_id=0, type_vocab_size=0, relative_attention=True, position_biased_input=False,
                   max_relative_positions=-1, pooler_hidden_size=32, pooler_dropout=0.0)
    kinds = {
        "llama": ("LlamaConfig", dict(decoder, bos_token_id=1, eos_token_id=2, pad_token_id=3)),
        "mistral": ("MistralConfig", dict(decoder, bos_token_id=1, eos_token_id=2, pad_token_id=None,
                                          sliding_window=window)),
        "qwen2": ("Qwen2Config", dict(decoder, bos_token_id=None, eos_token_id=0, pad_token_id=None)),
        "qwen3": ("Qwen3Config", dict(decoder, head_dim=8, bos_token_id=None, eos_token_id=0, pad_token_id=None)),
        "bert": ("BertConfig", dict(bert_like, pad_token_id=0)),
        "roberta": ("RobertaConfig", dict(bert_like, pad_token_id=1, bos_token_id=0, eos_token_id=2,
                                          type_vocab_size=1)),
        "xlm-roberta": ("XLMRobertaConfig", dict(bert_like, pad_token_id=1, bos_token_id=0, eos_token_id=2,
                                                 type_vocab_size=1)),
        # Albertina 900m/1b5's settings: relative attention both ways, shared keys, log buckets
        "deberta-v2": ("DebertaV2Config", dict(deberta, pos_att_type=["p2c", "c2p"], position_buckets=8,
                                               share_att_key=True, norm_rel_ebd="layer_norm")),
        "deberta": ("DebertaConfig", dict(deberta, pos_att_type=["c2p", "p2c"])),  # Albertina 100m's settings
        # layer 0 global attention, layer 1 local (sliding) attention
        "modernbert": ("ModernBertConfig", dict(common, intermediate_size=48, pad_token_id=0, cls_token_id=2,
                                                sep_token_id=3, bos_token_id=2, eos_token_id=3,
                                                local_attention=2 * window, classifier_pooling="cls",
                                                attention_dropout=0.0, mlp_dropout=0.0, embedding_dropout=0.0)),
    }
    if arch not in kinds:
        raise ValueError(f"unknown tiny architecture {arch!r} (one of {', '.join(ARCHS)})")
    import transformers

    name, kwargs = kinds[arch]
    return getattr(transformers, name)(**{**kwargs, **overrides})


def tokenizer_for(arch: str):
    from tokenizers import pre_tokenizers
    from transformers import DebertaTokenizer, DebertaV2Tokenizer, Qwen2Tokenizer, RobertaTokenizer, XLMRobertaTokenizer

    byte_chars = sorted(pre_tokenizers.ByteLevel.alphabet())
    pieces = [("▁", -2.0)] + [(c, -3.0) for c in CHARS] + [("▁" + c, -3.0) for c in CHARS]
    if arch == "llama":
        return _llama_tokenizer(pad=True)[0]
    if arch == "mistral":
        return _llama_tokenizer(pad=False)[0]
    if arch in ("qwen2", "qwen3"):  # no BOS, EOS <|endoftext|>, no pad token: models.yaml names <|pad|>
        vocab = {t: i for i, t in enumerate(["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|pad|>"] + byte_chars)}
        return Qwen2Tokenizer(vocab=vocab, merges=[], pad_token=None, model_max_length=512)
    if arch == "bert":
        return _wordpiece_tokenizer(bert=True)
    if arch == "roberta":
        vocab = {t: i for i, t in enumerate(["<s>", "<pad>", "</s>", "<unk>", "<mask>"] + byte_chars)}
        return RobertaTokenizer(vocab=vocab, merges=[], model_max_length=512)
    if arch == "deberta":
        vocab = {t: i for i, t in enumerate(["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"] + byte_chars)}
        return DebertaTokenizer(vocab=vocab, merges=[], model_max_length=512)
    if arch == "xlm-roberta":
        specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
        return XLMRobertaTokenizer(vocab=[(t, 0.0) for t in specials] + pieces, model_max_length=512)
    if arch == "deberta-v2":
        specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        return DebertaV2Tokenizer(vocab=[(t, 0.0) for t in specials] + pieces, model_max_length=512)
    if arch == "modernbert":
        return _wordpiece_tokenizer(bert=False)
    raise ValueError(f"unknown tiny architecture {arch!r}")


def _llama_tokenizer(pad: bool):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["<unk>", "<s>", "</s>", "<pad>"]
    byte_chars = list(pre_tokenizers.ByteLevel.alphabet())
    vocab = {tok: i for i, tok in enumerate(specials + sorted(byte_chars))}
    tk = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    tk.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                      special_tokens=[("<s>", 1)])
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
                                  pad_token="<pad>" if pad else None, model_max_length=512)
    return tok, len(vocab)


def _wordpiece_tokenizer(bert: bool):
    """BERT's WordPiece over characters; bert=False: ModernBERT's layout, [CLS] a [SEP] b [SEP] without types."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertTokenizerFast, PreTrainedTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + CHARS + ["##" + c for c in CHARS]
    vocab = {t: i for i, t in enumerate(vocab)}
    if bert:
        return BertTokenizerFast(vocab=vocab, do_lower_case=False, model_max_length=512)
    tk = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]"))
    tk.normalizer = normalizers.NFC()
    tk.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tk.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
                                                      special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    return PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]",
                                   pad_token="[PAD]", mask_token="[MASK]", model_max_length=512,
                                   model_input_names=["input_ids", "attention_mask"])
