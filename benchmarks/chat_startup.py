"""Cold-start time of ``vlmkit chat`` (a fresh process each run), NumPy path against transformers.

    python benchmarks/chat_startup.py [--runs 5] [--hf-runs 2] [--model embedded-chat]

Renders one world scene to a PNG, then runs
``vlmkit chat --model M --image IMG "What is in the image?"`` ``--runs`` times with the default
backend (``auto``: NumPy for embedded-chat) and ``--hf-runs`` times with ``--backend hf``, each in
a new process, under ``nice -n 10``. Reports the median wall-clock and CPU (user + system)
seconds of each, the load average before and after (on a shared machine wall time grows with
the load, CPU time much less), whether both backends printed the same answer, and which of
torch / transformers / scipy the NumPy path's process imported (``python -X importtime``; none
expected), and the NumPy path's CPU seconds per phase (CLI imports, the NumPy path's own imports,
reading the checkpoint, preprocessing + generation; ``time.process_time`` in a fresh process).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

QUESTION = "What is in the image?"


def scene_png(path: Path) -> Path:
    from PIL import Image

    from vlmkit.data import world_chat as wc

    Image.fromarray(wc.render_scene(wc.SceneRef(3, 1))).save(path)
    return path


def cold_runs(command: list[str], runs: int) -> tuple[list[float], list[float], str]:
    """Wall and CPU seconds of ``runs`` fresh processes, and the answer they printed."""
    walls, cpus, answers = [], [], set()
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        answers.add(done.stdout.strip())
    if len(answers) != 1:
        raise SystemExit(f"runs disagree: {answers}")
    return walls, cpus, answers.pop()


def imports(command: list[str]) -> str:
    """How many modules ``python -X importtime`` lists, and which of torch, transformers and
    scipy are among them."""
    done = subprocess.run([command[0], "-X", "importtime", *command[1:]], capture_output=True, text=True, check=True)
    modules = [line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")]
    heavy = sorted({m.split(".")[0] for m in modules} & {"torch", "transformers", "scipy"})
    return f"{len(modules)} modules imported; of torch/transformers/scipy: {', '.join(heavy) or 'none'}"


PHASES = """
import json, sys, time
from pathlib import Path
marks = [time.process_time()]
import vlmkit.cli.main
marks.append(time.process_time())
from vlmkit.models import chat as c
from vlmkit.models.chat_registry import load_chat_model
import vlmkit.models.chat_numpy
marks.append(time.process_time())
model = load_chat_model(sys.argv[1], backend="auto")
marks.append(time.process_time())
model.generate([[c.user(c.open_image(Path(sys.argv[2])), sys.argv[3])]], max_new_tokens=128)
marks.append(time.process_time())
print(json.dumps([b - a for a, b in zip(marks, marks[1:])]))
"""
PHASE_NAMES = ("CLI imports", "NumPy-path imports", "checkpoint read", "image + generation")


def phases(model: str, image: Path, runs: int) -> str:
    """Median CPU seconds per phase of the NumPy path, over ``runs`` fresh processes."""
    command = ["nice", "-n", "10", sys.executable, "-c", PHASES, model, str(image), QUESTION]
    rows = [json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout) for _ in range(runs)]
    return ", ".join(f"{name} {statistics.median(row[i] for row in rows):.3f} s" for i, name in enumerate(PHASE_NAMES))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--hf-runs", type=int, default=2)
    parser.add_argument("--model", default="embedded-chat")
    args = parser.parse_args()
    image = scene_png(Path(tempfile.mkdtemp()) / "scene.png")
    base = ["nice", "-n", "10", sys.executable, "-m", "vlmkit.cli.main", "chat", "--model", args.model, "--image", str(image)]
    load_before = os.getloadavg()
    walls, cpus, answer = cold_runs([*base, QUESTION], args.runs)
    print(f"numpy (default auto): median {statistics.median(walls):.2f} s wall, {statistics.median(cpus):.2f} s CPU")
    print("  walls " + " ".join(f"{w:.2f}" for w in walls) + f"; answer: {answer!r}")
    print(f"  {imports([sys.executable, *base[4:], QUESTION])}")
    print(f"  CPU per phase (median of {args.runs}): {phases(args.model, image, args.runs)}")
    if args.hf_runs:
        hf_walls, hf_cpus, hf_answer = cold_runs([*base, "--backend", "hf", QUESTION], args.hf_runs)
        print(f"transformers (--backend hf): median {statistics.median(hf_walls):.2f} s wall, {statistics.median(hf_cpus):.2f} s CPU")
        print("  walls " + " ".join(f"{w:.2f}" for w in hf_walls) + f"; same answer: {hf_answer == answer}")
        print(f"  {imports([sys.executable, *base[4:], '--backend', 'hf', QUESTION])}")
    load_after = os.getloadavg()
    print(f"load average (1, 5, 15 min) before {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, "
          f"after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}; {os.cpu_count()} CPUs")  # fmt: skip


if __name__ == "__main__":
    main()
