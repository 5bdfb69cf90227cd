"""R2P's world validation: the ablation table on ``vlmkit world personal`` sets at two ambiguity
levels over several seeds.

For each ambiguity level and seed ``s``: a personal set (``--concepts`` concepts, 3 reference
views, 4 positive and 4 negative queries each, world seed ``s``) is generated, its database
built with ``--chat`` (fingerprints in ``--mode``) and ``embedded``, and every method evaluated
(``vlmkit r2p eval``). Writes ``summary.json`` and prints the table of ``docs/r2p.md``
(mean and standard deviation over seeds of each method's weighted accuracy, positive and
negative accuracy, and retrieval recall).

Run: ``python benchmarks/r2p_world.py --chat embedded-chat --out runs/r2p-world``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

os.environ.setdefault("VLMKIT_PROGRESS", "0")

METRICS = ("accuracy", "positive_accuracy", "negative_accuracy", "recall_retrieval")


class WorldReader:
    """The control of ``--reader oracle``: answers the three attribute questions about a world
    image from its ground truth (looked up by file content in the set's ``world.json`` and
    ``manifest.jsonl``) and leaves ``score`` (the pairwise step) to ``base``. It shows what the
    pipeline does when the asked attributes are read perfectly; it is not a model."""

    FIELDS = {"color": "color", "pattern": "texture", "size": "size"}

    def __init__(self, base, data: Path):
        import hashlib

        self.base, self.name, self.capabilities = base, f"world-reader+{base.name}", base.capabilities
        self.fingerprint = f"world-reader+{base.fingerprint}"
        world = json.loads((data / "world.json").read_text())
        digest = lambda p: hashlib.sha256(p.read_bytes()).hexdigest()  # noqa: E731
        self.truth = {digest(p): world["concepts"][p.parent.name] for p in (data / "concepts").glob("*/ref_*.png")}
        for line in (data / "manifest.jsonl").read_text().splitlines():
            row = json.loads(line)
            self.truth[digest(data / row["path"])] = row["details"]
        self._digest = digest

    def generate(self, conversations, **_):
        from vlmkit.personalize.fingerprint import QUESTIONS

        out = []
        for conversation in conversations:
            image, text = conversation[-1].images[0], conversation[-1].text
            field = next(f for f, q in QUESTIONS.items() if q == text)
            out.append(self.truth[self._digest(Path(image))][self.FIELDS[field]])
        return out

    def score(self, conversation, options):
        return self.base.score(conversation, options)


def one(out: Path, args, ambiguity: str, seed: int) -> dict:
    from vlmkit.data.world_personal import generate_personal
    from vlmkit.personalize.r2p_run import R2PBuildOptions, R2PEvalOptions, run_build, run_eval

    tag = f"{ambiguity}-s{seed}"
    data, db, ev = out / "sets" / tag, out / "db" / tag, out / "eval" / tag
    if (ev / "result.json").is_file():
        return json.loads((ev / "result.json").read_text())
    for folder in (data, db, ev):
        shutil.rmtree(folder, ignore_errors=True)
    generate_personal(data, n_concepts=args.concepts, ambiguity=ambiguity, seed=seed, references=3, queries=4, distractors=2)
    cache = out / "cache"
    build = R2PBuildOptions(model=args.chat, clip=args.clip, concepts=data / "concepts", out=db, fingerprint_mode=args.mode,
                            seed=seed, cache_dir=cache)
    chat = WorldReader(build.load_chat(), data) if args.reader == "oracle" else None
    run_build(build, chat)
    extra = {"pairwise_prompt": args.pairwise_prompt} if args.pairwise_prompt else {}
    run_eval(R2PEvalOptions(db=db, dataset=data, out=ev, k=args.k, seed=seed, cache_dir=cache, **extra), chat)
    return json.loads((ev / "result.json").read_text())


def answer_agreement(out: Path, tag: str) -> dict[str, list[int]]:
    """Questions mode: how often the model's answers about the queries match the ground truth
    (field -> [agreeing, asked]), read from ``traces.jsonl`` against ``manifest.jsonl``."""
    truth = {}
    for line in (out / "sets" / tag / "manifest.jsonl").read_text().splitlines():
        row = json.loads(line)
        truth[Path(row["path"]).name] = row["details"]
    counts = {"color": [0, 0], "pattern": [0, 0], "size": [0, 0]}
    for line in (out / "eval" / tag / "traces.jsonl").read_text().splitlines():
        trace = json.loads(line)
        if not trace["reasoning"] or ": " not in trace["reasoning"]["rationale"]:
            continue
        answers = dict(part.split(": ", 1) for part in trace["reasoning"]["rationale"].split("; "))
        details = truth[Path(trace["query"]).name]
        for field, key in (("color", "color"), ("pattern", "texture"), ("size", "size")):
            if field in answers:
                counts[field][0] += answers[field] == details[key]
                counts[field][1] += 1
    return counts


def main() -> None:
    import numpy as np

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--chat", default="embedded-chat")
    parser.add_argument("--clip", default="embedded")
    parser.add_argument("--mode", default="questions", choices=("json", "questions"))
    parser.add_argument("--pairwise-prompt", default="is this the same object ?")
    parser.add_argument("--concepts", type=int, default=6)
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--reader", default="model", choices=("model", "oracle"),
                        help="oracle: the control whose attribute answers are the ground truth (pairwise still by --chat)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--ambiguity", nargs="+", default=["low", "high"])
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    summary = {"args": {k: str(v) for k, v in vars(args).items()}, "runs": {}, "mean": {}}
    for ambiguity in args.ambiguity:
        tables = []
        for seed in args.seeds:
            result = one(args.out, args, ambiguity, seed)
            summary["runs"][f"{ambiguity}-s{seed}"] = result["table"]
            tables.append(result["table"])
            if args.mode == "questions":
                summary.setdefault("answer_agreement", {})[f"{ambiguity}-s{seed}"] = answer_agreement(args.out, f"{ambiguity}-s{seed}")
            print(f"{ambiguity} seed {seed}: " + ", ".join(f"{m} {t['accuracy']:.3f}" for m, t in result["table"].items()), flush=True)
        summary["mean"][ambiguity] = {
            m: {k: [float(np.nanmean([t[m].get(k, np.nan) for t in tables])), float(np.nanstd([t[m].get(k, np.nan) for t in tables]))]
                for k in METRICS} for m in tables[0]}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    for ambiguity in args.ambiguity:
        runs = [v for k, v in summary.get("answer_agreement", {}).items() if k.startswith(ambiguity)]
        if runs:
            print(f"{ambiguity}: the model's answers agree with the ground truth for " + ", ".join(
                f"{f} {sum(r[f][0] for r in runs) / max(1, sum(r[f][1] for r in runs)):.3f}" for f in runs[0]))
    print("| ambiguity | method | " + " | ".join(METRICS) + " |")
    print("|---|---|" + "---|" * len(METRICS))
    for ambiguity, methods in summary["mean"].items():
        for method, values in methods.items():
            print(f"| {ambiguity} | {method} | " + " | ".join(f"{v[0]:.3f} ± {v[1]:.3f}" for v in values.values()) + " |")


if __name__ == "__main__":
    main()
