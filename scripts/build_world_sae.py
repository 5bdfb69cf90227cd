"""Train the sparse autoencoders shipped beside the embedded models (``weights/<model>/sae``).

Corpus (``--corpus``, written if missing): 4 captions each of 6,000 balanced shapes-world scenes
(every attribute named with the default caption style, world seed 7), the world's prompt
templates for every attribute value, SEM's 310 neutral prompts and ``a photo of a <word>.`` for
the 5,000 most frequent words of the ``default`` vocabulary: general text as well as world text,
as the paper trains on a general caption corpus. Each model's *unnormalised* text embeddings of
it train a Matryoshka SAE (2,048 latents, TopK levels 16 and 32, 3,000 steps); the weights are
stored in float16 to keep the package small. About 5 minutes per model on 2 cores::

    python scripts/build_world_sae.py [--models embedded,embedded-biased,embedded-textbiased] [--threads 2]

``embedded-textbiased`` was built on a shared, loaded machine with a cheaper recipe (same SAE
shape): its world captions are the ~35,000 captions of its own training pool (the same caption
distribution), whose unit MiniLM vectors the trainer already computed, so its embeddings are its
text adapter applied to them (exact for this family; checked against the model on 8 captions);
and the SAE starts from ``embedded``'s and trains 600 steps::

    python scripts/build_world_sae.py --models embedded-textbiased --threads 1 --init-from embedded --steps 600 \
        --minilm-captions runs/train-embedded-textbiased/work
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from vlmkit.data.world import ATTRIBUTES
from vlmkit.data.world_sample import caption, sample_image, world_prompts
from vlmkit.debias.prompt_sets import neutral_prompts
from vlmkit.debias.sae import MatryoshkaSAE, SAEConfig
from vlmkit.debias.sae_train import SAETrainConfig, train_sae
from vlmkit.embed import embed_texts
from vlmkit.interpret.vocab import load_vocabulary
from vlmkit.models import load_model
from vlmkit.models.embedded import shipped_dir
from vlmkit.runs.cache import EmbeddingCache
from vlmkit.runs.checkpoint import save_training_state

SCENES, CAPTIONS_PER_SCENE, WORDS = 6000, 4, 5000
SAE = SAEConfig(d_in=384, latents=2048, k_levels=(16, 32))
TRAIN = SAETrainConfig(steps=3000, batch_size=1024, lr=1e-3, warmup=100)


def corpus() -> list[str]:
    texts: list[str] = []
    for i in range(SCENES):
        scene, rng = sample_image(i, 7)
        texts += [caption(scene, rng)[0] for _ in range(CAPTIONS_PER_SCENE)]
    return list(dict.fromkeys(texts + general_texts()))


def general_texts() -> list[str]:
    """The corpus beyond world captions: prompt templates, neutral prompts, vocabulary words."""
    texts: list[str] = []
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


def adapted_captions(model, work: Path) -> np.ndarray:
    """Raw text embeddings ``(n, 384)`` of a trainer's captions (``captions.txt``, unit MiniLM
    vectors in ``caption_emb.npy``): the embedded family's text side is ``adapter(unit MiniLM)``."""
    captions = [t for t in (work / "captions.txt").read_text().splitlines() if t]
    unit = torch.from_numpy(np.load(work / "caption_emb.npy")).float()
    with torch.no_grad():
        vectors = model.hf_model.adapt_text(unit)
        check = model.encode_texts(captions[:8], normalize=False).float()
    if not torch.allclose(check, vectors[:8], atol=1e-4):
        raise SystemExit(f"{model.name}'s text side is not adapter(unit MiniLM) on {work}'s captions; embed the corpus instead")
    return vectors.numpy()


def start_from(source: Path, work: Path) -> None:
    """Make ``train_sae`` start from the SAE at ``source``: a step-0 checkpoint with its weights."""
    if (work / "checkpoint.safetensors").is_file():
        return
    work.mkdir(parents=True, exist_ok=True)
    init = MatryoshkaSAE.load(source)
    save_training_state(work / "checkpoint.safetensors", init.state_dict(), torch.optim.Adam(init.parameters()), 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="embedded,embedded-biased")
    parser.add_argument("--corpus", type=Path, default=Path("runs/sae-corpus.txt"))
    parser.add_argument("--work", type=Path, default=Path("runs/sae-work"))
    parser.add_argument("--heldout", type=Path, default=Path("runs/sae-heldout.txt"), help="also write held-out captions here")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for torch (1 on a shared machine)")
    parser.add_argument("--steps", type=int, default=TRAIN.steps)
    parser.add_argument("--init-from", help="start from this shipped model's SAE instead of a fresh one")
    parser.add_argument("--minilm-captions", type=Path,
                        help="a world train-model work dir: use its captions (MiniLM vectors known) as the world captions")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.heldout.parent.mkdir(parents=True, exist_ok=True)
    args.heldout.write_text("\n".join(heldout_captions()) + "\n")
    if not args.corpus.is_file():
        args.corpus.parent.mkdir(parents=True, exist_ok=True)
        args.corpus.write_text("\n".join(corpus()) + "\n")
    texts = [t for t in args.corpus.read_text().splitlines() if t]
    train_cfg = replace(TRAIN, steps=args.steps)
    for name in args.models.split(","):
        model = load_model(name)
        if args.minilm_captions:
            texts = general_texts()
            vectors = np.concatenate([embed_texts(model, texts, cache=EmbeddingCache(), normalize=False).vectors,
                                      adapted_captions(model, args.minilm_captions)])
        else:
            vectors = embed_texts(model, texts, cache=EmbeddingCache(), normalize=False).vectors
        data = vectors[np.random.default_rng(0).permutation(len(vectors))]
        work = args.work / name
        if args.init_from:
            start_from(shipped_dir(args.init_from) / "sae", work)
        sae = train_sae(data, SAE, train_cfg, work, log=lambda r: print(json.dumps(r), flush=True))
        target = shipped_dir(name) / "sae"
        sae.save(target, extra={"training": asdict(train_cfg), "corpus": "scripts/build_world_sae.py", "corpus_texts": len(vectors),
                                "init_from": args.init_from, "world_captions": str(args.minilm_captions or "world seed 7")}, half=True)
        print(f"{name}: {len(vectors)} texts -> {target}")


if __name__ == "__main__":
    main()
