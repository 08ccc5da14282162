"""The guarded OpenAI-compatible service: app, store, upstream backend (``pip install layerguard[serve]``)."""
