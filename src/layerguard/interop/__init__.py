"""Interop with other red-team tools: Inspect (inspect-ai) and garak.

- :mod:`layerguard.interop.inspect_ai` (needs the ``interop`` extra): layerguard's attacks as an
  Inspect solver, its judges as Inspect scorers, a ``layerguard`` model provider (a local model,
  guarded or not) and the ``layerguard_redteam`` task; an Inspect eval log read back as
  layerguard result rows.
- :mod:`layerguard.interop.garak` (no extra dependency): result rows written as a garak
  ``report.jsonl`` (attempt and eval entries that garak's ``analyze_log`` reads), a garak
  report's prompts read as a dataset, and a garak generator config that points garak's
  OpenAI-compatible generator at ``layerguard serve``.

Nothing here is imported by the rest of layerguard; inspect-ai is imported only by the
Inspect module, with a clear error and the pip command when it is missing.
"""
