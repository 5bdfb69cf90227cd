"""ProactiveBench metrics (arXiv 2603.19466, §4), plus two shares that read more directly.

MCQA, over episodes: ``acc`` = 100 x share ending in the correct category; ``psr`` = mean of
(turns - 1), the proactive moves per episode; ``accuracy`` = acc / 100; ``proactive_rate`` = share
of episodes with at least one valid request; ``step_limit_rate`` = share that ran out of steps
(the paper's "blind proactive loops"); ``unparseable_rate`` = share ended by a reply matching no
option. OEG, over samples: ``ps`` = 100 x share whose judge marked any proactive item, ``cc`` =
any category item, ``agg`` = either.
"""

from __future__ import annotations

from collections.abc import Sequence


def mcqa_metrics(episodes: Sequence) -> dict:
    """Metrics of finished environments (:class:`vlmkit.proactive.envs.Environment`)."""
    n = len(episodes)
    if n == 0:
        return {"n": 0}
    success = sum(e.success for e in episodes)
    last = [e.turns[-1] for e in episodes if e.turns]
    return {
        "n": n,
        "acc": 100.0 * success / n,
        "psr": sum(e.proactive_moves for e in episodes) / n,
        "accuracy": success / n,
        "proactive_rate": sum(e.requested for e in episodes) / n,
        "step_limit_rate": sum((not e.success) and e.num_turns >= e.max_steps and e.turns[-1].action is not None for e in episodes) / n,
        "unparseable_rate": sum(t.action_verdict == "mismatch" and t.category_verdict == "mismatch" for t in last) / n,
        "mean_turns": sum(e.num_turns for e in episodes) / n,
    }


def oeg_scores(bits: Sequence[int] | None, k_proactive: int) -> dict[str, int]:
    """Per-sample ps / cc / agg from the judge's bit vector (``None``: unreadable verdict, all 0)."""
    if not bits:
        return {"ps": 0, "cc": 0, "agg": 0}
    ps, cc = int(any(bits[:k_proactive])), int(any(bits[k_proactive:]))
    return {"ps": ps, "cc": cc, "agg": int(ps or cc)}


def oeg_metrics(scores: Sequence[dict]) -> dict:
    """Means x 100 of per-sample :func:`oeg_scores`, and the share of unreadable verdicts."""
    n = len(scores)
    if n == 0:
        return {"n": 0}
    out = {"n": n}
    for key in ("ps", "cc", "agg"):
        out[key] = 100.0 * sum(s[key] for s in scores) / n
    out["judge_unreadable_rate"] = sum(bool(s.get("unreadable")) for s in scores) / n
    return out


def average(per_scenario: dict[str, dict], keys: Sequence[str], skip: Sequence[str] = ()) -> dict:
    """Unweighted mean over scenarios of each key (the paper averages scenarios, not episodes)."""
    rows = [m for name, m in per_scenario.items() if name not in skip and m.get("n")]
    return {k: sum(m[k] for m in rows) / len(rows) for k in keys} if rows else {}
