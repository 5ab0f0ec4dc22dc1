"""Training TTFS networks and exporting them to the hardware's integers.

:mod:`.baseline` is a small NumPy trainer (no extra dependencies) that made the shipped
digits model.
"""
