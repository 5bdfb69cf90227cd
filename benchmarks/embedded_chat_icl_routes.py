"""Does the attention-route loss teach embedded-chat in-context labelling? Fine-tune the shipped model.

The shipped ``embedded-chat`` never learned to copy a context label (docs/chat.md). This script
continues it, from its exported weights, with an ICL batch (16 episodes of 4 queries) and a
short batch of the last curriculum stage every step, plus text induction and repeated pairs,
with or without the route loss of ``embedded_chat_train.route_loss`` (``--route``: its weight).
Teacher-forced accuracy on 96 held-out 4-way episodes (held-out labels) and on yes/no and
lettered choice every ``--every`` steps, one thread; tower features of a ``--pool`` of world
seed 0 are computed first (cached under ``--work``):

    python benchmarks/embedded_chat_icl_routes.py --route 1 --steps 300
    python benchmarks/embedded_chat_icl_routes.py --route 0 --steps 300

Nothing else is written: the fine-tuned network is discarded.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from vlmkit.data import world_chat as wc
from vlmkit.models import embedded_chat_batches as B
from vlmkit.models import embedded_chat_build as build
from vlmkit.models import embedded_chat_train as T
from vlmkit.models.embedded import shipped_dir


def shipped_network(cfg: T.ChatTrainConfig) -> T.ChatNetwork:
    """The shipped model's projector and LM as a training network (its exported projector
    already holds the feature standardisation, so the network's own is the identity)."""
    state = load_file(shipped_dir("embedded-chat") / "model.safetensors")
    lm = {k.removeprefix("language_model.model."): v for k, v in state.items() if k.startswith("language_model.model.")}
    projector = {k.removeprefix("multi_modal_projector."): v for k, v in state.items() if "multi_modal_projector" in k}
    dim = projector["linear_1.weight"].shape[1]
    network = T.ChatNetwork(cfg, dim, torch.zeros(dim), torch.ones(dim))
    network.lm.model.load_state_dict(lm)
    network.linear_1.load_state_dict({k.removeprefix("linear_1."): v for k, v in projector.items() if k.startswith("linear_1.")})
    network.linear_2.load_state_dict({k.removeprefix("linear_2."): v for k, v in projector.items() if k.startswith("linear_2.")})
    return network


