"""Merging and pruning at real size: a random LLaVA-OneVision-0.5B-class checkpoint.

    python benchmarks/compress_bench.py merge --experts 2 [--scale 1.0] [--work DIR]
    python benchmarks/compress_bench.py prune [--scale 1.0] [--work DIR]

The checkpoint has the shapes of LLaVA-OneVision-0.5B (SigLIP-so400m vision tower, Qwen2-0.5B
language model with its 151,646-token vocabulary; about 0.9B parameters, bfloat16 on disk)
and random weights; ``--scale`` shrinks every width and depth for a quick run. ``merge``
writes a base and ``--experts`` perturbed copies, then measures, each in a fresh process,
``vlmkit merge`` (streamed, task arithmetic) against loading every model whole with
transformers and averaging their state dicts: wall time and peak resident memory. ``prune``
measures ``vlmkit prune`` (layerwise, then widthwise with magnitude importance) on the same
base. Each figure comes from this run; nothing is compared across machines.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path


def build_base(directory: Path, scale: float) -> Path:
    """Save a random base checkpoint (bfloat16): the processor, chat template and token ids of
    ``random:llava-onevision-tiny`` with LLaVA-OneVision-0.5B's widths and depths times ``scale``."""
    import shutil
    import tempfile

    import torch
    from transformers import AutoConfig, AutoModelForImageTextToText

    from vlmkit.models.chat_random import build_directory

    if (directory / "config.json").is_file():
        return directory

    def s(x: int, multiple: int = 1) -> int:
        return max(multiple, int(round(x * scale / multiple)) * multiple)

    with tempfile.TemporaryDirectory() as tmp:
        tiny = build_directory("llava-onevision-tiny", 0, Path(tmp) / "tiny")
        config = json.loads((tiny / "config.json").read_text())
        config["vision_config"].update(
            hidden_size=s(1152, 16),
            intermediate_size=s(4304, 16),
            num_hidden_layers=s(27),
            num_attention_heads=16,
            image_size=384,
            patch_size=14,
        )
        config["text_config"].pop("layer_types", None)
        config["text_config"].update(
            hidden_size=s(896, 14 * 4),
            intermediate_size=s(4864, 16),
            num_hidden_layers=s(24),
            num_attention_heads=14,
            num_key_value_heads=2,
            vocab_size=151_646,
            tie_word_embeddings=True,
        )
        directory.mkdir(parents=True, exist_ok=True)
        for path in tiny.iterdir():
            if path.suffix != ".safetensors":
                shutil.copy2(path, directory / path.name)
        (directory / "config.json").write_text(json.dumps(config))
        torch.manual_seed(0)
        model = AutoModelForImageTextToText.from_config(AutoConfig.from_pretrained(directory)).to(torch.bfloat16)
        model.save_pretrained(directory)
    return directory


def perturbed_copy(base: Path, out: Path, seed: int) -> Path:
    """An 'expert': every floating tensor of ``base`` plus small seeded noise, streamed."""
    import shutil

    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file

    if (out / "config.json").is_file():
        return out
    out.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(seed)
    for path in base.iterdir():
        if path.suffix != ".safetensors":
            shutil.copy2(path, out / path.name) if path.is_file() else None
            continue
        tensors = {}
        with safe_open(path, "pt") as handle:
            for key in handle.keys():
                t = handle.get_tensor(key)
                tensors[key] = (t.float() + 1e-3 * torch.randn(t.shape, generator=generator)).to(t.dtype) if t.is_floating_point() else t
        save_file(tensors, out / path.name, metadata={"format": "pt"})
    return out


def measured(command: list[str]) -> dict:
    """Wall time and peak RSS (MiB) of a child process."""
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"seconds": round(time.perf_counter() - start, 1), "peak_rss_mib_so_far": round(peak_kib / 1024)}


WHOLE = """
import sys, torch
from transformers import AutoModelForImageTextToText
dirs = sys.argv[1:]
models = [AutoModelForImageTextToText.from_pretrained(d, dtype=torch.bfloat16) for d in dirs]
states = [m.state_dict() for m in models]
base = states[0]
n = len(states) - 1
merged = {k: (base[k].float() + sum(s[k].float() - base[k].float() for s in states[1:]) / n).to(torch.bfloat16) for k in base}
"""


def peak_of(command: list[str]) -> dict:
    """Run ``command`` under a tiny wrapper that reports its own peak RSS."""
    wrapper = ["/usr/bin/time", "-f", "%M %e"] if Path("/usr/bin/time").exists() else None
    if wrapper is None:
        return measured(command)
    result = subprocess.run(wrapper + command, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    kib, seconds = result.stderr.strip().splitlines()[-1].split()
    return {"seconds": float(seconds), "peak_rss_mib": round(int(kib) / 1024)}


def bench_merge(work: Path, n_experts: int, scale: float) -> dict:
    base = build_base(work / "base", scale)
    experts = [perturbed_copy(base, work / f"expert{i}", i) for i in range(1, n_experts + 1)]
    size = sum(p.stat().st_size for p in base.glob("*.safetensors")) / 2**20
    out = work / f"merged-{n_experts}"
    if out.exists():
        import shutil

        shutil.rmtree(out)
    vlmkit = [
        sys.executable,
        "-m",
        "vlmkit.cli.main",
        "merge",
        "--method",
        "task_arithmetic",
        "--base",
        str(base),
        "--models",
        ",".join(map(str, experts)),
        "--out",
        str(out),
    ]
    streamed = peak_of(vlmkit)
    whole = peak_of([sys.executable, "-c", WHOLE, str(base), *map(str, experts)])
    return {"checkpoint_mib": round(size), "experts": n_experts, "vlmkit_merge": streamed, "load_whole_and_average": whole}


def bench_prune(work: Path, scale: float) -> dict:
    base = build_base(work / "base", scale)
    records = [
        {"image": None, "conversations": [{"from": "human", "value": "what color is the star ?"}, {"from": "gpt", "value": "red"}]}
    ] * 4
    data = work / "calibration.json"
    data.write_text(json.dumps([{k: v for k, v in r.items() if v is not None} for r in records]))
    results = {}
    for method, extra in (("layer", []), ("width", ["--importance", "l2"])):
        out = work / f"pruned-{method}"
        if out.exists():
            import shutil

            shutil.rmtree(out)
        results[method] = peak_of(
            [
                sys.executable,
                "-m",
                "vlmkit.cli.main",
                "prune",
                "--model",
                str(base),
                "--method",
                method,
                "--ratio",
                "0.3",
                "--calibration",
                str(data),
                "--n-calibration",
                "4",
                "--out",
                str(out),
                *extra,
            ]
        )
        results[method]["compression"] = json.loads((out / "result.json").read_text())["compression"]
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["merge", "prune"])
    parser.add_argument("--experts", type=int, default=2)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--work", type=Path, default=Path("runs/compress-bench"))
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    result = bench_merge(args.work, args.experts, args.scale) if args.what == "merge" else bench_prune(args.work, args.scale)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
