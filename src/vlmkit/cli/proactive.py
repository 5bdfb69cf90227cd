"""``vlmkit proactive``: ProactiveBench, does a multimodal model ask for the help it needs?"""

from __future__ import annotations

from pathlib import Path

import typer

from vlmkit.cli.chat import ApiKeyOpt, BaseUrlOpt, ChatModelOpt, ConcurrencyOpt, DtypeOpt
from vlmkit.cli.common import CacheDirOpt, CacheOpt, DeviceOpt, OutOpt, SeedOpt, run_job

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True, help=__doc__.splitlines()[0])

ScenariosOpt = typer.Option(
    "all", help="all, or a comma list: ROD,VSOD,MVP-N,IN-C,QD,CIT,COCO (release) or occlusion,corruption,camera,drawing (world)"
)
DataOpt = typer.Option("world", help="the extracted ProactiveBench test folder (jsonl files + image folders), or world")


@app.command("run")
def run_cmd(
    out: Path = OutOpt,
    model: str = ChatModelOpt,
    scenarios: str = ScenariosOpt,
    data: str = DataOpt,
    protocol: str = typer.Option("mcqa", help="mcqa (multi-turn multiple choice) or oeg (one open answer, scored by --judge)"),
    hint: bool = typer.Option(False, "--hint/--no-hint", help="add the scenario's hint (MCQA) or the generic hint (OEG)"),
    n: int | None = typer.Option(None, help="episodes per scenario: world default 50; release: a seeded sample (OEG default 100)"),
    judge: str = typer.Option("smollm2-135m", help="OEG judge chat model (the paper: Qwen3-8B with thinking, e.g. openai:Qwen/Qwen3-8B)"),
    temperature: float = typer.Option(0.7, min=0.0, help="OEG sampling temperature (MCQA is greedy)"),
    batch_size: int = typer.Option(16, min=1, help="conversations per model call"),
    cache: bool = CacheOpt,
    cache_dir: Path | None = CacheDirOpt,
    device: str = DeviceOpt,
    dtype: str = DtypeOpt,
    base_url: str | None = BaseUrlOpt,
    api_key: str | None = ApiKeyOpt,
    concurrency: int = ConcurrencyOpt,
    seed: int = SeedOpt,
) -> None:
    """Play every episode of the scenarios; acc, psr, accuracy, proactive_rate (MCQA) or ps, cc, agg (OEG)."""
    run_job("vlmkit.proactive.run", "ProactiveOptions", "run_proactive", dict(locals()))


@app.command("train")
def train_cmd(
    out: Path = OutOpt,
    model: str = ChatModelOpt,
    scenarios: str = typer.Option("occlusion,corruption,drawing", help="world scenarios to train on (the rest are held out)"),
    reward_proactive: float = typer.Option(0.5, help="r_p: reward of a valid request (the paper: 0.5 or 0.75; 1.0 loops)"),
    rollouts: int = typer.Option(8, min=2, help="sampled replies per prompt (GRPO group size)"),
    prompts: int = typer.Option(256, min=1, help="single-turn training states sampled from the scenarios' episodes"),
    epochs: int = typer.Option(1, min=1, help="passes over the prompts"),
    lr: float = typer.Option(2e-5, help="AdamW learning rate (cosine schedule, no warm-up)"),
    mode: str = typer.Option("full", help="full, lora (rank 16 on q/k, via peft) or projector"),
    temperature: float = typer.Option(1.0, min=0.01, help="rollout sampling temperature"),
    batch_size: int = typer.Option(8, min=1, help="prompts per optimiser step"),
    device: str = DeviceOpt,
    dtype: str = DtypeOpt,
    seed: int = SeedOpt,
) -> None:
    """GRPO-style fine-tuning on world scenarios with the spec's reward; writes the model to OUT/model."""
    run_job("vlmkit.proactive.train", "TrainOptions", "run_train", dict(locals()))
