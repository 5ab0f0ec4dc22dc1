"""Training TTFS networks and exporting them to the hardware's integers.

:mod:`.loop` is the surrogate-gradient trainer in PyTorch with the seed papers' methods
(:mod:`.config`); it made both shipped models (their provenance holds the command).
:mod:`.baseline` is a small NumPy trainer with no extra dependencies, for machines
without PyTorch (``firstspike train --trainer numpy``).
"""
