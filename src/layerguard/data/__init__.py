"""Samples, contrast sets and loaders."""
