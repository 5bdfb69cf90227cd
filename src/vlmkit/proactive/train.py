"""ProactiveBench's RL recipe, small: GRPO-style fine-tuning with the spec's reward (arXiv 2603.19466, §3.4).

Training prompts are single-turn MCQA states (as the paper's train split): an episode of a
training scenario after ``k`` valid requests, ``k`` drawn uniformly from 0 to the moves its
reference frame needs. For each prompt, ``rollouts`` replies are sampled; each gets the reward

    r = 1 for the correct category, r_p for a valid proactive request, 0 otherwise,

read by the environment itself (:meth:`Environment.read`, so a category on ROD-style first frames
and the last frame's requests score 0, exactly as in evaluation). Group-relative advantages
``A_i = (r_i - mean r) / (std r + 1e-4)`` weight the log-likelihood of each sampled reply:
``loss = -mean_i A_i log p(reply_i | prompt)`` (GRPO without clipping or KL, one update per
batch of rollouts: the on-policy limit). Groups whose rewards are all equal carry no signal and
are skipped. AdamW, cosine schedule without warm-up (the paper's). Modes: ``full`` (every weight
of the language side and projector; right for embedded-chat), ``lora`` (rank 16, alpha 16,
dropout 0.1 on q and k projections, as the paper, merged at the end) or ``projector``.
"""

from __future__ import annotations

import math
import random
from typing import Literal

import numpy as np
import torch
from pydantic import Field

from vlmkit.models.chat import assistant
from vlmkit.proactive.envs import Environment
from vlmkit.proactive.mcqa import turn_conversation
from vlmkit.proactive.published import resolve
from vlmkit.proactive.world import WORLD_SCENARIOS, world_environments
from vlmkit.runs.options import RunOptions
from vlmkit.runs.record import Run

TRAIN_SEED_OFFSET = 10_000  # training scenes are drawn from world seeds disjoint from evaluation's


class TrainOptions(RunOptions):
    model: str = "embedded-chat"
    dtype: str = "auto"
    scenarios: str = "occlusion,corruption,drawing"
    reward_proactive: float = Field(0.5, ge=0.0, le=1.0)
    rollouts: int = Field(8, ge=2)
    prompts: int = Field(256, ge=1)
    epochs: int = Field(1, ge=1)
    lr: float = Field(2e-5, gt=0)
    mode: Literal["full", "lora", "projector"] = "full"
    temperature: float = Field(1.0, gt=0)
    batch_size: int = Field(8, ge=1)
    max_new_tokens: int = Field(8, ge=1)


def moves_to_reference(env: Environment) -> int:
    """The most valid requests a training state is advanced by: 4 (occlusion, corruption), fewer
    where the step limit is shorter (camera 2-3, drawing 3)."""
    return max(0, min(env.max_steps - 1, 4))


def training_states(scenarios: list[str], n: int, seed: int) -> list[Environment]:
    """``n`` environments, each advanced by a random number of valid requests (the prompts)."""
    rng = random.Random(seed)
    per = math.ceil(n / len(scenarios))
    states = []
    for scenario in scenarios:
        for env in world_environments(scenario, per, seed=TRAIN_SEED_OFFSET + seed):
            for _ in range(rng.randint(0, moves_to_reference(env))):
                right = env.correct_sets()[0]
                if not right or env.done:
                    break
                env.step(right[0])
            if not env.done:
                states.append(env)
    rng.shuffle(states)
    return states[:n]


def reward(env: Environment, reply: str, r_p: float) -> float:
    """The spec's reward of ``reply`` in ``env``'s current state (the state is not changed)."""
    _, category, action = env.read(reply)
    return 1.0 if category == "correct" else (r_p if action is not None else 0.0)


def advantages(rewards: np.ndarray) -> np.ndarray:
    """Group-relative advantages ``(r - mean) / (std + 1e-4)`` of a ``(rollouts,)`` reward vector."""
    return (rewards - rewards.mean()) / (rewards.std() + 1e-4)


def _trainable(model, mode: str):
    from vlmkit.compress.sft import SFTConfig, _attach

    if mode != "lora":
        return _attach(model, SFTConfig(mode=mode))
    from peft import LoraConfig, get_peft_model

    network = model.model
    for p in network.parameters():
        p.requires_grad_(False)
    network = get_peft_model(network, LoraConfig(r=16, lora_alpha=16, lora_dropout=0.1, target_modules=["q_proj", "k_proj"]))
    return network, [p for p in network.parameters() if p.requires_grad]


