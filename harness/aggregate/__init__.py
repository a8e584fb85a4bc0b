"""From records to numbers: the results DataFrame, which records pool, table cells and marks, statistics,
`harness compare`. Pure; may import the base modules, registry/ and record/ (no training, no rendering)."""
