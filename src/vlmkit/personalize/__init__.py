"""Personalisation of VLMs: R2P, training-free recognition of a user's concepts by retrieval and
reasoning over concept fingerprints (arXiv 2503.18623). See ``docs/r2p.md``."""
