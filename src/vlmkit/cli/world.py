"""``vlmkit world ...``: generate shapes-world datasets, train and evaluate the embedded model."""

from __future__ import annotations

from pathlib import Path

import typer

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
from vlmkit.errors import UserError

app = typer.Typer(no_args_is_help=True, help="The shapes world: procedural images with known ground truth.")


@app.command("generate")
def generate_cmd(
    out: Path = OutOpt,
    n: int = typer.Option(1000, "--n", help="number of images"),
    seed: int = SeedOpt,
    spurious: str | None = typer.Option(None, help="tie target to nuisance, e.g. target=shape,nuisance=background,p=0.95"),
    second_object_p: float = typer.Option(0.0, help="probability of a second, small object"),
    background_p: float = typer.Option(0.5, help="probability that a caption names the background"),
    side: int = typer.Option(96, help="image side in pixels"),
) -> None:
    """Render N images and write PNGs, manifest.jsonl and prompts.json."""
    from vlmkit.data import world as w
    from vlmkit.data.world_sample import CaptionStyle, generate

    if n < 1 or side < 32 or not 0 <= second_object_p <= 1 or not 0 <= background_p <= 1:
        raise UserError("need --n >= 1, --side >= 32, and probabilities in [0, 1]")
    try:
        knob = w.Spurious.parse(spurious) if spurious else None
    except ValueError as exc:
        raise UserError(f"bad --spurious {spurious!r}: {exc}") from exc
    manifest = generate(out, n, seed, side=side, spurious=knob, second_object_p=second_object_p,
                        style=CaptionStyle(background=background_p))
    typer.echo(f"wrote {n} images and {manifest}")


@app.command("personal")
def personal_cmd(
    out: Path = OutOpt,
    concepts: int = typer.Option(6, help="personal concepts (specific objects)"),
    ambiguity: str = typer.Option("high", help="low: distractors differ in colour and texture; high: in one fine detail"),
    references: int = typer.Option(3, help="reference views per concept"),
    queries: int = typer.Option(4, help="positive queries per concept (as many negatives, from its look-alikes)"),
    distractors: int = typer.Option(2, help="look-alike distractors per concept"),
    side: int = typer.Option(96, help="image side in pixels"),
    seed: int = SeedOpt,
) -> None:
    """A personalisation set for vlmkit r2p: concepts/ (reference views) and a query manifest.jsonl."""
    from vlmkit.data.world_personal import generate_personal

    manifest = generate_personal(out, n_concepts=concepts, ambiguity=ambiguity, seed=seed, references=references, queries=queries,
                                 distractors=distractors, side=side)
    typer.echo(f"wrote {out / 'concepts'} and {manifest}")


@app.command("train-model")
def train_cmd(
    out: Path = OutOpt,
    biased: bool = typer.Option(
        False, "--biased/--unbiased", help="train the biased twin (shape tied to background, background unsaid, text adapter)"
    ),
    text_biased: bool = typer.Option(
        False,
        "--text-biased/--no-text-biased",
        help="train the text-biased twin (embedded's image tower frozen, text adapter trained where shape is tied to background)",
    ),
    steps: int | None = typer.Option(None, help="optimisation steps (default: the shipped model's)"),
    pool: int | None = typer.Option(None, help="images rendered for training (default: the shipped model's)"),
    seed: int = SeedOpt,
    threads: int = typer.Option(2, help="CPU threads for torch"),
) -> None:
    """Train the embedded model LiT-style on the shapes world (resumes from OUT/work)."""
    from vlmkit.models.embedded_train import TrainConfig, biased_config, textbiased_config, train

    if biased and text_biased:
        raise UserError("choose one of --biased and --text-biased")
    if (steps is not None and steps < 1) or (pool is not None and pool < 16) or threads < 1:
        raise UserError("need --steps >= 1, --pool >= 16 and --threads >= 1")
    cfg = biased_config(seed) if biased else textbiased_config(seed) if text_biased else TrainConfig(seed=seed)
    cfg.steps = steps or cfg.steps
    cfg.pool = pool or cfg.pool
    cfg.threads = threads
    model_dir = train(cfg, out, log=typer.echo)
    typer.echo(f"wrote {model_dir}; evaluate it with: vlmkit world eval-model --model {model_dir} --out <dir>")


@app.command("eval-model")
def eval_cmd(
    out: Path = OutOpt,
    model: str = ModelOpt,
    n: int = typer.Option(1000, "--n", help="images in the evaluation split"),
    world_seed: int = typer.Option(1000, help="seed of the evaluation split (training uses seed 0)"),
    spurious: str | None = typer.Option(None, help="evaluate on a biased split instead of a balanced one"),
    batch_size: int = BatchOpt,
    cache: bool = CacheOpt,
    cache_dir: Path | None = CacheDirOpt,
    device: str = DeviceOpt,
    seed: int = SeedOpt,
) -> None:
    """Zero-shot accuracy of every attribute, worst-group accuracy and caption retrieval."""
    run_job("vlmkit.classify.world_eval", "WorldEvalOptions", "run_world_eval", dict(locals()))


@app.command("train-chat")
def train_chat_cmd(
    out: Path = OutOpt,
    steps: int | None = typer.Option(None, help="optimisation steps (default: the shipped embedded-chat's)"),
    pool: int | None = typer.Option(None, help="single-object training scenes (default: the shipped model's)"),
    grid: int = typer.Option(8, help="image patch grid: 8 (65 tokens per image, embedded's own 96 px view) or 4 (17 tokens, 48 px)"),
    seed: int = SeedOpt,
    threads: int = typer.Option(1, help="CPU threads for torch (1 is fastest on a busy machine)"),
) -> None:
    """Train embedded-chat (a tiny LLaVA) on shapes-world conversations; resumes from OUT/work."""
    from vlmkit.models.embedded_chat_train import ChatTrainConfig, train

    if (steps is not None and steps < 1) or (pool is not None and pool < 64) or threads < 1 or grid not in (1, 2, 4, 8):
        raise UserError("need --steps >= 1, --pool >= 64, --threads >= 1 and --grid 1, 2, 4 or 8")
    cfg = ChatTrainConfig(seed=seed, threads=threads, grid=grid)
    cfg.steps = steps or cfg.steps
    cfg.pool = pool or cfg.pool
    model_dir = train(cfg, out, log=typer.echo)
    typer.echo(f"wrote {model_dir}; evaluate it with: vlmkit world eval-chat --model {model_dir} --out <dir>")


@app.command("eval-chat")
def eval_chat_cmd(
    out: Path = OutOpt,
    model: str = typer.Option(
        "embedded-chat", "--model", "-m", help="a chat model: embedded-chat, a directory, hf:<repo-or-dir>, openai:<model>"
    ),
    n: int = typer.Option(500, "--n", help="conversations per task"),
    seed: int = typer.Option(1000, help="world seed of the evaluation split (embedded-chat trains on 0, validates on 1)"),
    batch_size: int = typer.Option(32, help="conversations per generate call"),
    device: str = DeviceOpt,
    backend: str = typer.Option("auto", help="chat backend: auto (NumPy where it applies, same answers), hf or numpy"),
) -> None:
    """Accuracy of a chat model on shapes-world questions, naming, counting, ICL and follow-ups."""
    if n < 1:
        raise UserError("need --n >= 1")
    run_job("vlmkit.classify.world_chat_eval", "WorldChatEvalOptions", "run_world_chat_eval", dict(locals()))
