"""Verbs of vlmkit.compress: merge, sft, dmo run, prune, recover."""

from __future__ import annotations

from pathlib import Path

import typer

from vlmkit.cli.common import removing_fresh_out
from vlmkit.errors import UserError


def merge_cmd(
    out: Path = typer.Option(..., "--out", "-o", help="directory to write (must not exist or be empty)"),
    config: Path | None = typer.Option(None, help="a mergekit-style YAML file (merge_method, base_model, models, parameters)"),
    method: str = typer.Option("task_arithmetic", help="linear, task_arithmetic, ties, dare_linear or dare_ties"),
    base: str | None = typer.Option(None, help="the checkpoint the experts were fine-tuned from (all methods but linear)"),
    models: str | None = typer.Option(None, help="comma-separated expert checkpoint directories (or hf:<repo>)"),
    weights: str | None = typer.Option(None, help="comma-separated coefficients, one per model (default: 1 each)"),
    lam: float = typer.Option(1.0, "--lambda", help="scale of the merged task vector"),
    density: float = typer.Option(0.2, help="fraction of each task vector TIES keeps"),
    drop: float = typer.Option(0.2, help="DARE's drop probability"),
    exclude: str = typer.Option(
        "vision", help="comma-separated roles kept from the base: vision, projector, embeddings, head, norm (lora = all five)"
    ),
    exclude_biases: bool = typer.Option(False, "--exclude-biases/--merge-biases", help="keep the base's biases"),
    normalize: bool = typer.Option(False, "--normalize/--no-normalize", help="rescale the coefficients to sum to 1"),
    dtype: str = typer.Option("auto", help="storage dtype of the output: auto (the base's), float32, bfloat16, float16"),
    seed: int = typer.Option(0, help="seed of DARE's dropping"),
) -> None:
    """Merge checkpoints tensor by tensor into a directory plain transformers loads."""
    from vlmkit.compress.merge_run import LORA_EXCLUDE, build_config, load_config, merge

    if config is not None:
        if models or base:
            raise UserError("give either --config or --models/--base, not both")
        merge_config = load_config(config)
    else:
        if not models:
            raise UserError("name the experts with --models DIR1,DIR2,... (or describe the merge in --config merge.yaml)")
        names = [m.strip() for m in models.split(",") if m.strip()]
        try:
            coefficients = [float(w) for w in weights.split(",")] if weights else [1.0] * len(names)
        except ValueError as exc:
            raise UserError(f"--weights must be comma-separated numbers, got {weights!r}") from exc
        if len(coefficients) != len(names):
            raise UserError(f"--weights has {len(coefficients)} values for {len(names)} models; give one per model")
        roles = [r.strip() for r in exclude.split(",") if r.strip()]
        roles = list(LORA_EXCLUDE) if roles == ["lora"] else roles
        merge_config = build_config(
            "options",
            merge_method=method,
            base_model=base,
            models=[{"model": n, "weight": w} for n, w in zip(names, coefficients, strict=True)],
            **{"lambda": lam},
            density=density,
            drop=drop,
            exclude=roles,
            exclude_biases=exclude_biases,
            normalize=normalize,
            dtype=dtype,
            seed=seed,
        )
    merge(merge_config, out)
    typer.echo(f"wrote {out} (record: {out / 'merge.json'})")


