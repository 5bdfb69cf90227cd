"""SITH end to end, as a user runs it, against the one-pass floor measured in the same run.

    python benchmarks/sith_bench.py [--model random:clip-vit-l14] [--vocab default] [--layers all]
                                    [--threads N] [--reference OLD/arrays.npz] [--skip-sklearn]

1. Warm-up (skipped with ``--no-warm``): one ``vlmkit sith`` run that fills the caches (drawn
   random weights, vocabulary embeddings, image mean, MiniLM concept vectors); not timed.
2. The floor: every explained vector scored once against the whole dictionary, i.e. the float32
   ``(vectors x 768) @ (768 x concepts)`` products in batches of 1,024 (the size SITH uses; SITH
   itself makes this pass in bfloat16 where the CPU has it, see docs/sith.md), timed
   in this process just before and just after the CLI run (the machine is shared; both are
   reported and the ratios use their mean), as wall time and as CPU time of this process.
3. The CLI: ``vlmkit sith --model M --layers L --vocab V --k K --out DIR`` in a subprocess under
   ``/usr/bin/time -v``: wall time (from this process, Python start to exit), CPU time (user +
   system; the system part also apart, where page faults of fresh allocations show), peak
   resident memory, and the split the run records in ``run.json`` (load and
   weight view, vocabulary, image mean, decomposition, coherence, building result and report;
   wall), and ``rest_s``: the wall time ``run.json`` does not cover (interpreter start, imports,
   writing the files). On a machine shared with other jobs
   the CPU-time ratio is the steadier one: waiting for a core counts in wall time only. Both
   sides run with the same number of threads (``--threads``, default torch's), and the load
   average before and after is reported.
   Beside it, ``import_torch_s``: the median wall time of ``python -c "import torch"`` over three
   runs, a fixed cost of every CLI run that no algorithm changes.
4. With ``--reference``: the run's codes against an ``arrays.npz`` written by another vlmkit
   version (e.g. before the screened scoring): supports must be equal, coefficients within 1e-5.
5. Non-negative OMP (COMP with lambda = 0) against scikit-learn's ``OrthogonalMatchingPursuit``
   fitted vector by vector on the same targets: speed ratio and agreement of the selected atoms
   (scikit-learn's OMP is unconstrained, so agreement is expected only where the non-negative
   constraint does not bind; planted targets ``sum_k c_k d_k`` with ``c_k`` in [0.5, 1.5] are
   the fair case).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def cli(args, out: Path) -> tuple[float, dict]:
    """Run ``vlmkit sith`` under ``/usr/bin/time -v``; wall seconds and the measured facts."""
    command = [sys.executable, "-m", "vlmkit.cli.main", "sith", "--model", args.model, "--layers", args.layers,
               "--vocab", args.vocab, "--k", str(args.k), "--image-mean", args.image_mean, "--out", str(out)]
    timer = ["/usr/bin/time", "-v"] if Path("/usr/bin/time").exists() else []
    env = os.environ | ({"OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)} if args.threads else {})
    start = time.perf_counter()
    done = subprocess.run(timer + command, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"vlmkit sith failed ({done.returncode}):\n{done.stderr[-2000:]}")
    facts = {}
    if rss := re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr):
        facts["peak_rss_gib"] = round(int(rss.group(1)) / 2**20, 2)
    cpu = [float(m.group(1)) for m in re.finditer(r"(?:User|System) time \(seconds\): ([\d.]+)", done.stderr)]
    if len(cpu) == 2:
        facts["cli_cpu_s"] = round(sum(cpu), 2)
        facts["cli_system_s"] = round(cpu[1], 2)  # kernel time: page faults of fresh allocations show here
    timings = json.loads((out / "run.json").read_text())["timings_s"]
    facts["run_json_timings_s"] = timings
    # what run.json does not time: interpreter start and imports, arrays.npz, writing report.html/run.json/result.json
    facts["rest_s"] = round(wall - timings["total"], 2)
    return wall, facts


def import_torch_seconds(runs: int = 3) -> float:
    """Median wall seconds of a fresh interpreter importing torch (part of every CLI run)."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import torch"], check=True)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def floor_seconds(targets: torch.Tensor, atoms: torch.Tensor, batch: int = 1024) -> tuple[float, float]:
    """Wall and CPU seconds to score every target once against every atom (SITH's batch size)."""
    start, cpu = time.perf_counter(), time.process_time()
    for first in range(0, targets.shape[0], batch):
        targets[first : first + batch] @ atoms.T
    return time.perf_counter() - start, time.process_time() - cpu


