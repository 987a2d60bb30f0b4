"""Turning a raw click into a `clicks` row (enricher.py), in the writer processes."""