def sft_cmd(
    data: Path = typer.Option(..., help="conversation JSON (LLaVA/ShareGPT layout) or mixture JSON (file -> sample count)"),
    out: Path = typer.Option(..., "--out", "-o", help="directory for the fine-tuned checkpoint and result.json"),
    model: str = typer.Option("embedded-chat", "--model", "-m", help="the chat model to fine-tune (in-process)"),
    mode: str = typer.Option("lora", help="lora (rank --lora-rank on every language linear, projector trained), full, or projector"),
    lr: float = typer.Option(2e-4, help="peak learning rate (cosine schedule with warm-up)"),
    epochs: float = typer.Option(1.0, help="passes over the data (ignored with --max-steps)"),
    max_steps: int | None = typer.Option(None, help="stop after this many steps"),
    batch_size: int = typer.Option(8, help="conversations per step"),
    lora_rank: int = typer.Option(16, help="LoRA rank"),
    save_every: int = typer.Option(50, help="save the training state every this many steps (a stopped run resumes from it)"),
    seed: int = typer.Option(0, help="seed of data order, sampling and initialisation"),
    device: str = typer.Option("cpu", help="cpu, cuda, cuda:N or auto"),
) -> None:
    """Fine-tune a chat model (LoRA, full or projector only); resumable."""
    from vlmkit.compress.sft import SFTConfig
    from vlmkit.compress.sft_run import run_sft
    from vlmkit.runs.options import build_options

    config = build_options(
        SFTConfig, mode=mode, lr=lr, epochs=epochs, max_steps=max_steps, batch_size=batch_size, lora_rank=lora_rank,
        save_every=save_every, seed=seed,
    )
    with removing_fresh_out(out):
        run_sft(model, data, out, config, device=device)
    typer.echo(f"wrote {out} (load it with --model {out})")


dmo_app = typer.Typer(no_args_is_help=True, help="Data-mixture optimisation with merged proxies (arXiv 2602.04937).")


def _named_paths(text: str | None, option: str) -> dict[str, Path] | None:
    """``"a=dir1,b=dir2"`` (or plain paths, named by their folder) -> ``{name: Path}``."""
    if text is None:
        return None
    pairs = {}
    for item in (part.strip() for part in text.split(",") if part.strip()):
        name, sep, path = item.partition("=")
        path = path if sep else name
        name = name if sep else Path(path).name
        if name in pairs:
            raise UserError(f"{option} names {name!r} twice; give each entry a distinct name=PATH")
        pairs[name] = Path(path)
    return pairs


@dmo_app.command("run")
def dmo_run_cmd(
    base: Path = typer.Option(..., help="the base checkpoint the experts were fine-tuned from"),
    experts: str = typer.Option(..., help="domain experts: name=DIR,name=DIR,... (at least two)"),
    grid: int = typer.Option(2, help="domains per mixture: 2 (7 mixtures per pair), 3 (21 per triple) or 4 (21)"),
    eval_suite: Path = typer.Option(..., "--eval", help="suite JSON: benchmark name -> conversation file with reference answers"),
    out: Path = typer.Option(..., "--out", "-o", help="output directory"),
    mixed: Path | None = typer.Option(None, help="folder with one mixture-trained checkpoint per mixture id"),
    train_mixtures: str | None = typer.Option(None, help="train the mixture models here from domain data: name=FILE.json,..."),
    samples: int = typer.Option(256, help="conversations per trained mixture (the experts' sample count)"),
    sft_mode: str = typer.Option("full", help="how mixture models are trained: lora, full or projector"),
    sft_steps: int | None = typer.Option(None, help="training steps per mixture model (default: one epoch)"),
    sft_lr: float = typer.Option(1e-3, help="learning rate of mixture training"),
    regime: str = typer.Option(
        "full", help="exclusions of the merge: lora (vision, projector, embeddings, head, norms kept) or full (vision kept)"
    ),
    seed: int = typer.Option(42, help="data sampling and training of mixture models (and the grid unless --grid-seed)"),
    grid_seed: int | None = typer.Option(None, help="seed of the 4-domain Dirichlet grid (the paper: 42; default --seed)"),
) -> None:
    """Merge experts for every mixture of a grid, evaluate proxies and mixture-trained models, and rank-correlate."""
    from vlmkit.compress.dmo_run import DMOOptions, run_dmo
    from vlmkit.compress.sft import SFTConfig
    from vlmkit.runs.options import build_options

    opts = build_options(
        DMOOptions,
        base=base,
        experts=_named_paths(experts, "--experts"),
        n_domains=grid,
        suite=eval_suite,
        out=out,
        mixed=mixed,
        train_mixtures=_named_paths(train_mixtures, "--train-mixtures"),
        samples=samples,
        regime=regime,
        seed=seed,
        grid_seed=grid_seed,
        sft=build_options(SFTConfig, mode=sft_mode, max_steps=sft_steps, lr=sft_lr, seed=seed,
                          cli_names={"mode": "--sft-mode", "max_steps": "--sft-steps", "lr": "--sft-lr"}),
        cli_names={"n_domains": "--grid", "suite": "--eval"},
    )
    with removing_fresh_out(out):
        run_dmo(opts)
    typer.echo(f"wrote {out / 'result.json'} and {out / 'report.html'}")


