"""``vlmkit c2b``: discover a classifier's biases without labels (C2B, arXiv 2504.20902)."""

from __future__ import annotations

from pathlib import Path

import typer

from vlmkit.cli.chat import ApiKeyOpt, BaseUrlOpt
from vlmkit.cli.common import (
    BatchOpt,
    CacheDirOpt,
    CacheOpt,
    DeviceOpt,
    ModelOpt,
    OutOpt,
    SeedOpt,
    run_job,
)

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True, help=__doc__.splitlines()[0])


@app.command("run")
def run_cmd(
    classifier: str = typer.Option(..., help="zeroshot:<model>, hf:<dir> or probe:<file>"),
    task: str = typer.Option(..., help='the task in words, e.g. "classify the shape of the object"'),
    classes: str = typer.Option(..., help="the target classes: a file (one per line) or a,b,c"),
    index: Path = typer.Option(..., help="an image index from vlmkit index build (the retrieval pool)"),
    out: Path = OutOpt,
    llm: str | None = typer.Option(None, help="chat model that proposes biases (smollm2-135m, openai:<model>, hf:<dir>, ...)"),
    proposals: Path | None = typer.Option(None, help='JSON {"attribute": ["class", ...]}, optionally nested under target classes'),
    template: str | None = typer.Option(
        None, help="caption template with {target}, {bias} and optionally {attribute} (default: the LLM's, else the fallback)"
    ),
    prompts: list[str] | None = typer.Option(
        None, help="zeroshot: classifiers' class prompt templates (set name, file or a template with {}); repeatable"
    ),
    k: int = typer.Option(20, "-k", "--k", help="images retrieved per caption"),
    retries: int = typer.Option(3, help="tries per class when the LLM's reply is not valid JSON proposals"),
    llm_temperature: float = typer.Option(0.0, min=0.0, help="LLM temperature of the first try (0: greedy); retries sample at 0.7"),
    base_url: str | None = BaseUrlOpt,
    api_key: str | None = ApiKeyOpt,
    min_n: int = typer.Option(5, help="groups with fewer retrieved images get no accuracy"),
    threshold: float = typer.Option(0.1, help="|phi| a detected bias must reach (its interval must also exclude 0)"),
    level: float = typer.Option(0.9, help="level of the intervals"),
    draws: int = typer.Option(2000, help="posterior draws behind the intervals"),
    annotations: str | None = typer.Option(None, help="a labelled dataset to compute ground-truth biases from (Hit / False Hit / Miss)"),
    target_attribute: str | None = typer.Option(None, help="the annotation attribute that holds the class (default: label)"),
    pool_labels: str | None = typer.Option(None, help="ground truth of the indexed images (manifest), for retrieval precision"),
    model: str | None = typer.Option(None, "--model", "-m", help="the model that built the index (default: the one it records)"),
    batch_size: int = BatchOpt,
    cache: bool = CacheOpt,
    cache_dir: Path | None = CacheDirOpt,
    device: str = DeviceOpt,
    seed: int = SeedOpt,
) -> None:
    """Rank bias attributes of a classifier from a task description and an unlabelled image index."""
    run_job("vlmkit.audit.c2b_run", "C2BOptions", "run_c2b", dict(locals()))


@app.command("train-probe")
def train_probe_cmd(
    dataset: str = typer.Option(..., help="labelled images: manifest .jsonl, class-per-folder tree or <format>:<folder>"),
    out: Path = OutOpt,
    model: str = ModelOpt,
    attribute: str | None = typer.Option(None, help="train on this manifest attribute instead of the label"),
    l2: float = typer.Option(1e-3, help="L2 penalty on the probe's weights"),
    batch_size: int = BatchOpt,
    cache: bool = CacheOpt,
    cache_dir: Path | None = CacheDirOpt,
    device: str = DeviceOpt,
    seed: int = SeedOpt,
) -> None:
    """Fit a linear probe on a model's image embeddings; audit it with --classifier probe:OUT/probe.safetensors."""
    run_job("vlmkit.audit.probe_run", "ProbeOptions", "run_train_probe", dict(locals()))
