"""Chat-model speed: batched in-process generation against one conversation at a time.

    python benchmarks/chat_bench.py [--model embedded-chat] [--n 32] [--batch-size 8] [--max-new-tokens 16]

Both ways decode greedily the same ``n`` world questions (one image each); the script checks
that the answers are identical and reports generated tokens per second and the speed-up, both
measured in this run. Other sections of this file measure the response cache.
"""

from __future__ import annotations

import argparse
import time


def world_questions(n: int, seed: int = 7):
    from PIL import Image

    from vlmkit.data.world import render
    from vlmkit.data.world_sample import sample_image
    from vlmkit.models import chat as c

    questions = ["What is in the image?", "What color is the object?", "What shape is the object?", "Is the object large?"]
    conversations = []
    for i in range(n):
        scene, rng = sample_image(i, seed)
        conversations.append(c.ask(questions[i % len(questions)], Image.fromarray(render(scene, 96, rng))))
    return conversations


def batching(model_name: str, n: int, batch_size: int, max_new_tokens: int) -> dict:
    """Tokens per second of batched and one-at-a-time greedy generation, same answers."""
    import torch

    from vlmkit.models.chat_registry import load_chat_model

    torch.manual_seed(0)
    model = load_chat_model(model_name)
    conversations = world_questions(n)
    model.generate(conversations[:2], max_new_tokens=2)  # warm-up
    timings, answers = {}, {}
    for mode, size in (("one at a time", 1), (f"batched ({batch_size})", batch_size)):
        model.batch_size = size
        start = time.perf_counter()
        answers[mode] = model.generate(conversations, max_new_tokens=max_new_tokens)
        timings[mode] = time.perf_counter() - start
    tokens = sum(len(model.tokenizer(a, add_special_tokens=False)["input_ids"]) + 1 for a in answers["one at a time"])
    first, second = answers.values()
    return {
        "model": model_name, "n": n, "tokens": tokens, "same_answers": first == second,
        "seconds": timings, "tokens_per_second": {k: tokens / v for k, v in timings.items()},
        "speedup": timings["one at a time"] / timings[f"batched ({batch_size})"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded-chat")
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    args = parser.parse_args()
    result = batching(args.model, args.n, args.batch_size, args.max_new_tokens)
    print(f"model {result['model']}: {result['n']} conversations, {result['tokens']} generated tokens, same answers: {result['same_answers']}")
    print("| mode | seconds | tokens/s |\n|---|---|---|")
    for mode, seconds in result["seconds"].items():
        print(f"| {mode} | {seconds:.2f} | {result['tokens_per_second'][mode]:.1f} |")
    print(f"speed-up of batching: {result['speedup']:.2f}x")


if __name__ == "__main__":
    main()
