"""Train the sparse autoencoders shipped beside the embedded models (``weights/<model>/sae``).

Corpus (``--corpus``, written if missing): 4 captions each of 6,000 balanced shapes-world scenes
(every attribute named with the default caption style, world seed 7), the world's prompt
templates for every attribute value, SEM's 310 neutral prompts and ``a photo of a <word>.`` for
the 5,000 most frequent words of the ``default`` vocabulary: general text as well as world text,
as the paper trains on a general caption corpus. Each model's *unnormalised* text embeddings of
it train a Matryoshka SAE (2,048 latents, TopK levels 16 and 32, 3,000 steps); the weights are
stored in float16 to keep the package small. About 5 minutes per model on 2 cores::

    python scripts/build_world_sae.py [--models embedded,embedded-biased,embedded-textbiased] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from vlmkit.data.world import ATTRIBUTES
from vlmkit.data.world_sample import caption, sample_image, world_prompts
from vlmkit.debias.prompt_sets import neutral_prompts
from vlmkit.debias.sae import SAEConfig
from vlmkit.debias.sae_train import SAETrainConfig, train_sae
from vlmkit.embed import embed_texts
from vlmkit.interpret.vocab import load_vocabulary
from vlmkit.models import load_model
from vlmkit.models.embedded import shipped_dir
from vlmkit.runs.cache import EmbeddingCache

SCENES, CAPTIONS_PER_SCENE, WORDS = 6000, 4, 5000
SAE = SAEConfig(d_in=384, latents=2048, k_levels=(16, 32))
TRAIN = SAETrainConfig(steps=3000, batch_size=1024, lr=1e-3, warmup=100)


def corpus() -> list[str]:
    texts: list[str] = []
    for i in range(SCENES):
        scene, rng = sample_image(i, 7)
        texts += [caption(scene, rng)[0] for _ in range(CAPTIONS_PER_SCENE)]
    for name, templates in world_prompts().items():
        texts += [t.format(value) for t in templates for value in ATTRIBUTES.get(name, ())]
    texts += neutral_prompts()
    texts += [f"a photo of a {word}." for word in load_vocabulary("default")[:WORDS]]
    return list(dict.fromkeys(texts))


def heldout_captions() -> list[str]:
    """Two captions each of scenes 0-999 of world seed 8 (the corpus uses seed 7)."""
    texts = []
    for i in range(1000):
        scene, rng = sample_image(i, 8)
        texts += [caption(scene, rng)[0] for _ in range(2)]
    return list(dict.fromkeys(texts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="embedded,embedded-biased")
    parser.add_argument("--corpus", type=Path, default=Path("runs/sae-corpus.txt"))
    parser.add_argument("--work", type=Path, default=Path("runs/sae-work"))
    parser.add_argument("--heldout", type=Path, default=Path("runs/sae-heldout.txt"), help="also write held-out captions here")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for torch (1 on a shared machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.heldout.parent.mkdir(parents=True, exist_ok=True)
    args.heldout.write_text("\n".join(heldout_captions()) + "\n")
    if not args.corpus.is_file():
        args.corpus.parent.mkdir(parents=True, exist_ok=True)
        args.corpus.write_text("\n".join(corpus()) + "\n")
    texts = [t for t in args.corpus.read_text().splitlines() if t]
    for name in args.models.split(","):
        model = load_model(name)
        vectors = embed_texts(model, texts, cache=EmbeddingCache(), normalize=False).vectors
        data = vectors[np.random.default_rng(0).permutation(len(vectors))]
        work = args.work / name
        sae = train_sae(data, SAE, TRAIN, work, log=lambda r: print(json.dumps(r), flush=True))
        target = shipped_dir(name) / "sae"
        sae.save(target, extra={"training": asdict(TRAIN), "corpus": "scripts/build_world_sae.py",
                                "corpus_texts": len(texts)}, half=True)
        print(f"{name}: {len(texts)} texts -> {target}")


if __name__ == "__main__":
    main()
