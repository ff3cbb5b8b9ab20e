"""A pipeline module without steps: what steps use from it is copied."""

import statistics

import pipec

PREFIX = "mean="


def describe(values: list) -> str:
    return PREFIX + str(statistics.mean(values))


ctx = pipec.context(size=4)
