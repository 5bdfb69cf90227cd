"""The ``vlmkit openworld run`` job: a chat model names every image of a dataset; the answers are
scored with the open-world metrics.

Writes ``predictions.jsonl`` (``id``, ``path``, ``dataset``, ``group``, ``label``, ``prediction``,
``model``, ``prompt``: the input of ``vlmkit openworld score``), ``result.json`` (``metrics``,
``per_dataset``, ``per_group`` as in the score job, plus ``model``, ``dataset``, ``prompt``,
``question``, ``max_new_tokens``, ``n``) and ``report.html`` (gallery and tables). Answers are
cached by content, so an interrupted run resumes and a re-run only re-scores.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import Field

from vlmkit.classify.chat_options import ChatRunOptions
from vlmkit.classify.openworld import predict
from vlmkit.classify.openworld_score import evaluate_rows
from vlmkit.classify.prompts import OFFICIAL_QUESTION, openworld_prompt
from vlmkit.data.benchmarks import load_classification
from vlmkit.runs.files import atomic_write_text, to_jsonable
from vlmkit.runs.record import Run


class OpenWorldOptions(ChatRunOptions):
    dataset: str
    prompt: str = "base"
    judge: str | None = None
    judge_mode: Literal["generate", "score"] = "generate"
    limit: int | None = Field(None, ge=1)


def subset(samples: list, limit: int | None, seed: int) -> list[int]:
    """Indices of ``limit`` samples drawn without replacement (all, in order, without a limit)."""
    import numpy as np

    if limit is None or limit >= len(samples):
        return list(range(len(samples)))
    return sorted(np.random.default_rng(seed).choice(len(samples), limit, replace=False).tolist())


def run_openworld(opts: OpenWorldOptions) -> Path:
    from vlmkit.classify.openworld_metrics import SentenceSpace
    from vlmkit.classify.openworld_report import run_report

    data = load_classification(opts.dataset, opts.cache_dir)
    prompt = openworld_prompt(opts.prompt, data.domain)
    run = Run(opts.out, "openworld run", {**opts.model_dump(mode="json"), "rounds": list(prompt.rounds)}, seed=opts.seed)
    chosen = subset(data.dataset.samples, opts.limit, opts.seed)
    samples = [data.dataset.samples[i] for i in chosen]
    with run.timer("load_model"):
        model = opts.load_chat(description="naming images")
        judge = opts.load_chat(opts.judge, "judging") if opts.judge else None
    from vlmkit.models.chat import require

    require(model, "images")
    with run.timer("generate"):
        predictions = predict(model, [s.path for s in samples], prompt, batch_size=opts.batch_size, seed=opts.seed)
    rows = [
        {
            "id": i,
            "path": str(s.path),
            "dataset": data.name,
            "group": data.group,
            "label": s.label,
            "prediction": p,
            "model": model.name,
            "prompt": prompt.name,
        }
        for i, s, p in zip(chosen, samples, predictions, strict=True)
    ]
    with run.timer("score"):
        scores, summary = evaluate_rows(
            rows, space=SentenceSpace(), judge=judge, question=OFFICIAL_QUESTION, judge_batch=opts.batch_size, judge_mode=opts.judge_mode
        )
    for i, row in enumerate(rows):
        row.update({k: v[i] for k, v in scores.items() if k not in ("concepts", "li_raw")})
    result = {"model": model.name, "dataset": opts.dataset, "prompt": prompt.name, "question": prompt.question,
              "max_new_tokens": prompt.max_new_tokens, "n": len(rows), "judge": opts.judge, **summary}
    run.info.update(model_fingerprint=model.fingerprint, cache=model.stats())
    opts.out.mkdir(parents=True, exist_ok=True)
    keep = ("id", "path", "dataset", "group", "label", "prediction", "model", "prompt")
    atomic_write_text(opts.out / "predictions.jsonl", "".join(json.dumps(to_jsonable({k: r[k] for k in keep})) + "\n" for r in rows))
    return run.finish(result, run_report(result, rows))
