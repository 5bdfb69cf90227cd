"""Run outputs, atomic files, progress and the embedding cache."""
