"""Data for the second shard of the built-in contrast sets (``harmful_b`` / ``harmless_b``).

Each category module holds ``PAIRS``: ``(harmful, harmless)`` prompts matched in sentence
form, length and topic, and ``REPHRASED``: pairs whose harmful side hides its intent in a
past-tense, hypothetical or fictional-character framing, with the harmless side in the same
framing. The modules hold data only; ``scripts/gen_builtin_b.py`` writes the JSONL files.
"""
