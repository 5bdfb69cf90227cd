"""How well a chat model proposes biases for the shapes-world task (C2B's first step).

For each seed, one reply per shape class (temperature ``--temperature``, no retries), parsed by
:func:`vlmkit.audit.proposals.parse_reply`. Counts: valid replies, replies whose proposal has an
attribute named with "background" (the planted attribute of ``embedded-biased``) or "texture"
(the probe's), replies that mention "background" anywhere (even when unparsable), replies that
only copy the prompt's example, and proposed classes that are values the world has.

Run: ``python benchmarks/c2b_llm_proposals.py --llm smollm2-135m --seeds 0 1 2 3 4 5 6 7 8 9``
(``--temperature 0`` with one seed for greedy decoding).
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("VLMKIT_PROGRESS", "0")

import torch  # noqa: E402

from vlmkit.audit.proposals import PROMPT_EXAMPLE, SYSTEM_PROMPT, parse_reply  # noqa: E402
from vlmkit.data import world as w  # noqa: E402
from vlmkit.models.chat import system, user  # noqa: E402
from vlmkit.models.chat_registry import load_chat_model  # noqa: E402

TASK = "classify the shape of the object"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llm", default="smollm2-135m")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--max-new-tokens", type=int, default=160)
    parser.add_argument("--out", default=None, help="write every reply and the counts as JSON here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    model = load_chat_model(args.llm)
    values = {v for vals in w.ATTRIBUTES.values() for v in vals}
    counts = {"replies": 0, "valid": 0, "background_attribute": 0, "texture_attribute": 0, "mentions_background": 0, "echo": 0,
              "proposed_classes": 0, "world_values": 0}
    replies = []
    for seed in args.seeds:
        conversations = [[system(SYSTEM_PROMPT), user(f"Task: {TASK}\nTarget class: {shape}\nJSON:")] for shape in w.SHAPES]
        for shape, reply in zip(
            w.SHAPES,
            model.generate(conversations, max_new_tokens=args.max_new_tokens, temperature=args.temperature, seed=seed),
            strict=True,
        ):
            counts["replies"] += 1
            counts["mentions_background"] += "background" in reply.lower()
            try:
                proposal = parse_reply(reply)
            except ValueError as exc:
                replies.append({"seed": seed, "class": shape, "reply": reply, "error": str(exc)})
                continue
            counts["valid"] += 1
            counts["background_attribute"] += any("background" in a for a in proposal)
            counts["texture_attribute"] += any("texture" in a for a in proposal)
            counts["echo"] += proposal == PROMPT_EXAMPLE
            classes = [c for cs in proposal.values() for c in cs]
            counts["proposed_classes"] += len(classes)
            counts["world_values"] += sum(c in values for c in classes)
            replies.append({"seed": seed, "class": shape, "reply": reply, "proposal": proposal})
    summary = {"llm": args.llm, "temperature": args.temperature, "seeds": args.seeds, **counts}
    print(json.dumps(summary))
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            json.dump({**summary, "replies": replies}, handle, indent=1)


if __name__ == "__main__":
    main()
