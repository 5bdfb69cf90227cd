"""Training the embedded model on the shapes world, LiT-style (Zhai et al., CVPR 2022).

The text tower (MiniLM) is frozen, so caption embeddings are computed once. The vision tower
and projection (and, for the biased twin, a small text adapter) learn with a symmetric
contrastive loss. Captions often leave attributes unsaid, so several captions in a batch can be
true of one image ("a red shape" fits every red object): the targets of the loss are every
caption whose mentioned attributes all match the image (and every image a caption is true of),
which also handles duplicate captions exactly.

Work is resumable: the rendered pool, caption embeddings and a safetensors checkpoint (model and
optimizer state) live under ``out/work``; rerunning the same command continues from the last
checkpoint. Batches are drawn from ``default_rng([seed, step])``, so a resumed run sees the same
batches as an uninterrupted one.

With ``freeze_vision`` only the text adapter learns, against the image features of the
``init_from`` checkpoint computed once (``embedded-textbiased``: the bias is planted in the text
side alone, :func:`textbiased_config`).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from vlmkit.data import world as w
from vlmkit.data.world_sample import CaptionStyle, caption_with_negative, sample_image
from vlmkit.models import preprocess as pp
from vlmkit.models.embedded import EmbeddedNetwork, save_network
from vlmkit.models.minilm import MiniLMEmbedder
from vlmkit.runs.checkpoint import load_training_state, save_training_state
from vlmkit.runs.files import atomic_write_json, atomic_write_text

ATTRIBUTE_NAMES = tuple(w.ATTRIBUTES)


@dataclass
class TrainConfig:
    """Options of ``vlmkit world train-model`` (defaults: the shipped ``embedded`` model)."""

    steps: int = 1300
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup: int = 60
    pool: int = 40000
    captions_per_image: int = 4
    seed: int = 0
    side: int = 96
    patch: int = 12
    hidden: int = 128
    layers: int = 6
    heads: int = 4
    spurious: str | None = None
    caption_background_p: float = 0.5
    text_adapter_hidden: int | None = None
    logit_scale_init: float = 30.0
    logit_scale_lr_mult: float = 10.0
    checkpoint_every: int = 50
    threads: int = 2
    init_from: str | None = None  # a checkpoint directory (or shipped name) to fine-tune instead of a fresh start
    freeze_vision: bool = False  # train the text adapter only, against init_from's frozen image features, at a fixed logit scale

    def network_config(self) -> dict:
        vision = {
            "hidden_size": self.hidden, "intermediate_size": 4 * self.hidden, "num_attention_heads": self.heads,
            "num_hidden_layers": self.layers, "image_size": self.side, "patch_size": self.patch, "hidden_act": "quick_gelu",
        }
        return {"vision_config": vision, "text_adapter_hidden": self.text_adapter_hidden,
                "logit_scale_init": math.log(self.logit_scale_init)}

    def preprocess(self) -> pp.ImagePreprocessor:
        clip = pp.preset("clip-224")
        return pp.ImagePreprocessor("shortest_edge", self.side, self.side, "bicubic", clip.mean, clip.std)


def biased_config(seed: int = 0) -> TrainConfig:
    """The ``embedded-biased`` twin: shape tied to background colour (p = 0.95), captions that
    rarely name the background, and a trainable text adapter so the bias can reach the text side."""
    return TrainConfig(seed=seed, steps=1600, spurious="target=shape,nuisance=background,p=0.95", caption_background_p=0.05,
                       text_adapter_hidden=256)


def textbiased_config(seed: int = 0) -> TrainConfig:
    """The ``embedded-textbiased`` twin: the image tower of ``embedded`` frozen, and a text adapter
    trained alone where shape is tied to background (p = 0.95) and captions name the background
    half the time, so the class prompts ("a star.") absorb the background paired with their shape
    (a shortcut in the *text* embeddings, SEM's Waterbirds premise). The recipe of the probe in
    ``notes/text-biased-twin-probe.md``: 6,000 scenes, 1,500 steps of 256, AdamW 1e-3, scale 1/0.07."""
    return TrainConfig(seed=seed, steps=1500, pool=6000, spurious="target=shape,nuisance=background,p=0.95", caption_background_p=0.5,
                       text_adapter_hidden=256, logit_scale_init=1 / 0.07, init_from="embedded", freeze_vision=True)


def _codes(values: dict) -> list[int]:
    """Attribute values -> integer codes in :data:`ATTRIBUTE_NAMES` order (-1: not given)."""
    return [w.ATTRIBUTES[name].index(values[name]) if name in values else -1 for name in ATTRIBUTE_NAMES]


POOL_VERSION = 2


def prepare_pool(cfg: TrainConfig, work: Path) -> dict:
    """Render the training pool and embed its captions once (resumable); returns arrays.

    Each image gets ``captions_per_image`` captions and, for each, a hard negative that gets
    one named attribute wrong (:func:`~vlmkit.data.world_sample.counterfactual`).
    """
    from vlmkit.runs.progress import track

    work.mkdir(parents=True, exist_ok=True)
    spurious = w.Spurious.parse(cfg.spurious) if cfg.spurious else None
    style = CaptionStyle(background=cfg.caption_background_p)
    done_path = work / "pool.json"
    stamp = {"version": POOL_VERSION, "pool": cfg.pool, "seed": cfg.seed, "side": cfg.side, "spurious": cfg.spurious,
             "captions_per_image": cfg.captions_per_image, "caption_background_p": cfg.caption_background_p}
    if not done_path.is_file() or json.loads(done_path.read_text()).get("stamp") != stamp:
        images = np.lib.format.open_memmap(work / "images.npy", mode="w+", dtype=np.uint8, shape=(cfg.pool, cfg.side, cfg.side, 3))
        attrs = np.zeros((cfg.pool, len(ATTRIBUTE_NAMES)), np.int16)
        mentions = np.zeros((2, cfg.pool, cfg.captions_per_image, len(ATTRIBUTE_NAMES)), np.int16)
        captions: list[str] = []
        for i in track(range(cfg.pool), "rendering the training pool", total=cfg.pool):
            image, rng = sample_image(i, cfg.seed, spurious=spurious, style=style)
            images[i] = w.render(image, cfg.side, rng)
            attrs[i] = _codes(image.attributes())
            for k in range(cfg.captions_per_image):
                (text, said), (negative, negative_said) = caption_with_negative(image, rng, style)
                captions += [text, negative]
                mentions[0, i, k], mentions[1, i, k] = _codes(said), _codes(negative_said)
        images.flush()
        unique = sorted(set(captions))
        lookup = {t: j for j, t in enumerate(unique)}
        ids = np.asarray([lookup[t] for t in captions], np.int64).reshape(cfg.pool, cfg.captions_per_image, 2)
        text = MiniLMEmbedder().encode(unique).numpy()
        np.save(work / "attrs.npy", attrs)
        np.save(work / "mentions.npy", mentions)
        np.save(work / "caption_ids.npy", np.moveaxis(ids, -1, 0))
        np.save(work / "caption_emb.npy", text)
        atomic_write_text(work / "captions.txt", "\n".join(unique) + "\n")
        atomic_write_json(done_path, {"stamp": stamp, "unique_captions": len(unique)})
    return {
        "images": np.load(work / "images.npy", mmap_mode="r"), "attrs": np.load(work / "attrs.npy"),
        "mentions": np.load(work / "mentions.npy"), "caption_ids": np.load(work / "caption_ids.npy"),
        "caption_emb": np.load(work / "caption_emb.npy"),
    }


def compatibility(mentions: torch.Tensor, attrs: torch.Tensor) -> torch.Tensor:
    """``(B, T)`` bool: caption ``j`` (mentions ``(T, A)``, -1 unsaid) is true of image ``i`` (attrs ``(B, A)``)."""
    said = mentions[None, :, :]
    return ((said == -1) | (said == attrs[:, None, :])).all(-1)


def contrastive_loss(image: torch.Tensor, text: torch.Tensor, scale: torch.Tensor, compatible: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE with every compatible pair as a positive.

    image ``(B, D)`` and text ``(T, D)`` unit vectors, ``T >= B`` (captions, then hard negatives);
    compatible ``(B, T)`` bool, true where caption ``j`` is true of image ``i`` (a true diagonal).
    """
    logits = scale * image @ text.T
    targets = compatible.float()
    image_to_text = -(targets / targets.sum(1, keepdim=True) * logits.log_softmax(1)).sum(1).mean()
    fits = targets.sum(0) > 0  # a hard negative may be true of no image in the batch
    targets, logits = targets[:, fits], logits[:, fits]
    text_to_image = -(targets / targets.sum(0, keepdim=True) * logits.log_softmax(0)).sum(0).mean()
    return (image_to_text + text_to_image) / 2


def sincos_positions(grid: int, dim: int) -> torch.Tensor:
    """2-D sine-cosine position codes ``(grid * grid, dim)`` (MAE, He et al. 2022), row-major."""
    quarter = dim // 4
    omega = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float32) / quarter)
    ys, xs = torch.meshgrid(torch.arange(grid, dtype=torch.float32), torch.arange(grid, dtype=torch.float32), indexing="ij")
    parts = [f(c.reshape(-1, 1) * omega) for c in (xs, ys) for f in (torch.sin, torch.cos)]
    codes = torch.cat(parts, dim=1)
    return F.pad(codes, (0, dim - codes.shape[1]))


