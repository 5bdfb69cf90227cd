"""The ``vlmkit debias encode`` job: debiased text embeddings for a file of queries."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import model_validator

from vlmkit.debias.methods import METHODS, NEEDS_BIAS, NEEDS_PARAPHRASES, NEEDS_SAE, TextDebiaser
from vlmkit.debias.prompt_sets import bias_prompts, neutral_prompts, paraphrases
from vlmkit.debias.sae import MatryoshkaSAE, check_width, find_sae
from vlmkit.models import load_model
from vlmkit.report import html
from vlmkit.runs.files import atomic_save_npy
from vlmkit.runs.options import RunOptions
from vlmkit.runs.readers import read_texts
from vlmkit.runs.record import Run


class DebiasEncodeOptions(RunOptions):
    texts: Path
    method: str = "sem_bi"
    bias: str | None = None
    bias_prompts: Path | None = None
    paraphrases: Path | None = None
    sae: Path | None = None
    neutral: Path | None = None

    @model_validator(mode="after")
    def _inputs(self):
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}")
        if self.method in NEEDS_BIAS and not self.bias:
            raise ValueError(f"{self.method} needs --bias <attribute>[,<attribute>] (e.g. gender)")
        if self.method in NEEDS_PARAPHRASES and self.paraphrases is None:
            raise ValueError(f"{self.method} needs --paraphrases FILE (JSON: query -> list of paraphrases)")
        if self.method in NEEDS_SAE and find_sae(self.sae, self.model) is None:
            raise ValueError(f"{self.method} needs --sae DIR (train one with vlmkit sae train); only the embedded models ship one")
        return self


def run_debias_encode(opts: DebiasEncodeOptions) -> Path:
    run = Run(opts.out, "debias encode", opts.model_dump(mode="json"), seed=opts.seed)
    queries = read_texts(opts.texts)  # every user file is read before the model loads
    attributes = [a.strip() for a in (opts.bias or "").split(",") if a.strip()]
    bias = bias_prompts(attributes, opts.bias_prompts) if attributes else None
    para = paraphrases(opts.paraphrases, queries) if opts.paraphrases else None
    neutral = neutral_prompts(opts.neutral)
    sae_path = find_sae(opts.sae, opts.model) if opts.method in NEEDS_SAE else opts.sae
    sae = MatryoshkaSAE.load(sae_path) if sae_path else None
    model = load_model(opts.model, device=opts.resolved_device())
    debiaser = TextDebiaser(model, bias, check_width(sae, model, sae_path) if sae else None, neutral)
    with run.timer("debias"):
        debiased = debiaser.encode(opts.method, queries, para).numpy()
    original = debiaser.encode("none", queries).numpy()
    atomic_save_npy(Path(opts.out) / "embeddings.npy", debiased.astype(np.float32))
    shift = (debiased * original).sum(1)
    result = {
        "model": model.name, "method": opts.method, "bias": attributes, "queries": len(queries), "embeddings": "embeddings.npy",
        "cosine_to_original": {"mean": round(float(shift.mean()), 4), "min": round(float(shift.min()), 4)},
        "per_query": [{"text": q, "cosine_to_original": round(float(c), 4)} for q, c in zip(queries, shift, strict=True)],
    }
    run.info["model_fingerprint"] = model.fingerprint
    return run.finish(
        result,
        html.page(
            f"Debiased text embeddings: {opts.method}",
            html.key_values({k: v for k, v in result.items() if k != "per_query"}),
            html.section(
                "Queries",
                html.table(
                    ["query", "cosine to the original embedding"], [(p["text"], p["cosine_to_original"]) for p in result["per_query"]]
                ),
            ),
        ),
    )
