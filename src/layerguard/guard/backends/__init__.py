"""Backends that serve a guarded model: in-process (``local``) or any OpenAI-compatible URL (``upstream``)."""
