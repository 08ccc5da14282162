"""Upstream rings that act at training time: corpus filter, safety rewards, refusal tokens."""

from layerguard.train.filter import DocScore, FilterSummary, GuardScorer, filter_corpus, load_scorer

__all__ = ["DocScore", "FilterSummary", "GuardScorer", "filter_corpus", "load_scorer"]
