"""Metrics shared by several methods."""
