"""``vlmkit sae train`` and ``vlmkit sae eval``: sparse autoencoders on a model's embeddings.

Training embeds the inputs (texts or a dataset's images) *unnormalised*, through the embedding
cache and a slice at a time, into memory-mapped files (``work/raw.npy``, then a seeded split into
``work/train.npy`` and a held-out 5% in ``work/heldout.npy``), so the embeddings need not fit in
memory, then streams them through :func:`~vlmkit.debias.sae_train.train_sae`, which resumes after an
interruption. The SAE is saved to ``--out`` (``sae.safetensors``, ``sae.json``) beside
result.json, report.html and the training log.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from pydantic import Field, model_validator

from vlmkit.debias.sae import MatryoshkaSAE, SAEConfig, quality
from vlmkit.debias.sae_train import SAETrainConfig, train_sae
from vlmkit.embed import CHUNK, embed_images, embed_texts
from vlmkit.errors import UserError
from vlmkit.models import load_model
from vlmkit.report import html, plots
from vlmkit.runs.files import atomic_write_json
from vlmkit.runs.options import RunOptions
from vlmkit.runs.readers import read_texts
from vlmkit.runs.record import Run
from vlmkit.runs.stamps import build_once

HELDOUT = 0.05


class SAEDataOptions(RunOptions):
    texts: Path | None = None
    dataset: str | None = None

    @model_validator(mode="after")
    def _one_source(self):
        if (self.texts is None) == (self.dataset is None):
            raise ValueError("give exactly one of --texts FILE or --dataset D")
        return self


class SAETrainOptions(SAEDataOptions):
    latents: int = Field(16384, ge=2)
    k: str = "256,512"
    weighting: str = "reverse"
    steps: int = Field(2000, ge=1)
    train_batch: int = Field(1024, ge=1)
    lr: float = Field(1e-3, gt=0)

    @model_validator(mode="after")
    def _levels(self):
        self.sae_config(1)  # checks --k, --latents and --weighting before any embedding
        return self

    def sae_config(self, d_in: int) -> SAEConfig:
        try:
            levels = tuple(int(v) for v in self.k.split(","))
            return SAEConfig(d_in, self.latents, levels, self.weighting)
        except ValueError as exc:
            raise ValueError(f"--k/--latents/--weighting: {exc}") from exc


class SAEEvalOptions(SAEDataOptions):
    sae: Path


SLICE = 64 * CHUNK  # items per embedding call: a multiple of the cache chunk, so cache keys line up


def _items(opts: SAEDataOptions) -> tuple[list, object]:
    cache = opts.embedding_cache()
    if opts.texts is not None:
        return read_texts(opts.texts), lambda model, part: embed_texts(model, part, cache=cache, normalize=False).vectors
    from vlmkit.data.datasets import load_dataset

    paths = load_dataset(opts.dataset).paths
    return paths, lambda model, part: embed_images(model, part, batch_size=opts.batch_size, cache=cache, skip_bad=True,
                                                   normalize=False).vectors


def iter_raw_embeddings(model, opts: SAEDataOptions) -> Iterator[np.ndarray]:
    """Unnormalised embeddings of the texts or the dataset's images, ``SLICE`` items at a time
    (unreadable images are skipped), so no more than one slice is in memory."""
    items, embed = _items(opts)
    for start in range(0, len(items), SLICE):
        yield embed(model, items[start : start + SLICE])


def raw_embeddings_to_disk(model, opts: SAEDataOptions, path: Path) -> tuple[np.ndarray, float]:
    """Stream the embeddings into a memory-mapped ``.npy`` at ``path``; returns the filled rows and
    a checksum of them."""
    items, _ = _items(opts)
    out, filled, checksum = None, 0, 0.0
    for part in iter_raw_embeddings(model, opts):
        if out is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(len(items), part.shape[1]))
        out[filled : filled + len(part)] = part
        filled += len(part)
        checksum += float(np.float64(part.sum()))
    if out is None:
        raise UserError("nothing to embed")
    out.flush()
    return out[:filled], checksum


def _split_to_disk(vectors: np.ndarray, checksum: float, work: Path, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Write a seeded train / held-out split as memory-mapped ``.npy`` files; reuse a matching one."""
    stamp = {"rows": int(vectors.shape[0]), "dim": int(vectors.shape[1]), "seed": seed, "checksum": checksum}

    def write() -> None:
        order = np.random.default_rng(seed).permutation(len(vectors))
        n_held = max(1, int(round(HELDOUT * len(vectors)))) if len(vectors) > 20 else 0
        for name, rows in (("heldout", order[:n_held]), ("train", order[n_held:])):
            out = np.lib.format.open_memmap(work / f"{name}.npy", mode="w+", dtype=np.float32, shape=(len(rows), vectors.shape[1]))
            for first in range(0, len(rows), 65536):
                block = rows[first : first + 65536]
                out[first : first + len(block)] = vectors[np.sort(block)][np.argsort(np.argsort(block))]
            out.flush()

    build_once(work / "split.json", stamp, write, work / "train.npy", work / "heldout.npy")
    return np.load(work / "train.npy", mmap_mode="r"), np.load(work / "heldout.npy", mmap_mode="r")


def _quality(sae: MatryoshkaSAE, data: np.ndarray) -> dict | None:
    if len(data) == 0:
        return None
    chunks = (torch.from_numpy(np.array(data[i : i + 8192])) for i in range(0, len(data), 8192))
    return _rounded(quality(sae, chunks))


def _rounded(measured) -> dict:
    return {k: round(v, 5) if isinstance(v, float) else v for k, v in vars(measured).items()}


