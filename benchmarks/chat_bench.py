"""Chat-model speed: batched in-process generation against one conversation at a time.

    python benchmarks/chat_bench.py [--model embedded-chat] [--n 32] [--batch-size 8] [--max-new-tokens 16]

Both ways decode greedily the same ``n`` world questions (one image each); the script checks
that the answers are identical and reports generated tokens per second and the speed-up, both
measured in this run.

    python benchmarks/chat_bench.py --measure cache [--n 16] [--max-new-tokens 8] [--concurrency 4]

serves ``random:llava-tiny`` with ``transformers serve`` on 127.0.0.1 and asks the same
conversations through ``openai:`` three times: cold one request at a time, cold ``--concurrency``
at a time (each with an empty response cache), then again from the cache that the last cold run
filled. It reports seconds, HTTP requests sent and the re-run speed-up, and checks that every run
gives the same answers.
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
        "model": model_name,
        "n": n,
        "tokens": tokens,
        "same_answers": first == second,
        "seconds": timings,
        "tokens_per_second": {k: tokens / v for k, v in timings.items()},
        "speedup": timings["one at a time"] / timings[f"batched ({batch_size})"],
    }


def cache_speedup(n: int, max_new_tokens: int, concurrency: int) -> dict:
    """Seconds and requests of cold served runs (1 and ``concurrency`` in flight) and of a
    cached re-run, on ``random:llava-tiny`` behind ``transformers serve``."""
    import tempfile
    from pathlib import Path

    from vlmkit.models.chat_openai import OpenAIChatModel
    from vlmkit.models.chat_random import build_directory
    from vlmkit.models.serve_local import transformers_serve
    from vlmkit.runs.response_cache import ResponseCache

    conversations = world_questions(n)
    rows, answers = {}, {}
    with tempfile.TemporaryDirectory() as tmp, transformers_serve(build_directory("llava-tiny", 0, Path(tmp) / "llava")) as url:
        served_name = str(Path(tmp) / "llava")
        OpenAIChatModel(served_name, base_url=url, api_key="EMPTY").generate(conversations[:1], max_new_tokens=2)  # warm-up
        runs = (
            ("cold, 1 in flight", 1, "a"),
            (f"cold, {concurrency} in flight", concurrency, "b"),
            ("re-run from the cache", concurrency, "b"),
        )
        for label, in_flight, cache_name in runs:
            model = OpenAIChatModel(
                served_name, base_url=url, api_key="EMPTY", concurrency=in_flight, cache=ResponseCache(Path(tmp) / f"{cache_name}.sqlite")
            )
            start = time.perf_counter()
            answers[label] = model.generate(conversations, max_new_tokens=max_new_tokens)
            rows[label] = {"seconds": time.perf_counter() - start, "requests": model.requests_sent}
    first = next(iter(answers.values()))
    cold = rows[f"cold, {concurrency} in flight"]["seconds"]
    return {
        "n": n,
        "rows": rows,
        "same_answers": all(a == first for a in answers.values()),
        "speedup": cold / rows["re-run from the cache"]["seconds"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded-chat")
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--measure", choices=("batching", "cache"), default="batching")
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight (--measure cache)")
    args = parser.parse_args()
    if args.measure == "cache":
        result = cache_speedup(args.n, args.max_new_tokens, args.concurrency)
        print(f"random:llava-tiny behind transformers serve: {result['n']} conversations, same answers: {result['same_answers']}")
        print("| run | seconds | HTTP requests |\n|---|---|---|")
        for label, row in result["rows"].items():
            print(f"| {label} | {row['seconds']:.3f} | {row['requests']} |")
        print(f"speed-up of the cached re-run: {result['speedup']:.0f}x")
        return
    result = batching(args.model, args.n, args.batch_size, args.max_new_tokens)
    print(
        f"model {result['model']}: {result['n']} conversations, {result['tokens']} generated tokens, same answers: {result['same_answers']}"
    )
    print("| mode | seconds | tokens/s |\n|---|---|---|")
    for mode, seconds in result["seconds"].items():
        print(f"| {mode} | {seconds:.2f} | {result['tokens_per_second'][mode]:.1f} |")
    print(f"speed-up of batching: {result['speedup']:.2f}x")


if __name__ == "__main__":
    main()
