"""Why SEM does (or does not) repair the text-side shortcut of ``embedded-textbiased``.

    python benchmarks/sem_textbiased.py --dataset runs/world-S/manifest.jsonl [--model embedded-textbiased] [--out FILE.json]

On a balanced shapes-world split (``vlmkit world generate --n 3000 --seed S``), with the model's
shipped SAE, the ``world-background`` bias prompts and the three shape templates as paraphrases
(the setting of ``vlmkit debias eval``), it measures:

1. **SAE quality on the prompts SEM edits**: cosine(x, x_hat) and FVU of the class prompts, their
   paraphrases, the background prompts and the neutral prompts; and zero-shot accuracy / worst
   group with the SAE *reconstruction* of the class prompts (no modulation), which bounds what
   any edit in latent space can keep, since SEM does not add the residual back.
2. **The shortcut in the class prompts**: for each query "a <shape>.", its *background reliance*
   ``mean cos(q, images of other shapes on its paired background) - mean cos(q, images of other
   shapes on other backgrounds)``: how much the prompt prefers the background it was tied to,
   whatever the shape. Measured for every method, with zero-shot accuracy and worst group on the
   whole split.
3. **Which latents carry it, and what SEM does to them**: each query latent ``j`` contributes
   ``h_j (W_dec[:, j] . d_bg)`` to the query's projection on ``d_bg`` (the unit mean image
   embedding of the paired background minus that of all backgrounds, among other shapes); for the
   top contributors: activation, content score ``s_c``, bias score ``s_b``, SEM_bi's ``M``, and
   the fraction of the background projection SEM_bi removes. A probe (not a method) sets every
   latent that SEM's bias score flags (``s_b > 0.5``) to the neutral median and keeps the rest:
   whether the SAE basis can express the repair when the modulation is not held back by ``s_c``.

All numbers print as JSON; ``--out`` also writes them. ``--neutral FILE`` replaces SEM's generic
reference prompts (as ``vlmkit debias eval --neutral`` does); ``--write-world-neutral FILE`` writes
310 captions of balanced world scenes (world seed 7, the SAE corpus's world, default caption
style) to use as an in-domain reference, and exits.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vlmkit.data.datasets import load_dataset
from vlmkit.data.world import Spurious
from vlmkit.data.world_sample import sample_image
from vlmkit.debias.methods import METHODS, TextDebiaser
from vlmkit.debias.prompt_sets import bias_prompts, neutral_prompts
from vlmkit.debias.sae import MatryoshkaSAE, find_sae
from vlmkit.debias.sem import median, modulation, percentile
from vlmkit.embed import embed_images
from vlmkit.metrics.fairness import worst_group_accuracy
from vlmkit.models import load_model
from vlmkit.runs.cache import EmbeddingCache

KNOB = Spurious.parse("target=shape,nuisance=background,p=0.95")


def sae_quality(sae: MatryoshkaSAE, x: torch.Tensor) -> dict[str, float]:
    x_hat = sae.decode(sae.encode(x))
    err = float(((x - x_hat) ** 2).sum())
    var = float(((x - x.mean(0)) ** 2).sum())
    return {"cosine": round(float(F.cosine_similarity(x, x_hat, dim=-1).mean()), 4), "fvu": round(err / max(var, 1e-12), 4),
            "l0": round(float((sae.encode(x) > 0).sum(1).float().mean()), 1), "n": len(x)}


def zero_shot(images: np.ndarray, text: np.ndarray, y: np.ndarray, groups: list[str], classes: list[str]) -> dict:
    predicted = (images @ text.T).argmax(1)
    correct = predicted == y
    worst, mean_group = worst_group_accuracy(correct, groups)
    by_group = {g: float(correct[np.asarray(groups) == g].mean()) for g in sorted(set(groups))}
    failing = sorted(by_group, key=by_group.get)[:3]
    return {"accuracy": round(float(correct.mean()), 4), "worst_group": round(worst, 4), "mean_group": round(mean_group, 4),
            "worst_groups": {g: round(by_group[g], 3) for g in failing},
            "predicted_as": {g: classes[np.bincount(predicted[np.asarray(groups) == g]).argmax()] for g in failing}}


def reliance(images: np.ndarray, text: np.ndarray, shapes: np.ndarray, backgrounds: np.ndarray, classes: list[str]) -> list[float]:
    """Per class prompt: mean cosine to other shapes on its paired background minus on the others."""
    out = []
    for i, shape in enumerate(classes):
        other = shapes != shape
        paired = backgrounds == KNOB.paired(shape)
        sims = images @ text[i]
        out.append(round(float(sims[other & paired].mean() - sims[other & ~paired].mean()), 4))
    return out


def world_neutral(n: int = 310) -> list[str]:
    """Captions of balanced world scenes 0.. of world seed 7 (one each), ``n`` distinct ones."""
    texts: list[str] = []
    index = 0
    while len(texts) < n:
        scene, rng = sample_image(index, 7)
        if scene.caption not in texts:
            texts.append(scene.caption)
        index += 1
    return texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--model", default="embedded-textbiased")
    parser.add_argument("--top", type=int, default=5, help="latents listed per query")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--neutral", type=Path, help="reference prompts for SEM (default: the shipped generic ones)")
    parser.add_argument("--write-world-neutral", type=Path, help="write in-domain reference captions here and exit")
    args = parser.parse_args()
    if args.write_world_neutral:
        args.write_world_neutral.parent.mkdir(parents=True, exist_ok=True)
        args.write_world_neutral.write_text("\n".join(world_neutral()) + "\n")
        return
    torch.set_num_threads(1)
    torch.set_grad_enabled(False)
    model = load_model(args.model)
    sae = MatryoshkaSAE.load(find_sae(None, args.model))
    dataset = load_dataset(args.dataset)
    shapes = np.asarray(dataset.targets("shape"))
    backgrounds = np.asarray(dataset.targets("background"))
    classes = sorted(set(shapes))
    templates = dataset.prompts["shape"]
    queries = [templates[0].format(c) for c in classes]
    para = [[t.format(c) for t in templates] for c in classes]
    bias = bias_prompts(["world-background"])
    neutral = neutral_prompts(args.neutral)
    debiaser = TextDebiaser(model, bias, sae, neutral)
    images = embed_images(model, dataset.paths, cache=EmbeddingCache()).vectors
    y = np.asarray([classes.index(s) for s in shapes])
    groups = [f"{s}|{b}" for s, b in zip(shapes, backgrounds, strict=True)]
    report: dict = {"model": args.model, "dataset": args.dataset, "images": len(y), "queries": queries}

    raw = debiaser.raw
    bias_texts = [p for prompts in bias["world-background"].values() for p in prompts]
    report["sae_quality"] = {
        "class prompts": sae_quality(sae, raw(queries)), "paraphrases": sae_quality(sae, raw([p for ps in para for p in ps])),
        "background prompts": sae_quality(sae, raw(bias_texts)), "neutral prompts": sae_quality(sae, raw(neutral)),
    }
    texts = {m: debiaser.encode(m, queries, para).numpy() for m in METHODS}
    texts["sae reconstruction"] = F.normalize(sae.decode(sae.encode(raw(queries))), dim=-1).numpy()
    # latent attribution of the shortcut, for SEM_bi
    sem = debiaser.sem()
    h_q = sem.latents(raw(queries))
    h_bar = torch.stack([median(sem.latents(raw(p))) for p in para])
    s_c = percentile(sem.reference, h_bar)
    s_b = debiaser.bias_score()
    # oracle probe, not a method: every latent SEM's own bias score flags (s_b > 0.5) set to the
    # neutral median, the rest kept: can the SAE basis express the repair at all?
    flagged = s_b > 0.5
    texts["flagged latents to median (probe)"] = F.normalize(sae.decode(torch.where(flagged, sem.reference_median, h_q)), dim=-1).numpy()
    report["methods"] = {
        m: {**zero_shot(images, t, y, groups, classes), "background_reliance": reliance(images, t, shapes, backgrounds, classes)}
        for m, t in texts.items()
    }
    M = modulation("sem_bi", s_c, s_b)
    steered = M * h_q + (1 - M) * sem.reference_median
    atoms = sae.atoms.detach()  # (latents, d)
    latents = {}
    for i, shape in enumerate(classes):
        other = shapes != shape
        paired_mean = images[other & (backgrounds == KNOB.paired(shape))].mean(0)
        d_bg = F.normalize(torch.from_numpy(paired_mean - images[other].mean(0)).float(), dim=0)
        contribution = h_q[i] * (atoms @ d_bg)
        after = steered[i] * (atoms @ d_bg)
        top = torch.argsort(contribution, descending=True)[: args.top]
        latents[shape] = {
            "paired_background": KNOB.paired(shape),
            "projection_on_d_bg": {"query": round(float(contribution.sum()), 4), "sem_bi": round(float(after.sum()), 4)},
            "top": [{"latent": int(j), "h": round(float(h_q[i, j]), 3), "contribution": round(float(contribution[j]), 4),
                     "s_c": round(float(s_c[i, j]), 3), "s_b": round(float(s_b[j]), 3), "M": round(float(M[i, j]), 3),
                     "after": round(float(after[j]), 4)} for j in top],
            "active": int((h_q[i] > 0).sum()), "active_with_s_b_over_0.5": int(((h_q[i] > 0) & (s_b > 0.5)).sum()),
        }
    report["latents"] = latents
    report["bias_score"] = {"latents_over_0.5": int((s_b > 0.5).sum()), "max": round(float(s_b.max()), 3)}
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