CHECKSUM_TOLERANCE = 1e-4  # relative: the same inputs embedded on another device or batch size round differently


def _refuse_other_training(out: Path, settings: dict | None = None, rows: int | None = None, checksum: float | None = None) -> None:
    """Resume only the same training. ``out``'s checkpoint records, in ``work/training.json``, its
    SAE and training settings and the embeddings it was trained on (rows, checksum); a run whose
    ``settings`` (checked before any embedding) or embeddings (checked once they are computed)
    differ is refused in one line instead of loading the wrong state (a traceback for other shapes,
    a silently mislabelled SAE otherwise). Called with every argument, it records them."""
    stamp = out / "work" / "training.json"
    saved = json.loads(stamp.read_text()) if stamp.is_file() and (out / "checkpoint.safetensors").is_file() else None
    settings = None if settings is None else json.loads(json.dumps(settings))
    if saved is not None and settings is not None and saved["settings"] != settings:
        raise UserError(f"{out} holds an SAE trained with other settings (--latents, --k, --steps, --train-batch, --lr, --seed or the "
                        "model); use a new --out, or the same options to resume it")
    if saved is not None and rows is not None and (saved["rows"] != rows or
                                                    not math.isclose(saved["checksum"], checksum, rel_tol=CHECKSUM_TOLERANCE)):
        raise UserError(f"{out} holds an SAE trained on other embeddings (other texts or images); use a new --out, or the same data "
                        "to resume it")
    if None not in (settings, rows, checksum):
        atomic_write_json(stamp, {"settings": settings, "rows": rows, "checksum": checksum})


def run_sae_train(opts: SAETrainOptions) -> Path:
    run = Run(opts.out, "sae train", opts.model_dump(mode="json"), seed=opts.seed)
    with run.timer("load_model"):
        model = load_model(opts.model, device=opts.resolved_device())
    work = Path(opts.out) / "work"
    settings = {"sae": asdict(opts.sae_config(model.embed_dim)), "steps": opts.steps, "train_batch": opts.train_batch, "lr": opts.lr,
                "seed": opts.seed, "model": model.fingerprint}
    _refuse_other_training(Path(opts.out), settings)
    with run.timer("embed"):
        vectors, checksum = raw_embeddings_to_disk(model, opts, work / "raw.npy")
    _refuse_other_training(Path(opts.out), settings, len(vectors), checksum)
    sae_cfg = opts.sae_config(vectors.shape[1])
    if len(vectors) < 2:
        raise UserError("an SAE needs at least 2 embeddings to train on")
    train, heldout = _split_to_disk(vectors, checksum, work, opts.seed)
    cfg = SAETrainConfig(steps=opts.steps, batch_size=min(opts.train_batch, len(train)), lr=opts.lr, seed=opts.seed)
    log_path = Path(opts.out) / "train_log.jsonl"
    losses: list[tuple[int, float]] = []

    def log(record: dict) -> None:
        losses.append((record["step"], record["loss"]))
        with log_path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")

    with run.timer("train"):
        sae = train_sae(train, sae_cfg, cfg, opts.out, log=log)
    result = {
        "model": model.name, "source": str(opts.texts or opts.dataset), "rows": {"train": len(train), "heldout": len(heldout)},
        "sae": {"d_in": sae_cfg.d_in, "latents": sae_cfg.latents, "k_levels": list(sae_cfg.k_levels), "weighting": sae_cfg.weighting},
        "quality": {"train": _quality(sae, train[: 50_000]), "heldout": _quality(sae, heldout)},
    }
    run.info["model_fingerprint"] = model.fingerprint
    return run.finish(result, _report(result, losses))


def run_sae_eval(opts: SAEEvalOptions) -> Path:
    run = Run(opts.out, "sae eval", opts.model_dump(mode="json"), seed=opts.seed)
    try:
        sae = MatryoshkaSAE.load(opts.sae)
    except (OSError, ValueError, KeyError) as exc:
        raise UserError(f"cannot load an SAE from {opts.sae}: {exc}") from exc
    model = load_model(opts.model, device=opts.resolved_device())
    if model.embed_dim != sae.cfg.d_in:
        raise UserError(f"the SAE reads {sae.cfg.d_in}-d embeddings but {model.name} gives {model.embed_dim}-d ones; use the SAE trained "
                        "for this model")
    rows = 0

    def parts():
        nonlocal rows
        for part in iter_raw_embeddings(model, opts):
            rows += len(part)
            yield torch.from_numpy(part)

    measured = quality(sae, parts())
    result = {"model": model.name, "sae": str(opts.sae), "source": str(opts.texts or opts.dataset), "rows": rows,
              "quality": _rounded(measured)}
    return run.finish(result, _report(result, []))


def _report(result: dict, losses: list[tuple[int, float]]) -> str:
    quality_rows = result["quality"].items() if "train" in result["quality"] else [("data", result["quality"])]
    rows = [(name, q["fvu"], q["cosine"], q["l0"], q["dead"], q["sparsity"]) for name, q in quality_rows if q]
    blocks = [
        html.key_values({k: v for k, v in result.items() if k not in ("quality",)}),
        html.section(
            "Reconstruction quality (ReLU latents, as at inference)",
            html.table(["split", "FVU", "cosine", "L0", "dead latents", "sparsity"], rows),
        ),
    ]
    if losses:
        steps, values = zip(*losses, strict=True)
        blocks.append(html.section("Training loss (this session's steps)", plots.lines({"loss": values}, x=steps, xlabel="step",
                                                                                       ylabel="Matryoshka loss", log_y=min(values) > 0)))
    return html.page(f"Sparse autoencoder: {result['model']}", *blocks)
