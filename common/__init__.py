"""Shared parts of the four papers: data, models, methods, engine, metrics, config."""
