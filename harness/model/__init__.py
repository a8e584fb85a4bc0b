"""A model as the routine trains it: located and loaded (tokenizer, config, classifier), pad tokens, LoRA and
QLoRA, the pooled last layer, dropout masks from PCG64 on CPU. May import the base modules, registry/, hub/,
data/ and record/."""