def prune_cmd(
    model: str = typer.Option("embedded-chat", "--model", "-m", help="the chat model to prune (in-process)"),
    method: str = typer.Option(..., help="layer (Block Influence) or width (heads and MLP channels)"),
    ratio: float = typer.Option(..., help="fraction of the language backbone's parameters to remove, in (0, 1)"),
    calibration: Path = typer.Option(..., help="conversation or mixture JSON with answers (calibration samples)"),
    out: Path = typer.Option(..., "--out", "-o", help="directory for the pruned checkpoint"),
    n_calibration: int = typer.Option(50, help="calibration conversations drawn (the paper: 50 for layer, 10 for width)"),
    importance: str = typer.Option("taylor", help="width importance: taylor (|w*g|), l1, l2 or random"),
    heads: str = typer.Option("group", help="under grouped-query attention prune whole kv groups (group) or query heads only (query)"),
    seed: int = typer.Option(0, help="seed of calibration sampling and random importance"),
) -> None:
    """Prune the language backbone of a chat model (layerwise or widthwise)."""
    from vlmkit.compress.prune_run import PruneOptions, run_prune
    from vlmkit.runs.options import build_options

    opts = build_options(
        PruneOptions,
        model=model,
        out=out,
        method=method,
        ratio=ratio,
        calibration=calibration,
        n_calibration=n_calibration,
        importance=importance,
        heads=heads,
        seed=seed,
    )
    with removing_fresh_out(out):
        run_prune(opts)
    typer.echo(f"wrote {out} (load it with --model {out})")


def recover_cmd(
    model: str = typer.Option(..., "--model", "-m", help="the pruned checkpoint"),
    recipe: str = typer.Option(..., help="projector, lora, sft, kd-logits, kd-hidden or sft+kd-hidden"),
    data: Path = typer.Option(..., help="conversation or mixture JSON"),
    out: Path = typer.Option(..., "--out", "-o", help="directory for the recovered checkpoint"),
    teacher: str | None = typer.Option(None, help="the unpruned model (needed by the kd recipes)"),
    fraction: float = typer.Option(0.05, help="fraction of the data used, in (0, 1]"),
    mask: str = typer.Option("all", help="positions of the KD losses: all (as the paper) or answer"),
    lr: float = typer.Option(1e-3, help="peak learning rate"),
    epochs: float = typer.Option(1.0, help="passes over the recovery data"),
    max_steps: int | None = typer.Option(None, help="stop after this many steps"),
    batch_size: int = typer.Option(8, help="conversations per step"),
    seed: int = typer.Option(0, help="seed of data sampling and order"),
) -> None:
    """Recover a pruned model with little data: projector, LoRA, SFT and distillation recipes."""
    from vlmkit.compress.recover import run_recover
    from vlmkit.compress.sft import SFTConfig
    from vlmkit.runs.options import build_options

    if not 0 < fraction <= 1:
        raise UserError(f"--fraction must lie in (0, 1], got {fraction}")
    if mask not in ("all", "answer"):
        raise UserError(f"--mask must be all or answer, got {mask!r}")
    config = build_options(SFTConfig, lr=lr, epochs=epochs, max_steps=max_steps, batch_size=batch_size)
    with removing_fresh_out(out):
        run_recover(model, teacher, recipe, data, fraction, out, mask=mask, config=config, seed=seed)
    typer.echo(f"wrote {out} (load it with --model {out})")
