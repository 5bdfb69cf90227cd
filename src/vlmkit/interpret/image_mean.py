"""The image-embedding mean that SITH subtracts from mapped directions (arXiv 2603.24653, §3 step 3).

The paper averages unit CLIP image embeddings over CC12M. vlmkit offers these sources:

- ``synthetic`` (data-free): the mean unit embedding of 64 seeded *dead-leaves*
  images (:func:`dead_leaves_images`), a procedural stand-in for natural images. It captures the
  offset that every image embedding shares (what the paper's centring removes), not the
  semantics of a particular collection.
- ``world``: 64 balanced shapes-world scenes, the training distribution of the embedded models.
- ``auto`` (the default): ``world`` for models that declare the ``world_images`` capability (the
  embedded ones), ``synthetic`` for every other model.
  Out-of-distribution images collapse onto nearly one embedding in a model that never saw them
  (dead leaves give a mean of norm 0.99 on ``embedded``), which would swamp every mapped vector.
- a dataset (manifest or image folder): the mean unit embedding of its images, computed through
  the embedding cache, so it is computed once per model and preprocessing.

``none`` skips the subtraction.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import Tensor

from vlmkit.embed import cache_namespace, embed_images
from vlmkit.errors import UserError
from vlmkit.runs.cache import EmbeddingCache

RENDERED_IMAGES = 64


def dead_leaves_images(n: int, size: int, seed: int = 0) -> np.ndarray:
    """``(n, size, size, 3)`` uint8 *dead-leaves* images, deterministic in ``seed``.

    Each image stacks 60-160 random discs and rectangles of random colours whose sizes follow a
    power law (many small, few large), on a random background: the classic procedural model of
    natural-image statistics (occlusion, edges, flat regions, a 1/f spectrum).
    """
    rng = np.random.default_rng(seed)
    images = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        image = Image.new("RGB", (size, size), tuple(int(c) for c in rng.integers(0, 256, 3)))
        draw = ImageDraw.Draw(image)
        for _ in range(int(rng.integers(60, 161))):
            radius = size * 0.02 / rng.uniform(0.02, 1.0) ** 0.7  # power-law radii, 0.02-1.5 x size
            x, y = rng.uniform(0, size, 2)
            box = (x - radius, y - radius, x + radius, y + radius)
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour)
        images[i] = np.asarray(image)
    return images


def world_images(n: int, size: int, seed: int = 0) -> np.ndarray:
    """``(n, size, size, 3)`` uint8 scenes of the shapes world (balanced, no spurious knob)."""
    from vlmkit.data.world import render
    from vlmkit.data.world_sample import sample_image

    out = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        scene, rng = sample_image(i, seed)
        out[i] = render(scene, size, rng)
    return out


RENDERERS = {"synthetic": dead_leaves_images, "world": world_images}


def rendered_image_mean(model, source: str, n: int = RENDERED_IMAGES, seed: int = 0, cache: EmbeddingCache | None = None,
                        batch_size: int = 16) -> Tensor:
    """Mean unit image embedding ``(D,)`` over ``n`` images drawn by ``RENDERERS[source]``, cached per model."""
    namespace = cache_namespace(model, "image") + "|rendered-mean"
    key = EmbeddingCache.chunk_key(namespace, [f"{source}-v1 n={n} seed={seed}"])
    if cache is not None and (hit := cache.get(namespace, key)) is not None:
        return torch.from_numpy(hit[0][0])
    images = RENDERERS[source](n, model.preprocess.output_size, seed)
    with torch.no_grad():
        vectors = torch.cat([model.encode_images(model.preprocess.normalize(images[i : i + batch_size])) for i in range(0, n, batch_size)])
    mean = vectors.float().mean(0)
    if cache is not None:
        cache.put(namespace, key, mean[None].numpy(), [""])
    return mean


def dataset_image_mean(model, dataset: str, cache: EmbeddingCache | None = None, batch_size: int = 32) -> tuple[Tensor, int]:
    """Mean unit image embedding ``(D,)`` of a dataset's images, and how many were used."""
    from vlmkit.data.datasets import load_dataset

    samples = load_dataset(dataset).samples
    encoded = embed_images(model, [s.path for s in samples], batch_size=batch_size, cache=cache, skip_bad=True)
    if len(encoded.indices) == 0:
        first = encoded.failed[0][2] if encoded.failed else "no images"
        raise UserError(f"--image-mean {dataset}: none of its {len(samples)} images could be read (first: {first}); "
                        "fix the images, or use --image-mean auto, synthetic, world or none")
    return torch.from_numpy(encoded.vectors).float().mean(0), len(encoded.indices)


def resolve_image_mean(model, spec: str, cache: EmbeddingCache | None = None, batch_size: int = 32) -> tuple[Tensor | None, dict]:
    """``auto`` | ``synthetic`` | ``world`` | ``none`` | a dataset -> (mean or None, a description for the run record)."""
    if spec == "none":
        return None, {"source": "none"}
    if spec == "auto":
        spec = "world" if "world_images" in model.supports else "synthetic"
    if spec in RENDERERS:
        mean, used = rendered_image_mean(model, spec, cache=cache), RENDERED_IMAGES
    else:
        mean, used = dataset_image_mean(model, spec, cache=cache, batch_size=batch_size)
    return mean, {"source": spec, "images": used, "norm": round(float(mean.norm()), 4)}
