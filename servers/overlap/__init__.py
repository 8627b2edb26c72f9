"""Corpus overlap: a benchmark against a registered corpus index."""
