"""Screened COMP against the direct implementation on a real architecture's head vectors.

    python benchmarks/sith_codes_check.py [--model random:clip-vit-l14] [--layers 0,12,23] [--image-mean auto]

The direct implementation (every step rescores ``residual + lam * mean_S`` against the whole
dictionary) is the one vlmkit shipped before the factored and screened scoring; it is kept in
``tests/test_comp_screen.py``. For each layer this prints how many of its vectors get a
different support and the largest coefficient difference, with both wall times. Run from the
repository root (it imports the test module).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.test_comp_screen import _direct_sparse_code  # noqa: E402

from vlmkit.interpret.comp import sparse_code  # noqa: E402
from vlmkit.interpret.concepts import build_dictionary  # noqa: E402
from vlmkit.interpret.heads import to_joint_space  # noqa: E402
from vlmkit.interpret.image_mean import resolve_image_mean  # noqa: E402
from vlmkit.interpret.screen import ScreenIndex  # noqa: E402
from vlmkit.interpret.sith import SithConfig, layer_svd, parse_layers  # noqa: E402
from vlmkit.interpret.vocab import load_vocabulary  # noqa: E402
from vlmkit.models import load_model  # noqa: E402
from vlmkit.runs.cache import EmbeddingCache  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="random:clip-vit-l14")
    parser.add_argument("--vocab", default="default")
    parser.add_argument("--layers", default="0,12,23")
    parser.add_argument("--image-mean", default="auto")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--lam", type=float, default=0.3)
    args = parser.parse_args()
    cache = EmbeddingCache()
    model = load_model(args.model)
    atoms = build_dictionary(model, load_vocabulary(args.vocab), cache=cache).atoms
    mean, _ = resolve_image_mean(model, args.image_mean, cache=cache)
    weights = model.vision_weights()
    index = ScreenIndex(atoms)
    cfg = SithConfig(k=args.k, lam=args.lam)
    for layer in parse_layers(args.layers, weights.n_layers):
        Vt = layer_svd(weights, layer, cfg)[2]
        targets = to_joint_space(Vt.reshape(-1, Vt.shape[-1]).float(), weights, mean)
        start = time.perf_counter()
        want = _direct_sparse_code(targets, atoms, k=args.k, lam=args.lam)
        direct_s = time.perf_counter() - start
        start = time.perf_counter()
        got = sparse_code(targets, atoms, k=args.k, lam=args.lam, index=index)
        screened_s = time.perf_counter() - start
        differing = int((~(want[0] == got[0]).all(1)).sum())
        print(f"layer {layer}: vectors {len(targets)} different supports {differing} "
              f"max coefficient difference {float((want[1] - got[1]).abs().max()):.2e} direct {direct_s:.1f} s screened {screened_s:.1f} s")


if __name__ == "__main__":
    main()
