"""Canvas examples: a chain, a group and a chord built from the math tasks."""
from celery import chain, chord, group

from .tasks.math import add, mul, xsum


def arithmetic_chain(x):
    """((x + 2) + 4) * 8"""
    return chain(add.s(x, 2), add.s(4), mul.s(8))


def pairs_group(n):
    """[0+0, 1+1, ..., (n-1)+(n-1)]"""
    return group(add.s(i, i) for i in range(n))


def sum_of_pairs_chord(n):
    """sum(i + i for i in range(n)), the sum computed by a callback after all parts finish."""
    return chord((add.s(i, i) for i in range(n)), xsum.s())
