"""Datasets: JSONL manifests, class-per-folder image trees, and robust image loading."""
