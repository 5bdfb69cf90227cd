"""CIRCLE: open-world in-context classification from unlabelled context images (arXiv 2602.23229).

Given context images ``X = {x_1..x_m}`` without labels:

1. ``t = 0``: each ``x_j`` is labelled alone with the open-world question, ``y_j^0 = LMM(x_j)``;
2. ``t = 1..T``: every label is refined *in parallel* (Jacobi-style: round t reads only round
   t-1), leave-one-out: ``y_j^t = LMM({(x_i, y_i^{t-1}) : i != j}, x_j)``;
3. the query is answered with the refined context: ``y_q = LMM({(x_i, y_i^T)}, x_q)``.

The context is shared by all queries, so its ``m (T + 1)`` calls are paid once (and cached on
disk with every other answer); each query costs one call. Conversations are built by
:func:`vlmkit.classify.icl.context_conversation` (context images interleaved with their labels).
"""

from __future__ import annotations

from collections.abc import Sequence

from vlmkit.classify.icl import context_conversation
from vlmkit.models.chat import user


def _generate(model, conversations: list, *, max_new_tokens: int, batch_size: int, seed: int) -> list[str]:
    out: list[str] = []
    for start in range(0, len(conversations), batch_size):
        out += model.generate(conversations[start : start + batch_size], max_new_tokens=max_new_tokens, temperature=0.0, seed=seed)
    return out


def refine_context(
    model, images: Sequence, question: str, rounds: int, *, max_new_tokens: int = 64, batch_size: int = 8, seed: int = 0
) -> list[list[str]]:
    """Labels of the context images after each round: ``[y^0, y^1, ..., y^T]``, each of length m."""
    history = [_generate(model, [[user(x, question)] for x in images], max_new_tokens=max_new_tokens, batch_size=batch_size, seed=seed)]
    for _ in range(rounds):
        previous = history[-1]
        conversations = [
            context_conversation([(images[i], previous[i]) for i in range(len(images)) if i != j], images[j], question, question)
            for j in range(len(images))
        ]
        history.append(_generate(model, conversations, max_new_tokens=max_new_tokens, batch_size=batch_size, seed=seed))
    return history


def answer_with_context(
    model, queries: Sequence, context: Sequence[tuple], question: str, *, max_new_tokens: int = 64, batch_size: int = 8, seed: int = 0
) -> list[str]:
    """One answer per query, each shown the same labelled ``context`` ``[(image, label), ...]``
    (an empty context is the zero-shot answer)."""
    conversations = [context_conversation(context, q, question, question) for q in queries]
    return _generate(model, conversations, max_new_tokens=max_new_tokens, batch_size=batch_size, seed=seed)


def answer_with_own_context(
    model,
    queries: Sequence,
    contexts: Sequence[Sequence[tuple]],
    question: str,
    *,
    max_new_tokens: int = 64,
    batch_size: int = 8,
    seed: int = 0,
) -> list[str]:
    """One answer per query with its own context (e.g. retrieved by a contrastive model)."""
    conversations = [context_conversation(c, q, question, question) for q, c in zip(queries, contexts, strict=True)]
    return _generate(model, conversations, max_new_tokens=max_new_tokens, batch_size=batch_size, seed=seed)
