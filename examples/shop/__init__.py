"""A package whose pipelines import their steps from a sibling module."""
