"""Where SITH's decomposition spends its time: every piece timed function by function, in one process.

    python benchmarks/sith_profile.py [--model random:clip-vit-l14] [--layers all] [--threads 1]

Loads the model, vocabulary and image mean from the caches (run ``vlmkit sith`` once first), then
runs :func:`vlmkit.interpret.sith.explain` with each piece wrapped in a timer: the SVD, the map
into the joint space, the screening index, the first pass (and its bfloat16 -> float32
conversion), the candidate lists, each kind of work of the later selection steps, NNLS and
fidelity. A piece's time includes the pieces it calls (``first_pass`` includes the conversion,
``CandidateScreen.select`` its ``_wide``, ``_upper``, ``_lower`` and ``_exact``), so the lines do
not add up. Prints one line per piece, seconds of wall time, largest first, then the screen's
counts per batch of 1,024 vectors (candidates on the lists per vector, rows screened over the
whole dictionary and exact scores per later step, step one's exact scores counted in). The
process keeps freed memory in the heap, as ``vlmkit sith`` does.
"""

from __future__ import annotations

import argparse
import collections
import functools
import time

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="random:clip-vit-l14")
    parser.add_argument("--vocab", default="default")
    parser.add_argument("--layers", default="all")
    parser.add_argument("--image-mean", default="auto")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from vlmkit.interpret import comp, screen, sith
    from vlmkit.interpret.concepts import build_dictionary
    from vlmkit.interpret.image_mean import resolve_image_mean
    from vlmkit.interpret.vocab import load_vocabulary
    from vlmkit.models import load_model
    from vlmkit.runs.cache import EmbeddingCache
    from vlmkit.runs.memory import reuse_freed_memory

    reuse_freed_memory()
    seconds: collections.Counter = collections.Counter()

    def timed(owner, name: str, label: str) -> None:
        inner = getattr(owner, name)

        @functools.wraps(inner)
        def wrapper(*a, **k):
            start = time.perf_counter()
            try:
                return inner(*a, **k)
            finally:
                seconds[label] += time.perf_counter() - start

        setattr(owner, name, wrapper)

    timed(screen.ScreenIndex, "first_pass", "first pass (product, conversion, row maxima, slack)")
    timed(screen, "_bfloat16_to_float32", "  bfloat16 -> float32 conversion")
    timed(screen, "_block", "candidate lists (CSR)")
    timed(screen.CandidateScreen, "select_first", "step 1 (exact scores within 2 slack)")
    timed(screen.CandidateScreen, "select", "steps 2-K")
    for name, label in [("_wide", "whole-dictionary rows"), ("_upper", "upper ends on the lists"),
                        ("_lower", "lower bounds (seeds)"), ("_exact", "exact scores (all calls)")]:
        timed(screen.CandidateScreen, name, f"  {label}")
    timed(comp, "nnls_normal", "NNLS")
    timed(sith, "sparse_code", "sparse coding (all of the above)")
    timed(sith, "layer_svd", "SVD")
    timed(sith, "to_joint_space", "map into the joint space")
    timed(sith, "fidelity", "fidelity (map back)")
    timed(sith, "ScreenIndex", "screening index")

    counts: collections.Counter = collections.Counter()  # the screens' counts, read when each is done
    opened = screen.CandidateScreen.__init__
    coded = sith.sparse_code
    live = []

    def keep(self, *a, **k):
        opened(self, *a, **k)
        live.append(self)

    def count(*a, **k):
        out = coded(*a, **k)
        for s in live:  # read, then let the batch's screen go: keeping 24 score matrices alive would grow the heap
            counts.update(rows=s.targets.shape[0], candidates=s.candidates, widened=s.widened, finalists=s.finalists)
        live.clear()
        return out

    screen.CandidateScreen.__init__ = keep
    sith.sparse_code = count

    cache = EmbeddingCache()
    model = load_model(args.model)
    weights = model.vision_weights()
    dictionary = build_dictionary(model, load_vocabulary(args.vocab), cache=cache)
    image_mean, _ = resolve_image_mean(model, args.image_mean, cache=cache)
    layers = sith.parse_layers(args.layers, weights.n_layers)
    start = time.perf_counter()
    sith.explain(weights, layers, dictionary, image_mean, sith.SithConfig())
    seconds["explain (everything)"] = time.perf_counter() - start
    for label, value in seconds.most_common():
        print(f"{value:8.3f} s  {label}")
    steps, rows = sith.SithConfig().k - 1, counts["rows"]
    print(f"per vector: {counts['candidates'] / rows:.0f} list candidates; per later step and 1,024 vectors: "
          f"{1024 * counts['widened'] / rows / steps:.0f} rows over the whole dictionary, "
          f"{1024 * counts['finalists'] / rows / steps:.0f} exact scores (step one's counted in)")

if __name__ == "__main__":
    main()
