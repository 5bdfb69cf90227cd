"""Auditing classifiers: C2B, label-free bias discovery (Guimard et al., CVPR 2025, arXiv 2504.20902).

Modules, one idea each:

- :mod:`~vlmkit.audit.proposals`: bias attributes and their classes, from a chat model (JSON,
  validated, retried) or from a file; the caption template;
- :mod:`~vlmkit.audit.retrieve`: captions per (target, bias class) and top-k retrieval from a
  vlmkit index with de-duplication inside each (target, attribute);
- :mod:`~vlmkit.audit.classifiers`: any classifier (``zeroshot:``, ``hf:``, ``probe:``, a callable);
- :mod:`~vlmkit.audit.scores`: accuracy per group, phi per bias class, the attribute ranking and
  posterior intervals;
- :mod:`~vlmkit.audit.evaluate`: ground-truth biases from annotated data, Hit / False Hit / Miss
  and the agreement score;
- :mod:`~vlmkit.audit.c2b`: the pipeline (library entry point :func:`~vlmkit.audit.c2b.audit`).
"""