@torch.no_grad()
def init_positions(network: EmbeddedNetwork, pixels: torch.Tensor) -> None:
    """Start the learned position embeddings at 2-D sine-cosine codes as strong as the patch
    embeddings. With CLIP's default initialisation (std 0.02, far below the patch embeddings)
    and weight decay, a LiT run on the world learned no position at all: a linear probe on the
    image embedding read position at chance after 500 steps."""
    embeddings = network.vision_model.embeddings
    grid = int(round((embeddings.position_embedding.num_embeddings - 1) ** 0.5))
    patches = embeddings.patch_embedding(pixels).flatten(2).transpose(1, 2)  # (b, grid*grid, d)
    codes = sincos_positions(grid, patches.shape[-1])
    codes *= patches.std() / codes.std()
    embeddings.position_embedding.weight[1:] = codes
    embeddings.position_embedding.weight[0] = 0


def _lr(cfg: TrainConfig, step: int) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def _load_weights(network: EmbeddedNetwork, source: str) -> None:
    """Start from the trainable weights of a checkpoint directory or a shipped model name."""
    from vlmkit.models.embedded import shipped_dir
    from vlmkit.models.registry import NAMED

    directory = shipped_dir(source) if source in NAMED else Path(source)
    state = load_file(directory / "model.safetensors")
    missing, unexpected = network.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith(("text_encoder.", "text_adapter."))]  # a new adapter starts at the identity
    if missing or unexpected:
        raise ValueError(f"{source} does not match the training configuration (missing {missing[:3]}, unexpected {unexpected[:3]})")