def sequence_logprob(network, batch: dict) -> torch.Tensor:
    """``(batch,)`` summed log-probability of the labelled (assistant) tokens."""
    labels = batch["labels"]
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    logits = network(**inputs).logits.float()[:, :-1]
    targets = labels[:, 1:]
    mask = targets != -100
    logp = torch.log_softmax(logits, dim=-1).gather(2, targets.clamp(min=0)[..., None])[..., 0]
    return (logp * mask).sum(1)


def grpo(model, states: list[Environment], opts: TrainOptions, log=print) -> dict:
    """Fine-tune ``model`` (an HFChatModel, in place) on ``states``; returns the training history."""
    torch.manual_seed(opts.seed)
    network, trainable = _trainable(model, opts.mode)
    steps = opts.epochs * math.ceil(len(states) / opts.batch_size)
    optimizer = torch.optim.AdamW(trainable, lr=opts.lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * min(1.0, s / steps))))
    history = []
    step = 0
    for epoch in range(opts.epochs):
        for start in range(0, len(states), opts.batch_size):
            chunk = states[start : start + opts.batch_size]
            convs = [turn_conversation(env) for env in chunk]
            network.eval()
            replies = model.generate([c for c in convs for _ in range(opts.rollouts)], max_new_tokens=opts.max_new_tokens,
                                     temperature=opts.temperature, seed=opts.seed * 100_003 + step)
            rows, weights, rewards_all = [], [], []
            for i, env in enumerate(chunk):
                group = replies[i * opts.rollouts : (i + 1) * opts.rollouts]
                rewards = np.array([reward(env, r, opts.reward_proactive) for r in group])
                rewards_all.append(rewards)
                if rewards.std() == 0:
                    continue
                for reply, a in zip(group, advantages(rewards), strict=True):
                    rows.append([*convs[i], assistant(reply)])
                    weights.append(a)
            mean_reward = float(np.mean(np.concatenate(rewards_all)))
            loss_value = 0.0
            if rows:
                network.train()
                batch = model.training_batch(rows)
                loss = -(
                    torch.tensor(weights, dtype=torch.float32, device=batch["labels"].device) * sequence_logprob(network, batch)
                ).mean()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(trainable, 1.0)
                optimizer.step()
                schedule.step()
                loss_value = float(loss.item())
            step += 1
            history.append(
                {
                    "step": step,
                    "epoch": epoch,
                    "mean_reward": mean_reward,
                    "loss": loss_value,
                    "groups_with_signal": len(rows) // opts.rollouts,
                }
            )
            log(
                f"step {step}/{steps}: mean reward {mean_reward:.3f}, loss {loss_value:.4f}, "
                f"groups with signal {len(rows) // opts.rollouts}/{len(chunk)}"
            )
    network.eval()
    if opts.mode == "lora":
        model.model = network.merge_and_unload()
    for p in model.model.parameters():
        p.requires_grad_(False)
    return {"steps": step, "history": history, "trainable_parameters": int(sum(p.numel() for p in trainable))}


def run_train(opts: TrainOptions):
    from vlmkit.errors import UserError
    from vlmkit.models.chat_registry import load_chat_model
    from vlmkit.report import html
    from vlmkit.report.plots import lines

    names = resolve(opts.scenarios, list(WORLD_SCENARIOS))
    model = load_chat_model(opts.model, device=opts.resolved_device(), dtype=opts.dtype)
    if not hasattr(model, "training_batch"):
        raise UserError(f"{opts.model} is not an in-process model with weights; train an hf:, local, random: or embedded-chat model")
    run = Run(opts.out, "proactive train", opts.model_dump(mode="json"), seed=opts.seed)
    with run.timer("train"):
        states = training_states(names, opts.prompts, opts.seed)
        out = grpo(model, states, opts)
    model.save(opts.out / "model")
    held_out = [s for s in WORLD_SCENARIOS if s not in names]
    result = {
        "model": opts.model,
        "trained_on": names,
        "held_out": held_out,
        "reward_proactive": opts.reward_proactive,
        "prompts": len(states),
        "rollouts": opts.rollouts,
        "steps": out["steps"],
        "trainable_parameters": out["trainable_parameters"],
        "mean_reward_first": out["history"][0]["mean_reward"] if out["history"] else None,
        "mean_reward_last": out["history"][-1]["mean_reward"] if out["history"] else None,
        "history": out["history"],
        "model_dir": str(opts.out / "model"),
    }
    chart = lines(
        {"mean reward": [h["mean_reward"] for h in out["history"]]}, caption="mean rollout reward per step", xlabel="step", ylabel="reward"
    )
    page = html.page(
        f"ProactiveBench GRPO: {opts.model}",
        html.section("Training", html.key_values({k: v for k, v in result.items() if k != "history"}), chart),
    )
    return run.finish(result, page)