def joint_targets(args):
    """The run's dictionary atoms and every explained vector in the joint space (from the caches)."""
    from vlmkit.interpret.concepts import build_dictionary
    from vlmkit.interpret.heads import to_joint_space
    from vlmkit.interpret.image_mean import resolve_image_mean
    from vlmkit.interpret.sith import SithConfig, layer_svd, parse_layers
    from vlmkit.interpret.vocab import load_vocabulary
    from vlmkit.models import load_model
    from vlmkit.runs.cache import EmbeddingCache

    cache = EmbeddingCache()
    model = load_model(args.model)
    dictionary = build_dictionary(model, load_vocabulary(args.vocab), cache=cache)
    image_mean, _ = resolve_image_mean(model, args.image_mean, cache=cache)
    weights = model.vision_weights()
    cfg = SithConfig(k=args.k)
    directions = []
    for layer in parse_layers(args.layers, weights.n_layers):
        _, _, Vt = layer_svd(weights, layer, cfg)
        directions.append(Vt.reshape(-1, Vt.shape[-1]).float())
    return dictionary.atoms, to_joint_space(torch.cat(directions), weights, image_mean)


def compare_codes(run_dir: Path, reference: Path) -> dict:
    """Supports and coefficients of a run against a reference ``arrays.npz`` (layers in the same order)."""
    with np.load(run_dir / "arrays.npz") as ours, np.load(reference) as theirs:
        def layer_number(key: str) -> int:
            return int(re.match(r"layer(\d+)", key).group(1))

        keys = [sorted((k for k in f.files if k.endswith(".indices")), key=layer_number) for f in (ours, theirs)]
        if len(keys[0]) != len(keys[1]):
            return {"error": f"{len(keys[0])} layers vs {len(keys[1])} in the reference"}
        vectors = differing = 0
        worst = 0.0
        for a, b in zip(*keys, strict=True):
            same = (ours[a] == theirs[b]).all(1)
            vectors += same.size
            differing += int((~same).sum())
            sa, sb = ours[a.replace(".indices", ".scores")], theirs[b.replace(".indices", ".scores")]
            worst = max(worst, float(np.abs(sa[same] - sb[same]).max(initial=0.0)))
    return {"vectors": vectors, "different_supports": differing, "max_coefficient_difference": worst}


def sklearn_agreement(targets: torch.Tensor, atoms: torch.Tensor, k: int, index) -> dict:
    from sklearn.linear_model import OrthogonalMatchingPursuit

    from vlmkit.interpret.comp import sparse_code

    (ours_idx, _), ours_s = timed(lambda: sparse_code(targets, atoms, k=k, method="omp", index=index))
    X = atoms.T.double().numpy()  # (D, M): columns are atoms

    def fit_all():
        chosen = []
        for p in targets.double().numpy():
            omp = OrthogonalMatchingPursuit(n_nonzero_coefs=k, fit_intercept=False).fit(X, p)
            chosen.append(set(omp.coef_.nonzero()[0].tolist()))
        return chosen

    theirs, theirs_s = timed(fit_all)
    overlap = [len(set(o) & t) / k for o, t in zip(ours_idx.tolist(), theirs, strict=True)]
    first = [o[0] in t for o, t in zip(ours_idx.tolist(), theirs, strict=True)]
    return {"vectors": len(targets), "vlmkit_s": round(ours_s, 3), "sklearn_s": round(theirs_s, 3),
            "speedup": round(theirs_s / ours_s, 1), "mean_atom_overlap": round(sum(overlap) / len(overlap), 3),
            "first_atom_agreement": round(sum(first) / len(first), 3)}


