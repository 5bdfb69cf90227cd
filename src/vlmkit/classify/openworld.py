"""Open-world classification: an LMM names what it sees, with no list of classes.

The protocol of Conti et al., "LMMs as Open-World Image Classifiers" (arXiv 2503.21851): one image
per request, a question from :mod:`vlmkit.classify.prompts`, greedy decoding (64 new tokens, 256
for reasoning prompts); multi-round prompts (LlamaV-o1) keep the dialogue and the last answer is
the prediction. Scores per row come from :mod:`vlmkit.classify.openworld_metrics`; a dataset's
score is the mean over its samples and a group's score is the mean of its datasets' scores
(datasets weigh equally, whatever their size; the paper leaves this open).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from vlmkit.classify.prompts import OpenWorldPrompt
from vlmkit.models.chat import assistant, user

METRICS = ("ti", "li", "ss", "cs_max", "cs_median", "em")


def predict(model, images: Sequence, prompt: OpenWorldPrompt, *, batch_size: int = 8, seed: int = 0) -> list[str]:
    """One free-text answer per image (``model`` is any ChatModel with images; caching is the
    caller's: wrap it in :class:`~vlmkit.models.chat_cached.CachedChatModel`)."""
    dialogues = [[user(image, prompt.rounds[0])] for image in images]
    answers: list[str] = []
    for round_index, question in enumerate(prompt.rounds):
        if round_index:
            dialogues = [[*d, assistant(a), user(question)] for d, a in zip(dialogues, answers, strict=True)]
        answers = []
        for start in range(0, len(dialogues), batch_size):
            answers += model.generate(
                dialogues[start : start + batch_size], max_new_tokens=prompt.max_new_tokens, temperature=0.0, seed=seed
            )
    return answers


def aggregate(scores: dict[str, np.ndarray], datasets: Sequence[str], groups: Sequence[str]) -> dict:
    """``metrics`` (mean over all rows), ``per_dataset`` (mean over each dataset's rows, with
    ``n`` and ``group``) and ``per_group`` (mean of its datasets' means, with ``datasets``)."""
    names = [k for k in METRICS if k in scores]
    datasets, groups = list(datasets), list(groups)
    rows_of: dict[str, list[int]] = defaultdict(list)
    group_of: dict[str, str] = {}
    for i, (dataset, group) in enumerate(zip(datasets, groups, strict=True)):
        rows_of[dataset].append(i)
        group_of.setdefault(dataset, group)
    per_dataset = {
        d: {"n": len(idx), "group": group_of[d], **{k: float(np.mean(np.asarray(scores[k])[idx])) for k in names}}
        for d, idx in rows_of.items()
    }
    members: dict[str, list[str]] = defaultdict(list)
    for d, g in group_of.items():
        members[g].append(d)
    per_group = {g: {"datasets": ds, **{k: float(np.mean([per_dataset[d][k] for d in ds])) for k in names}} for g, ds in members.items()}
    metrics = {k: float(np.mean(scores[k])) if len(datasets) else float("nan") for k in names}
    return {"metrics": metrics, "per_dataset": per_dataset, "per_group": per_group}


def wrap_lists(predictions: Sequence[str], template: str) -> list[str]:
    """CIRCLE's LI wrapping: each comma-separated answer inside a fixed sentence (``{answer}``)."""
    from vlmkit.classify.prompts import fill

    return [fill(template, answer=p.strip()) for p in predictions]
