"""Interpretation of vision towers: direct-effect decomposition (and, later, SITH/COMP)."""