def sklearn_report(targets: torch.Tensor, atoms: torch.Tensor, k: int, n: int) -> dict:
    """Against scikit-learn on ``n`` head vectors and ``n`` planted targets; vlmkit's screening
    index is built once per dictionary (as SITH does for all layers) and timed apart."""
    from vlmkit.interpret.comp import sparse_code
    from vlmkit.interpret.screen import ScreenIndex

    index, index_s = timed(lambda: ScreenIndex(atoms))
    report = {"screen_index_s": round(index_s, 3), "head_vectors": sklearn_agreement(targets[-n:], atoms, k, index)}
    gen = torch.Generator().manual_seed(0)
    support = torch.stack([torch.randperm(len(atoms), generator=gen)[:k] for _ in range(n)])
    coef = 0.5 + torch.rand(n, k, generator=gen)
    planted = torch.nn.functional.normalize((coef.unsqueeze(-1) * atoms[support]).sum(1), dim=-1)
    report["planted"] = sklearn_agreement(planted, atoms, k, index)
    found = sparse_code(planted, atoms, k=k, method="omp", index=index)[0]
    report["planted"]["vlmkit_planted_recovery"] = round(
        sum(len(set(f) & set(s)) for f, s in zip(found.tolist(), support.tolist(), strict=True)) / support.numel(), 3)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="random:clip-vit-l14")
    parser.add_argument("--vocab", default="default")
    parser.add_argument("--layers", default="all")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--image-mean", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="threads for the floor and the CLI (default: torch's)")
    parser.add_argument("--warm", action=argparse.BooleanOptionalAction, default=True, help="fill the caches with one untimed run first")
    parser.add_argument("--reference", type=Path, default=None, help="arrays.npz of another version's run to compare codes with")
    parser.add_argument("--keep", type=Path, default=None, help="keep the timed run's output here")
    parser.add_argument("--sklearn-vectors", type=int, default=256)
    parser.add_argument("--skip-sklearn", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    report: dict = {"model": args.model, "vocab": args.vocab, "layers": args.layers, "k": args.k, "threads": torch.get_num_threads(),
                    "load_average_before": round(os.getloadavg()[0], 1)}
    with tempfile.TemporaryDirectory() as tmp:
        if args.warm:
            _, report["warm_up_run_s"] = timed(lambda: cli(args, Path(tmp) / "warm"))
        atoms, targets = joint_targets(args)
        report["vectors"], report["concepts"] = targets.shape[0], atoms.shape[0]
        before = floor_seconds(targets, atoms)
        out = args.keep or Path(tmp) / "timed"
        wall, facts = cli(args, out)
        after = floor_seconds(targets, atoms)
        floor, floor_cpu = (before[0] + after[0]) / 2, (before[1] + after[1]) / 2
        report |= {"floor_before_s": round(before[0], 2), "cli_wall_s": round(wall, 2), "floor_after_s": round(after[0], 2),
                   "cli_over_floor": round(wall / floor, 2), "floor_cpu_before_s": round(before[1], 2),
                   "floor_cpu_after_s": round(after[1], 2), **facts, "load_average_after": round(os.getloadavg()[0], 1)}
        report["import_torch_s"] = round(import_torch_seconds(), 2)
        if "cli_cpu_s" in facts:
            report["cli_cpu_over_floor_cpu"] = round(facts["cli_cpu_s"] / floor_cpu, 2)
        if args.reference:
            report["codes_vs_reference"] = compare_codes(out, args.reference)
    if not args.skip_sklearn:
        report["omp_vs_sklearn"] = sklearn_report(targets, atoms, args.k, args.sklearn_vectors)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
