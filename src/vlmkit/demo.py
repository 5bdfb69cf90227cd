"""``make demo``: the main job, offline, in about a minute.

Renders a fresh shapes-world split and measures how well the model sees it: zero-shot accuracy
of every attribute, worst-group accuracy of shape, and caption retrieval (the
``vlmkit world eval-model`` job on 300 images).
"""

from __future__ import annotations

from pathlib import Path


def run_demo(out: Path, model: str, n: int = 300) -> Path:
    from vlmkit.classify.world_eval import WorldEvalOptions, run_world_eval

    return run_world_eval(WorldEvalOptions(model=model, out=Path(out), n=n))