@torch.no_grad()
def frozen_image_features(network: EmbeddedNetwork, cfg: TrainConfig, images: np.ndarray, work: Path, batch: int = 256) -> torch.Tensor:
    """Unit image embeddings ``(pool, 384)`` of the pool by the (frozen) vision tower, computed once
    and kept in ``work/image_features.npy`` (keyed by the pool and ``init_from``)."""
    path, stamp_path = work / "image_features.npy", work / "image_features.json"
    stamp = {"init_from": cfg.init_from, "pool": json.loads((work / "pool.json").read_text())["stamp"]}
    if not (path.is_file() and stamp_path.is_file() and json.loads(stamp_path.read_text()) == stamp):
        network.eval()
        preprocess = cfg.preprocess()
        feats = [F.normalize(network.image_features(preprocess.normalize(images[i : i + batch])), dim=-1)
                 for i in range(0, len(images), batch)]
        np.save(path, torch.cat(feats).numpy())
        atomic_write_json(stamp_path, stamp)
    return torch.from_numpy(np.load(path))


def train(cfg: TrainConfig, out: str | Path, log=print, until: int | None = None) -> Path | None:
    """Train (or resume) and write the checkpoint directory ``out/model``; returns it.

    ``until`` stops after that many steps in all, with a checkpoint, and returns ``None``: the
    same call without it continues where it stopped.
    """
    out = Path(out)
    work = out / "work"
    torch.set_num_threads(cfg.threads)
    data = prepare_pool(cfg, work)
    atomic_write_json(out / "train_config.json", asdict(cfg))
    torch.manual_seed(cfg.seed)
    network = EmbeddedNetwork(cfg.network_config())
    if cfg.init_from:
        _load_weights(network, cfg.init_from)
    else:
        init_positions(network, cfg.preprocess().normalize(data["images"][: cfg.batch_size]))
    frozen = None
    if cfg.freeze_vision:
        if not (cfg.init_from and cfg.text_adapter_hidden):
            raise ValueError("freeze_vision needs init_from (the image tower to keep) and text_adapter_hidden (the part to train)")
        frozen = frozen_image_features(network, cfg, data["images"], work)
        with torch.no_grad():
            network.logit_scale.fill_(math.log(cfg.logit_scale_init))
        for name, param in network.named_parameters():
            param.requires_grad_(name.startswith("text_adapter."))
    trainable = ("text_adapter.",) if cfg.freeze_vision else ("",)
    named = [(n, p) for n, p in network.named_parameters() if not n.startswith("text_encoder.") and n.startswith(trainable)]
    params = [p for _, p in named]
    decay = [p for n, p in named if p.dim() >= 2 and "position_embedding" not in n]
    no_decay = [p for n, p in named if (p.dim() < 2 or "position_embedding" in n) and n != "logit_scale"]
    scale_group = [] if cfg.freeze_vision else [network.logit_scale]
    # the text tower is frozen, so captions that differ in one word ("left"/"right") are close:
    # the temperature must fall fast for the loss to see them, hence its own learning rate
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": cfg.weight_decay, "lr_mult": 1.0},
            {"params": no_decay, "weight_decay": 0.0, "lr_mult": 1.0},
            {"params": scale_group, "weight_decay": 0.0, "lr_mult": cfg.logit_scale_lr_mult},
        ],
        lr=cfg.lr,
    )
    checkpoint = work / "checkpoint.safetensors"
    start = 0
    if checkpoint.is_file():
        state, start = load_training_state(checkpoint, optimizer)
        network.load_state_dict(state, strict=False)
    if start:
        log(f"resuming from step {start}")
    preprocess = cfg.preprocess()
    caption_emb = torch.from_numpy(data["caption_emb"])
    attrs_all = torch.from_numpy(data["attrs"].astype(np.int64))
    mentions_all = torch.from_numpy(data["mentions"].astype(np.int64))  # (2, pool, K, A): captions, negatives
    network.train(not cfg.freeze_vision)
    t0, log_path = time.perf_counter(), out / "train_log.jsonl"
    for step in range(start, min(cfg.steps, until or cfg.steps)):
        rng = np.random.default_rng([cfg.seed, step])
        index = np.sort(rng.choice(cfg.pool, cfg.batch_size, replace=False))
        which = rng.integers(cfg.captions_per_image, size=cfg.batch_size)
        for group in optimizer.param_groups:
            group["lr"] = _lr(cfg, step) * group["lr_mult"]
        if frozen is not None:
            image = frozen[index]
        else:
            image = F.normalize(network.image_features(preprocess.normalize(data["images"][index])), dim=-1)
        ids = np.concatenate([data["caption_ids"][0, index, which], data["caption_ids"][1, index, which]])
        text = F.normalize(network.adapt_text(caption_emb[ids]), dim=-1)
        said = torch.cat([mentions_all[0, index, which], mentions_all[1, index, which]])
        compatible = compatibility(said, attrs_all[index])
        scale = network.logit_scale.clamp(max=math.log(100)).exp()
        loss = contrastive_loss(image, text, scale, compatible)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        if step % 10 == 0 or step == cfg.steps - 1:
            record = {"step": step, "loss": round(float(loss.detach()), 4), "lr": _lr(cfg, step), "scale": round(float(scale.detach()), 2),
                      "elapsed_s": round(time.perf_counter() - t0, 1)}
            with log_path.open("a") as handle:
                handle.write(json.dumps(record) + "\n")
            log(json.dumps(record))
        if (step + 1) % cfg.checkpoint_every == 0 or step + 1 in (cfg.steps, until):
            save_training_state(checkpoint, network.trainable_state(), optimizer, step + 1)
    if until is not None and until < cfg.steps:
        return None
    network.eval()
    return save_network(network, preprocess, out / "model")
