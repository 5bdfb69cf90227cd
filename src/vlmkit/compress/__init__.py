"""Compressing and combining LMMs: merging (data-mixture proxies) and structural pruning."""
