"""How smooth and editable a generator is: PPL, ALS and FD-VGG, for any :class:`Generator`.

Each metric draws its samples from (seed, index), splits them across the processes of a
``torchrun`` run (:mod:`..distributed`) and merges them on every rank, so one process and many
give the same number; each result carries a 95 % bootstrap interval (:mod:`.stats`).
"""
from .stats import MetricResult

__all__ = ["MetricResult"]
