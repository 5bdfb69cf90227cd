"""How a real LLM behaves as the LI judge: replies and agreement with hand judgements.

A fixed table of 20 (answer, target) pairs, each judged by hand under the official LI rules
(positive when the answer describes the target, contains it or a synonym, or the target is
generic but related), is sent to ``--judge`` with the official prompt; the script prints the
share of replies that are exactly "1", exactly "0" or anything else (scored 0), LI, and its
agreement with the hand judgements. Every reply is cached.

Run: ``python benchmarks/li_judge.py --judge smollm2-135m --out runs/li-judge`` (``--mode score``
decides by ``log p("1") > log p("0")`` instead: not the official rule).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("VLMKIT_PROGRESS", "0")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from vlmkit.classify.openworld_metrics import llm_inclusion, text_inclusion  # noqa: E402
from vlmkit.models.chat_cached import CachedChatModel  # noqa: E402
from vlmkit.models.chat_registry import load_chat_model  # noqa: E402
from vlmkit.runs.files import atomic_write_json  # noqa: E402
from vlmkit.runs.response_cache import ResponseCache, default_response_cache_path  # noqa: E402

#: answer, target, hand judgement (1 = LI positive)
TABLE = [
    ("a golden retriever", "dog", 1), ("a dog", "dog", 1), ("a puppy playing", "dog", 1), ("a cat", "dog", 0),
    ("a sports car", "car", 1), ("a red Ferrari", "car", 1), ("a bicycle", "car", 0), ("a car parked on a street", "car", 1),
    ("a red star on a white background", "red star", 1), ("a blue star", "red star", 0), ("a small red striped star", "red star", 1),
    ("a red circle", "red star", 0), ("a Boeing 737 airliner", "Boeing 737-300", 1), ("a helicopter", "Boeing 737-300", 0),
    ("spaghetti with meat sauce", "spaghetti bolognese", 1), ("a salad", "spaghetti bolognese", 0), ("sunflowers", "sunflower", 1),
    ("a rose", "sunflower", 0), ("", "dog", 0), ("I cannot tell", "dog", 0),
]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--judge", default="smollm2-135m")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--mode", default="generate", help="generate (the official rule) or score (log p('1') > log p('0'))")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    judge = CachedChatModel(load_chat_model(args.judge), ResponseCache(default_response_cache_path()), chunk=4)
    answers, targets, truth = zip(*TABLE, strict=True)
    li, raw = llm_inclusion(answers, targets, judge, batch_size=4, mode=args.mode)
    truth = np.asarray(truth, dtype=float)
    summary = {
        "judge": args.judge, "mode": args.mode, "n": len(TABLE), "replies_exactly_1": sum(r.strip() == "1" for r in raw) / len(raw),
        "replies_exactly_0": sum(r.strip() == "0" for r in raw) / len(raw),
        "replies_other": sum(r.strip() not in ("0", "1") for r in raw) / len(raw),
        "li": float(li.mean()), "hand_li": float(truth.mean()), "agreement": float((li == truth).mean()),
        "ti": float(text_inclusion(answers, targets).mean()), "ti_agreement": float((text_inclusion(answers, targets) == truth).mean()),
        "replies": [{"answer": a, "target": t, "hand": int(h), "reply": r} for (a, t, h), r in zip(TABLE, raw, strict=True)],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out / "summary.json", summary)
    print(json.dumps({k: v for k, v in summary.items() if k != "replies"}, indent=1))
    for row in summary["replies"][:6]:
        print(json.dumps(row))


if __name__ == "__main__":
    main()
