"""C2B, label-free bias discovery for an image classifier (Guimard et al., "Classifier-to-Bias:
Toward Unsupervised Automatic Bias Detection for Visual Classifiers", CVPR 2025, arXiv 2504.20902).

Given bias proposals (:mod:`vlmkit.audit.proposals`), a caption template, an image index and a
classifier, :func:`audit`

1. writes one caption per (target y, attribute i, bias class b_ij),
2. retrieves the top ``k`` images per caption (:mod:`vlmkit.audit.retrieve`),
3. runs the classifier once on every distinct retrieved image,
4. scores each group's accuracy, phi per bias class and ranks attributes (:mod:`vlmkit.audit.scores`).

Example::

    from vlmkit.audit.c2b import audit
    from vlmkit.retrieval.index import ImageIndex
    from vlmkit.models import load_model

    index = ImageIndex.load("runs/pool-index")
    result = audit(my_classifier, {"circle": {"background": ["black", "white"]}}, index, load_model(index.meta["model"]))
    result.ranking[0]["attribute"]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from vlmkit.audit.classifiers import as_classifier
from vlmkit.audit.proposals import DEFAULT_TEMPLATE, Proposal, check_template
from vlmkit.audit.retrieve import Query, Retrieved, make_queries, retrieve
from vlmkit.audit.scores import Group, ScoreSettings, rank_attributes
from vlmkit.errors import UserError


@dataclass
class AuditResult:
    """Everything one audit computed, kept as data (captions, image ids, predictions)."""

    queries: list[Query]
    retrieved: list[Retrieved]
    predictions: dict[str, str]
    groups: list[Group]
    ranking: list[dict]
    settings: ScoreSettings = field(default_factory=ScoreSettings)

    def groups_table(self) -> list[dict]:
        """One row per query: caption, image paths, their predictions and the accuracy."""
        return [
            {
                "target": r.query.target,
                "attribute": r.query.attribute,
                "bias": r.query.bias,
                "caption": r.query.caption,
                "paths": r.paths,
                "similarities": [round(s, 4) for s in r.scores],
                "predictions": [self.predictions[p] for p in r.paths],
                "n": len(r.paths),
                "accuracy": (float(np.mean([self.predictions[p] == r.query.target for p in r.paths])) if r.paths else None),
            }
            for r in self.retrieved
        ]


def audit(
    classifier, proposals: dict[str, Proposal], index, text_model, *, template: str = DEFAULT_TEMPLATE,
    templates: dict[str, str] | None = None, k: int = 20, overfetch: int = 4, settings: ScoreSettings = ScoreSettings(), cache=None,
) -> AuditResult:
    """Run C2B's retrieval, classification and scoring steps.

    Args:
        classifier: a :class:`~vlmkit.audit.classifiers.Classifier` or a callable ``paths -> class names``.
        proposals: target -> attribute -> bias classes.
        index: an :class:`~vlmkit.retrieval.index.ImageIndex`.
        text_model: the contrastive model that built ``index`` (encodes the captions).
        template: caption template with ``{target}``, ``{bias}`` (and optionally ``{attribute}``).
        templates: per-attribute overrides of ``template``.
        k: images per caption (the paper's 20).
    """
    from vlmkit.embed import embed_texts

    if k < 1 or overfetch < 1:
        raise UserError("-k and the over-fetch factor must be at least 1")
    for t in [template, *(templates or {}).values()]:
        check_template(t)
    if not proposals:
        raise UserError("no bias proposals to audit; give --proposals FILE or --llm MODEL")
    classifier = as_classifier(classifier)
    queries = make_queries(proposals, template, templates)
    vectors = embed_texts(text_model, [q.caption for q in queries], cache=cache).vectors
    retrieved = retrieve(index, vectors, queries, k, overfetch)
    paths = sorted({p for r in retrieved for p in r.paths})
    labels = classifier.predict(paths) if paths else []
    if len(labels) != len(paths):
        raise UserError(f"classifier {getattr(classifier, 'name', '?')} returned {len(labels)} predictions for {len(paths)} images")
    predictions = dict(zip(paths, labels, strict=True))
    groups = [Group(r.query.target, r.query.attribute, r.query.bias, np.asarray([predictions[p] == r.query.target for p in r.paths], bool))
              for r in retrieved]
    return AuditResult(queries, retrieved, predictions, groups, rank_attributes(groups, settings), settings)


def summarize(ranking: Sequence[dict], top: int = 3) -> list[str]:
    """One line per top attribute: ``background 0.42 [0.35, 0.49] (circle: black +0.51 ...)``."""
    lines = []
    for entry in ranking[:top]:
        if entry["score"] is None:
            continue
        strongest = next((r for r in entry["classes"] if r["phi"] is not None), None)
        detail = (
            f" (strongest: {strongest['target']} / {strongest['name']} phi {strongest['phi']:+.2f}, n {strongest['n']})"
            if strongest
            else ""
        )
        lines.append(f"{entry['attribute']}: {entry['score']:.3f} [{entry['interval'][0]:.3f}, {entry['interval'][1]:.3f}]{detail}")
    return lines
