"""``make demo``: the main job, offline, in seconds.

Runs SITH on the model's vision tower: every attention head of every layer, each singular vector
of its value-output matrix explained by COMP over the shapes-world vocabulary (the concepts the
embedded model was trained on, plus distractors). ``vlmkit world eval-model`` measures how well
the model sees the world.
"""

from __future__ import annotations

from pathlib import Path


def run_demo(out: Path, model: str) -> Path:
    from vlmkit.interpret.sith_run import SithOptions, run_sith

    return run_sith(SithOptions(model=model, out=Path(out), layers="all", vocab="world"))
