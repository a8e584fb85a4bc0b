"""The run config: every hyperparameter and speed knob of the fine-tuning routine.

The defaults reproduce the seed recipe's hyperparameters (transformers 4.35 Trainer defaults:
AdamW lr 4e-5, eps 1e-8, weight decay 0.01, batch 16, 3 epochs, linear decay, no warm-up,
gradient clipping at 1.0, seed 42). The speed knobs default to the fast path; SEED_RECIPE (below)
turns them back to the seed's behaviour.
Every field is a CLI flag of `harness run` (--learning-rate, --batch-size, ...).
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass


@dataclass
class RunConfig:
    learning_rate: float = 4e-5
    adam_epsilon: float = 1e-8
    weight_decay: float = 0.01  # not applied to biases and norm weights, as the Trainer does
    batch_size: int = 16  # examples per optimizer step
    epochs: int = 3
    warmup_ratio: float = 0.0
    max_grad_norm: float = 1.0  # 0 turns clipping off
    eval_batch_size: int = 128  # evaluation is forward-only: larger batches cost nothing in results
    length_grouped: bool = True  # batches of similar length (random order between batches): less padding
    precision: str = "auto"  # auto = bf16 autocast on CUDA (fp32 master weights), fp32 on CPU; or fp32 / bf16
    tf32: bool = True  # TF32 matmuls for what stays fp32 on CUDA
    attn_implementation: str = "sdpa"  # passed to from_pretrained: sdpa, eager, flash_attention_2
    fused_adamw: bool = True  # the fused AdamW kernel (CUDA, and CPU with torch >= 2.4); else the plain loop
    pooled_last_layer: bool = True  # last layer computed only at the position the head reads (exact; BERT, Llama)
    micro_batch_size: int = 0  # 0 = batch_size; smaller = gradient accumulation (halved on CUDA OOM)
    device: str = "auto"  # auto, cpu, cuda, cuda:1, ...
    threads: int = 0  # torch CPU threads; 0 = torch's default
    save_every_epoch: bool = False  # write a full checkpoint after each epoch (the seed recipe did)
    protocols: str = "both"  # both, published, clean: which fits to train where they differ
    peft: str = "none"  # none (full fine-tuning), lora, qlora (LoRA on 4-bit base weights; CUDA only)
    lora_r: int = 16  # rank of the adapters
    lora_alpha: int = 32  # adapter scaling alpha / r
    lora_dropout: float = 0.05
    lora_targets: str = "auto"  # auto = every linear layer of the backbone; or names, comma-separated
    gradient_checkpointing: bool = False  # recompute activations in the backward pass (exact: same gradients)
    sharding: str = "none"  # none, fsdp: with --processes N, shard weights, gradients and optimizer state (FSDP2)
    emissions_country: str = "DEU"  # ISO 3166 alpha-3 code of the grid, for codecarbon's offline emissions

    def __post_init__(self):
        checks = [
            (self.learning_rate > 0, "learning_rate must be > 0"),
            (self.adam_epsilon > 0, "adam_epsilon must be > 0"),
            (self.weight_decay >= 0, "weight_decay must be >= 0"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.epochs >= 1, "epochs must be >= 1"),
            (0 <= self.warmup_ratio < 1, "warmup_ratio must be in [0, 1)"),
            (self.max_grad_norm >= 0, "max_grad_norm must be >= 0"),
            (self.eval_batch_size >= 1, "eval_batch_size must be >= 1"),
            (self.precision in ("auto", "fp32", "bf16"), "precision must be auto, fp32 or bf16"),
            (0 <= self.micro_batch_size <= self.batch_size, "micro_batch_size must be in 0..batch_size"),
            (self.threads >= 0, "threads must be >= 0"),
            (self.protocols in ("both", "published", "clean"), "protocols must be both, published or clean"),
            (self.peft in ("none", "lora", "qlora"), "peft must be none, lora or qlora"),
            (self.lora_r >= 1, "lora_r must be >= 1"),
            (self.lora_alpha > 0, "lora_alpha must be > 0"),
            (0 <= self.lora_dropout < 1, "lora_dropout must be in [0, 1)"),
            (re.fullmatch(r"auto|\w+(,\w+)*", self.lora_targets.replace(" ", "")) is not None,
             "lora_targets must be auto or module names separated by commas, e.g. q_proj,v_proj"),
            (self.peft != "none" or not self._lora_overrides(),
             f"{', '.join(self._lora_overrides())} given without --peft lora (or qlora)"),
            (self.sharding in ("none", "fsdp"), "sharding must be none or fsdp"),
            (not (self.sharding == "fsdp" and self.peft == "qlora"), "sharding fsdp does not combine with peft qlora"),
            (re.fullmatch(r"[A-Z]{3}", self.emissions_country) is not None,
             "emissions_country must be a 3-letter ISO code in capitals, e.g. BRA or DEU"),
        ]
        for ok, message in checks:
            if not ok:
                from .errors import UserError

                raise UserError(f"bad run setting: {message}")

    def _lora_overrides(self) -> list[str]:
        return [f"lora_{k}" for k in ("r", "alpha", "dropout", "targets")
                if getattr(self, f"lora_{k}") != getattr(RunConfig, f"lora_{k}")]

    def overrides(self) -> dict:
        """Every field that differs from the defaults (the record lists them)."""
        default = RunConfig()
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if getattr(self, f.name) != getattr(default, f.name)}

    def recipe_overrides(self) -> dict:
        """The overrides that change the experiment itself; they name the results variant.
        Speed knobs (batching order, precision, devices) are recorded but share the variant."""
        return {k: v for k, v in self.overrides().items() if k in RECIPE_FIELDS}


# One line per field for `harness run --help`.
HELP = {
    "learning_rate": "AdamW learning rate",
    "adam_epsilon": "AdamW epsilon",
    "weight_decay": "AdamW weight decay (not on biases and norm weights)",
    "batch_size": "examples per optimizer step",
    "epochs": "training epochs (validation and test are evaluated after each)",
    "warmup_ratio": "share of steps with linear warm-up before the linear decay",
    "max_grad_norm": "gradient clipping norm; 0 turns it off",
    "eval_batch_size": "evaluation batch (forward only, sorted by length)",
    "length_grouped": "batches of similar length, in random order (less padding)",
    "precision": "auto (bf16 autocast on CUDA, fp32 on CPU), fp32 or bf16",
    "tf32": "TF32 matmuls on CUDA for what stays fp32",
    "attn_implementation": "sdpa, eager or flash_attention_2",
    "fused_adamw": "the fused AdamW kernel (CUDA, and CPU with torch >= 2.4)",
    "pooled_last_layer": "compute the last layer only at the position the classifier reads (same results, "
                         "1/num_layers less work; BERT and Llama with sdpa or eager attention)",
    "micro_batch_size": "gradient accumulation: examples per forward pass (0 = batch size; halved on CUDA OOM)",
    "device": "auto, cpu, cuda or cuda:N",
    "threads": "torch CPU threads (0 = torch's default)",
    "save_every_epoch": "write a checkpoint after each epoch, beside the record (with LoRA: the adapters and the head)",
    "protocols": "both, published or clean: which trainings to run where they differ (IMDB, AgNews)",
    "peft": "none (full fine-tuning), lora (adapters through peft; the head trained in full) or qlora (LoRA on "
            "4-bit base weights through bitsandbytes; CUDA only)",
    "lora_r": "LoRA rank",
    "lora_alpha": "LoRA alpha (the adapters are scaled by alpha / r)",
    "lora_dropout": "dropout on the adapters' input",
    "lora_targets": "linear layers that get adapters: auto (every linear layer of the backbone: q/k/v/o and MLP "
                    "projections for Llama, query/key/value/dense for BERT) or names, e.g. q_proj,v_proj",
    "gradient_checkpointing": "recompute each layer's activations in the backward pass: less memory, about a third "
                              "more compute, the same gradients",
    "sharding": "none or fsdp: with --processes N, shard the weights, gradients and optimizer state over the "
                "processes (torch FSDP2) instead of replicating them",
    "emissions_country": "ISO 3166 alpha-3 code of the electricity grid, for the emissions in the record "
                         "(codecarbon, offline; the TTL authors report DEU)",
}

# LoRA's settings change the experiment (a LoRA run never pools with a full fine-tune); checkpointing,
# sharding and the emissions country do not.
RECIPE_FIELDS = ("learning_rate", "adam_epsilon", "weight_decay", "batch_size", "epochs", "warmup_ratio",
                 "max_grad_norm", "peft", "lora_r", "lora_alpha", "lora_dropout", "lora_targets")


SEED_RECIPE = dict(length_grouped=False, eval_batch_size=16, precision="fp32", save_every_epoch=True,
                   attn_implementation="sdpa", fused_adamw=False, tf32=False, pooled_last_layer=False)
