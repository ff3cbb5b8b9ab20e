"""A helper module imported relatively by `flow.py`."""

FACTOR = 3
