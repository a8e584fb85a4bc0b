"""The seed recipe (the TTL model cards' fine-tuning code), re-implemented on today's libraries.

Faithful to the cards: a plain Trainer, fp32, random-order batches of 16 with dynamic padding
(DataCollatorWithPadding), evaluation on the *test* split after every epoch with batch 16, a full
checkpoint saved every epoch, the best epoch (by eval loss, the Trainer default) reloaded at the end,
and the best per-epoch test accuracy reported. The only changes are today's names (eval_strategy,
processing_class=), accuracy computed with numpy (evaluate.load needs the hub) and no push to the hub.
Texts are formatted by the harness (same data for both sides of the comparison).

    python benchmarks/seed_recipe.py --task assin2 --model minilm-l6 --mirror ../shared/data/hub --json out.json
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


class _CountingCollator:
    """Wraps the padding collator to count real vs processed (padded) tokens."""

    def __init__(self, inner):
        self.inner, self.real, self.processed = inner, 0, 0

    def __call__(self, features):
        batch = self.inner(features)
        self.real += int(batch["attention_mask"].sum())
        self.processed += int(batch["attention_mask"].numel())
        return batch


def main(argv=None) -> int:
    # One function on purpose: it mirrors the model card's script top to bottom, so the two can be
    # read side by side.
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="assin2")
    ap.add_argument("--model", default="minilm-l6")
    ap.add_argument("--mirror")
    ap.add_argument("--limit", type=int)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args(argv)
    t_start = time.perf_counter()

    import torch
    from datasets import Dataset
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    from harness.data import prepare as data_mod
    from harness.data import splits as splits_mod
    from harness.model.loading import model_location
    from harness.registry.load import load_models, load_tasks, resolve_model

    task = load_tasks()[args.task]
    spec = resolve_model(args.model, load_models())
    where, revision = model_location(spec, args.mirror)
    tokenizer = AutoTokenizer.from_pretrained(where, revision=revision)

    t0 = time.perf_counter()
    raw, _, _ = splits_mod.load_raw(task, args.mirror)
    raw = splits_mod.apply_limit(raw, args.limit, seed=0)

    def to_dataset(split):
        first, second = data_mod.format_texts(task, split, spec.family, tokenizer)
        cols = {"text": first, "label": split.labels.tolist()}
        if second is not None:
            cols["text_pair"] = second
        return Dataset.from_dict(cols)

    train, test = to_dataset(raw["train"]), to_dataset(raw["test"])
    t_load = time.perf_counter() - t0

    t0 = time.perf_counter()

    def preprocess(batch):
        return tokenizer(batch["text"], batch.get("text_pair"), truncation=True,
                         max_length=task.max_length or min(tokenizer.model_max_length, 2048))

    train = train.map(preprocess, batched=True, remove_columns=[c for c in train.column_names if c != "label"])
    test = test.map(preprocess, batched=True, remove_columns=[c for c in test.column_names if c != "label"])
    t_tok = time.perf_counter() - t0

    model = AutoModelForSequenceClassification.from_pretrained(
        where, revision=revision, num_labels=task.label.num_classes,
        id2label=dict(enumerate(task.label.names)), label2id={n: i for i, n in enumerate(task.label.names)})
    if spec.family == "decoder":
        model.config.pad_token_id = tokenizer.pad_token_id

    def compute_metrics(eval_pred):
        logits, labels = eval_pred
        return {"accuracy": float(np.mean(np.argmax(logits, axis=1) == labels))}

    train_counter = _CountingCollator(DataCollatorWithPadding(tokenizer=tokenizer))
    eval_counter = _CountingCollator(DataCollatorWithPadding(tokenizer=tokenizer))

    class CountingTrainer(Trainer):
        def get_train_dataloader(self):
            saved, self.data_collator = self.data_collator, train_counter
            try:
                return super().get_train_dataloader()
            finally:
                self.data_collator = saved

    with tempfile.TemporaryDirectory() as out_dir:
        training_args = TrainingArguments(
            output_dir=out_dir, learning_rate=4e-5, per_device_train_batch_size=16, per_device_eval_batch_size=16,
            num_train_epochs=args.epochs, weight_decay=0.01, adam_epsilon=1e-8, eval_strategy="epoch",
            save_strategy="epoch", load_best_model_at_end=True, seed=args.seed, report_to=[],
            use_cpu=not torch.cuda.is_available(), disable_tqdm=True, logging_strategy="epoch")
        trainer = CountingTrainer(model=model, args=training_args, train_dataset=train, eval_dataset=test,
                                  processing_class=tokenizer, data_collator=eval_counter,
                                  compute_metrics=compute_metrics)
        t0 = time.perf_counter()
        trainer.train()
        t_train_eval = time.perf_counter() - t0
    per_epoch = [h["eval_accuracy"] for h in trainer.state.log_history if "eval_accuracy" in h]
    figures = {
        "recipe": "seed", "task": task.name, "model": spec.name, "seed": args.seed, "epochs": args.epochs,
        "limit": args.limit, "train_examples": len(train), "test_examples": len(test),
        "test_accuracy_per_epoch": per_epoch, "best_test_accuracy": max(per_epoch),
        "load_s": t_load, "tokenize_s": t_tok, "train_and_eval_s": t_train_eval,
        "total_s": time.perf_counter() - t_start,
        "train_tokens_real": train_counter.real, "train_tokens_processed": train_counter.processed,
        "padding_efficiency": train_counter.real / max(1, train_counter.processed),
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }
    text = json.dumps(figures, indent=1)
    if args.json:
        Path(args.json).write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
