"""Bundled example data and converters for public pairwise-judgement data sets."""