@torch.no_grad()
def copy_diagnostics(network: T.ChatNetwork, encoder: B.Encoder, bank: B.FeatureBank, examples: list, cfg) -> dict[str, float]:
    """Diagnostics of the copy on ``examples``: the mean attention mass on the gather and copy
    targets (head 0 of each route's layer); how often the copy head's own output names the
    label it should copy (``head_right``) and its norm; the cosine between the residual stream
    at each context label, where the copy head reads, and that label's embedding
    (``label_cos``); how often the model's reply is a nonce word at all (``final_nonce``)."""
    batch = encoder.batch(examples)
    routes = T.routes_by_layer(batch.routes, cfg)
    residuals = []  # the last layer's input, where the copy head reads its values
    hook = network.lm.model.layers[-1].register_forward_pre_hook(lambda module, args, kwargs: residuals.append(
        args[0] if args else kwargs["hidden_states"]), with_kwargs=True)
    out = network.run(batch.ids, bank.gather(batch.refs), batch.mask, queries={i: (r[:, 0], r[:, 1]) for i, r in routes.items()})
    hook.remove()
    diagnostics = {name: round(float(T.attention_mass(out.heads[layer].weights, routes[layer][:, 2], routes[layer][:, 3]).mean()), 3)
              for name, layer in (("gather", cfg.gather_layer), ("copy", cfg.layers - 1))}
    copies = routes[cfg.layers - 1]
    label = batch.ids[copies[:, 0], copies[:, 2]]
    head = out.heads[cfg.layers - 1].output
    diagnostics["head_right"] = round(float((T.copy_logits(network, head).argmax(-1) == label).float().mean()), 3)
    final = out.logits[copies[:, 0], copies[:, 1]]
    diagnostics["head_norm"] = round(float(head.norm(dim=-1).mean()), 2)
    start, end = build.nonce_id_range()
    at_labels = residuals[0][copies[:, 0], copies[:, 2]]
    own = network.lm.model.embed_tokens.weight[label]
    diagnostics["label_cos"] = round(float(torch.nn.functional.cosine_similarity(at_labels, own).mean()), 3)
    diagnostics["final_nonce"] = round(float(((final.argmax(-1) >= start) & (final.argmax(-1) < end)).float().mean()), 3)
    return diagnostics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--route", type=float, default=1.0, help="route-loss weight (0: none)")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--every", type=int, default=50)
    parser.add_argument("--pool", type=int, default=1500)
    parser.add_argument("--nonce-scale", type=float, default=1.0, help="norm of the random label embeddings")
    parser.add_argument("--short", type=int, default=16, help="short conversations per step (keep the other skills)")
    parser.add_argument("--work", type=Path, default=Path("runs/icl-routes-work"))
    args = parser.parse_args()

    torch.set_num_threads(1)
    cfg = replace(T.ChatTrainConfig(), route_weight=args.route, pool=args.pool, count_pool=args.pool // 3, nonce_scale=args.nonce_scale)
    network = shipped_network(cfg)
    optimizer = T._optimizer(network, cfg)
    encoder = B.Encoder(cfg.image_tokens())
    tower = build.vision_model(*T._tower(cfg))
    processor = build.build_processor(cfg.grid, cfg.tower_mode, cfg.resample)
    args.work.mkdir(parents=True, exist_ok=True)
    quiet = lambda message: None  # noqa: E731
    bank = B.FeatureBank()
    attrs = {}
    for name, refs in (("train", T.pool_refs(T.TRAIN_SEED, cfg.pool, cfg.count_pool)),
                       ("valid", T.pool_refs(T.VALID_SEED, cfg.valid_pool, cfg.valid_pool // 2))):
        bank.add(refs, T.cached_features(args.work, f"{name}-features", refs, tower, processor, log=quiet))
        attrs[name] = T.cached_attributes(args.work, name, refs)
    train_labels, heldout_labels = wc.nonce_split()
    valid_rng = np.random.default_rng(99)
    valid_source = wc.SceneSource(T.VALID_SEED, valid_rng, pool=cfg.valid_pool, count_pool=cfg.valid_pool // 2,
                                  pool_attributes=attrs["valid"])
    valid = {"icl4": [wc.make_example("icl", valid_source, valid_rng, heldout_labels, ways=4) for _ in range(96)]}
    valid |= {t: [wc.make_example(t, valid_source, valid_rng, heldout_labels) for _ in range(96)] for t in ("yesno", "mcq")}
    valid["text_icl"] = [wc.make_example("text_icl", valid_source, valid_rng, heldout_labels, icl_queries=1) for _ in range(96)]
    last = T.CURRICULUM[-1]
    start = time.time()
    print(f"route weight {args.route}, lr {args.lr}, pool {args.pool}, nonce scale {args.nonce_scale}")
    for step in range(args.steps + 1):
        if step % args.every == 0:
            network.eval()
            scores = {task: round(T.answer_accuracy(network, encoder, bank, examples), 3) for task, examples in valid.items()}
            scores |= copy_diagnostics(network, encoder, bank, valid["icl4"][:32], cfg)
            network.train()
            print(f"step {step:4d}  {scores}  {time.time() - start:5.0f} s", flush=True)
        if step == args.steps:
            break
        rng = np.random.default_rng([7, step])
        source = wc.SceneSource(T.TRAIN_SEED, rng, pool=cfg.pool, count_pool=cfg.count_pool, pool_attributes=attrs["train"])
        network.resample_nonce(torch.Generator().manual_seed(10**6 + step))
        for group in optimizer.param_groups:
            group["lr"] = args.lr * min(1.0, (step + 1) / 30)
        episodes = B.draw_icl(cfg.icl_batch, source, rng, train_labels, cfg.icl_queries)
        short = B.draw_examples(last.short, args.short, source, rng, train_labels, 3)
        scaffold = B.draw_examples(last.scaffold, cfg.scaffold_batch, source, rng, train_labels, 3)
        loss = sum(T.batch_loss(network, encoder.batch(examples), bank, cfg) for examples in (episodes, short, scaffold))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        network.freeze_nonce_grads()
        torch.nn.utils.clip_grad_norm_(network.parameters(), cfg.grad_clip)
        optimizer.step()


if __name__ == "__main__":
    main()
