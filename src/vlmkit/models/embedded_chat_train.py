"""Training ``embedded-chat`` on shapes-world conversations (``vlmkit world train-chat``).

The vision tower is frozen, so its features are computed once per training image (``work/``
holds the rendered pool's features and attributes). The projector and a small Llama model are
trained from scratch with next-token cross-entropy on the assistant's words only (LLaVA's
instruction-tuning loss, Liu et al. 2023), plus a *lens* loss: the attribute word each reply is
decided by (for yes/no and lettered choice one it does not say: the perceived colour behind
"no", the value behind a letter) is also supervised at an intermediate layer (:func:`batch_loss`).
The data follow a curriculum (``CURRICULUM``): each step has a *short* batch (attribute
questions, naming, counting and yes/no first; lettered choice and follow-up turns from 30% of
the run), from 30% every third step also an *ICL* batch (k-way one-shot labelling episodes with
novel labels, several query turns each, every answer supervised), plus a text-only *scaffold*
batch, cheap without images: yes/no on a described scene, repeating key-label pairs and text
induction from the start, lettered choice on a described scene from 30%. A *route* loss
supervises the attention of in-context labelling (:func:`route_loss`): a gather head brings each
labelled and each queried image to the label and the reply, a copy head attends to the label to
give and names it.

In-context learning with novel labels needs things a word-level model does not give for free
(see ``docs/chat.md``): labels are nonce words from a reserved pool (never a real word); their
embeddings are not trained but drawn afresh at random every step (so no label word can acquire a
prior, a held-out word is just another random vector, and the only way to name a label is to
copy it from the context); input and output embeddings are tied, so copying a context label's
embedding forward produces that label's logit.

Resumable and seeded: batches come from ``default_rng([seed, step])`` and the checkpoint
(``work/state.safetensors``) holds model and optimizer state; rerunning the same command continues.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vlmkit.data import world_chat as wc
from vlmkit.models import embedded_chat_build as build
from vlmkit.models.embedded_chat_batches import COPY, GATHER, IMAGE_ID, Batch, Encoder, FeatureBank, draw_examples, draw_icl
from vlmkit.runs.checkpoint import load_training_state, save_training_state
from vlmkit.runs.files import atomic_save_npy, atomic_write_json


@dataclass(frozen=True)
class Stage:
    """The data from ``start`` (a fraction of the run's steps) on: the short batch's task mix
    (task -> weight), the text-only scaffold batch's mix, and one ICL batch in place of the short
    batch every ``icl_every`` steps (0: none)."""

    start: float
    short: dict[str, float]
    scaffold: dict[str, float]
    icl_every: int = 0


_PERCEIVE = {"color": 1, "shape": 1.5, "size": 0.5, "texture": 1, "position": 1, "background": 0.5, "name": 1, "count": 0.5}
_COPY = {"echo": 0.5, "text_icl": 1}  # the copying scaffolds, from the start: they form the copy before the residual fills up
CURRICULUM = (  # perceive, verify and copy; then choose, follow up and label in context (docs/chat.md)
    Stage(0.0, {**_PERCEIVE, "yesno": 3}, {"text_yesno": 1, **_COPY}),
    Stage(0.3, {**_PERCEIVE, "yesno": 2, "mcq": 2.5, "multiturn": 2}, {"text_yesno": 1, "text_mcq": 1, **_COPY}, 3),
    Stage(0.6, {**_PERCEIVE, "yesno": 2, "mcq": 2, "multiturn": 2}, {"text_yesno": 1, "text_mcq": 1, **_COPY}, 3),
)
TRAIN_SEED = 0
VALID_SEED = 1


@dataclass
class ChatTrainConfig:
    """Options of ``vlmkit world train-chat`` (defaults: the shipped ``embedded-chat``)."""

    steps: int = 2400
    short_batch: int = 48
    icl_batch: int = 16
    scaffold_batch: int = 64  # text-only scaffold conversations added to every step (0: none)
    icl_queries: int = 4
    lens_weight: float = 1.0  # weight of the intermediate-layer loss on each reply's latent word (0: none)
    lens_layer: int = 2  # the decoder layer whose output the lens loss reads
    lr: float = 2e-3
    min_lr_ratio: float = 0.1
    warmup: int = 200
    weight_decay: float = 0.05
    grad_clip: float = 1.0
    pool: int = 6000
    count_pool: int = 2000
    valid_pool: int = 300
    valid_n: int = 96
    grid: int = 8
    tower_mode: str = "resize"
    resample: str = "bicubic"
    hidden: int = 128
    layers: int = 4
    heads: int = 4
    mlp: int = 256
    seed: int = 0
    threads: int = 2
    checkpoint_every: int = 100
    log_every: int = 25
    eval_every: int = 250
    tower: str | None = None  # an embedded checkpoint directory; default: the shipped ``embedded``
    resample_nonce: bool = True  # fresh random nonce embeddings every step: no prior over label words, only copying
    nonce_scale: float = 1.0  # norm of the random nonce embeddings (tied: larger norms drown the real words' logits in noise)
    route_weight: float = 1.0  # weight of the attention-route loss of in-context labelling (0: none; batch_loss)
    gather_layer: int = 1  # the layer whose head 0 gathers each labelled and each queried image; the last layer's head 0 copies

    def image_tokens(self) -> int:
        return 1 + self.grid * self.grid

    def text_config(self) -> dict:
        vocab = len(build.vocabulary())
        return {
            "vocab_size": vocab, "hidden_size": self.hidden, "intermediate_size": self.mlp, "num_hidden_layers": self.layers,
            "num_attention_heads": self.heads, "num_key_value_heads": self.heads, "max_position_embeddings": 1024,
            "rms_norm_eps": 1e-5, "tie_word_embeddings": True, "initializer_range": 0.02,
            "pad_token_id": 0, "bos_token_id": None, "eos_token_id": build.vocabulary().index(build.END_TOKEN),
        }


class Head(NamedTuple):
    """One attention head at ``m`` positions: its weights ``(m, seq)`` and its output written to
    the residual stream ``(m, hidden)``."""

    weights: Tensor
    output: Tensor


class Outputs(NamedTuple):
    """What :meth:`ChatNetwork.run` returns: ``logits`` ``(batch, seq, vocab)``, the logit lens of
    one layer (or None) and head 0 at the asked positions, by layer."""

    logits: Tensor
    lens: Tensor | None
    heads: dict[int, Head]


class ChatNetwork(nn.Module):
    """Projector + Llama LM; image features are standardised by fixed statistics (folded into
    the projector's first layer at export)."""

    def __init__(self, cfg: ChatTrainConfig, vision_dim: int, feature_mean: Tensor, feature_std: Tensor):
        super().__init__()
        from transformers import LlamaConfig, LlamaForCausalLM

        if cfg.lens_weight and not 1 <= cfg.lens_layer < cfg.layers:
            raise ValueError(f"lens_layer must be an inner decoder layer, 1 to {cfg.layers - 1}, not {cfg.lens_layer}")
        if cfg.route_weight and not 1 <= cfg.gather_layer < cfg.layers - 1:
            raise ValueError(f"gather_layer must come before the last decoder layer (1 to {cfg.layers - 2}), not {cfg.gather_layer}")
        self.lm = LlamaForCausalLM(LlamaConfig(**cfg.text_config()))
        self.linear_1 = nn.Linear(vision_dim, cfg.hidden)
        self.linear_2 = nn.Linear(cfg.hidden, cfg.hidden)
        self.register_buffer("feature_mean", feature_mean.float())
        self.register_buffer("feature_std", feature_std.float())
        start, end = build.nonce_id_range()
        with torch.no_grad():  # every row unit-scale random, nonce rows of norm ``nonce_scale``
            emb = self.lm.model.embed_tokens.weight
            emb.normal_(0, 1 / math.sqrt(cfg.hidden))
            emb[start:end] *= cfg.nonce_scale
        self.nonce = (start, end)
        self.nonce_scale = cfg.nonce_scale

    def project(self, features: Tensor) -> Tensor:
        """``(..., d_vision)`` tower features -> ``(..., hidden)`` LM inputs (LLaVA projector, GELU)."""
        x = (features - self.feature_mean) / self.feature_std
        return self.linear_2(F.gelu(self.linear_1(x)))

    def forward(self, ids: Tensor, image_features: Tensor, attention_mask: Tensor) -> Tensor:
        """Logits ``(batch, seq, vocab)``; ``image_features`` ``(n_image_tokens, d_vision)`` fill
        the ``<image>`` positions of ``ids`` in order."""
        return self.run(ids, image_features, attention_mask).logits

    def run(self, ids: Tensor, image_features: Tensor, attention_mask: Tensor, layer: int | None = None,
            queries: dict[int, tuple[Tensor, Tensor]] | None = None) -> Outputs:
        """:class:`Outputs`: the logits; with ``layer``, the logit lens of that decoder layer's
        output (final norm and tied output matrix, nostalgebraist 2020), ``(batch, seq, vocab)``;
        with ``queries`` (decoder layer -> (rows, positions), ``(m,)`` each), head 0 of that layer
        at those positions (:class:`Head`)."""
        embeds = self.lm.model.embed_tokens(ids)
        mask = ids == IMAGE_ID
        if image_features.shape[0]:
            embeds = embeds.masked_scatter(mask[..., None], self.project(image_features).to(embeds.dtype))
        inputs: dict[int, tuple] = {}
        hooks = [self.lm.model.layers[i].self_attn.register_forward_pre_hook(
            lambda module, args, kwargs, i=i: inputs.__setitem__(i, (kwargs["hidden_states"], kwargs["position_embeddings"])),
            with_kwargs=True) for i in queries or {}]
        try:
            out = self.lm.model(inputs_embeds=embeds, attention_mask=attention_mask, output_hidden_states=layer is not None)
        finally:
            for hook in hooks:
                hook.remove()
        logits = self.lm.lm_head(out.last_hidden_state)
        lens = None if layer is None else self.lm.lm_head(self.lm.model.norm(out.hidden_states[layer]))
        heads = {i: self._head0(i, *inputs[i], *queries[i]) for i in queries or {}}
        return Outputs(logits, lens, heads)

    def _head0(self, layer: int, hidden: Tensor, rotary: tuple[Tensor, Tensor], rows: Tensor, positions: Tensor) -> Head:
        """Head 0 of ``layer`` at ``(rows, positions)``, recomputed from the layer's normed input as
        Llama computes it (rotary queries and keys, causal softmax): its attention weights and
        what it writes to the residual stream (through its slice of ``o_proj``)."""
        attention = self.lm.model.layers[layer].self_attn
        d = attention.head_dim
        cos, sin = (t.expand(hidden.shape[0], -1, -1) for t in rotary)

        def rotate(x: Tensor, c: Tensor, s: Tensor) -> Tensor:
            return x * c + torch.cat((-x[..., d // 2:], x[..., : d // 2]), -1) * s

        q = rotate(F.linear(hidden[rows, positions], attention.q_proj.weight[:d]), cos[rows, positions], sin[rows, positions])  # (m, d)
        k = rotate(F.linear(hidden[rows], attention.k_proj.weight[:d]), cos[rows], sin[rows])  # (m, seq, d)
        scores = torch.einsum("md,msd->ms", q, k) * attention.scaling
        future = torch.arange(hidden.shape[1])[None] > positions[:, None]
        weights = scores.masked_fill(future, float("-inf")).softmax(-1)
        values = F.linear(hidden[rows], attention.v_proj.weight[:d])  # (m, seq, d)
        return Head(weights, F.linear(torch.einsum("ms,msd->md", weights, values), attention.o_proj.weight[:, :d]))

    @torch.no_grad()
    def resample_nonce(self, generator: torch.Generator) -> None:
        """Draw fresh random embeddings for every nonce label (tied: input and output rows)."""
        emb = self.lm.model.embed_tokens.weight
        start, end = self.nonce
        emb[start:end] = torch.randn(end - start, emb.shape[1], generator=generator) * self.nonce_scale / math.sqrt(emb.shape[1])

    def freeze_nonce_grads(self) -> None:
        grad = self.lm.model.embed_tokens.weight.grad
        if grad is not None:
            grad[self.nonce[0]: self.nonce[1]] = 0


TIED = "lm.lm_head.weight"


def saved_state(network: ChatNetwork) -> dict[str, Tensor]:
    """The state dict without the tied output matrix (it is the embedding table)."""
    return {k: v for k, v in network.state_dict().items() if k != TIED}


# -- features of the training pool ------------------------------------------------------------


def pool_refs(seed: int, n_single: int, n_count: int) -> list[wc.SceneRef]:
    return [wc.SceneRef(seed, i) for i in range(n_single)] + [wc.SceneRef(seed, i, "count") for i in range(n_count)]


def compute_features(refs: list[wc.SceneRef], tower, processor, batch: int = 200, log=print) -> np.ndarray:
    """``(n, tokens, d_vision)`` float16 tower features of the rendered scenes."""
    from PIL import Image

    chunks = []
    for start in range(0, len(refs), batch):
        images = [Image.fromarray(wc.render_scene(r)) for r in refs[start: start + batch]]
        chunks.append(build.tower_features(tower, build.pixels(images, processor)).half().numpy())
        log(f"features {min(start + batch, len(refs))}/{len(refs)}")
    return np.concatenate(chunks)


def cached_features(work: Path, name: str, refs: list[wc.SceneRef], tower, processor, log=print) -> np.ndarray:
    path = work / f"{name}.npy"
    if path.is_file():
        feats = np.load(path)
        if len(feats) == len(refs):
            return feats
    feats = compute_features(refs, tower, processor, log=log)
    atomic_save_npy(path, feats)
    return feats


def cached_attributes(work: Path, name: str, refs: list[wc.SceneRef]) -> dict[wc.SceneRef, dict]:
    import json

    path = work / f"{name}-attributes.json"
    if path.is_file():
        rows = json.loads(path.read_text())
        if len(rows) == len(refs):
            return dict(zip(refs, rows, strict=True))
    rows = [wc.scene_attributes(r) for r in refs]
    atomic_write_json(path, rows)
    return dict(zip(refs, rows, strict=True))


def stage_at(step: int, cfg: ChatTrainConfig) -> Stage:
    """The curriculum stage that ``step`` falls in."""
    return [stage for stage in CURRICULUM if step >= stage.start * cfg.steps][-1]


def lr_at(step: int, cfg: ChatTrainConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def masked_loss(logits: Tensor, labels: Tensor) -> Tensor:
    return F.cross_entropy(logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten(), ignore_index=-100)


def batch_loss(network: ChatNetwork, batch: Batch, bank: FeatureBank, cfg: ChatTrainConfig) -> Tensor:
    """Next-token loss on the replies, plus ``cfg.lens_weight`` times the lens loss and
    ``cfg.route_weight`` times the route loss (:func:`route_loss`).

    The lens loss: the latent words of :class:`Batch` (:class:`~vlmkit.data.world_chat.Turn`),
    read through the logit lens of decoder layer ``cfg.lens_layer``. Deep supervision (Lee et al.
    2015) of the step that yes/no, lettered choice and "same ?" replies are decided by but do not
    say: without it the perceived attribute and the comparison that uses it must appear
    together, and in ``embedded-chat`` they did not (docs/chat.md)."""
    lens_layer = cfg.lens_layer if cfg.lens_weight and len(batch.lens) else None
    routes = routes_by_layer(batch.routes, cfg) if cfg.route_weight else {}
    queries = {layer: (r[:, 0], r[:, 1]) for layer, r in routes.items()}
    out = network.run(batch.ids, bank.gather(batch.refs), batch.mask, layer=lens_layer, queries=queries)
    loss = masked_loss(out.logits, batch.labels)
    if lens_layer is not None:
        rows, positions, words = batch.lens.T
        loss = loss + cfg.lens_weight * F.cross_entropy(out.lens[rows, positions], words)
    if routes:
        loss = loss + cfg.route_weight * route_loss(network, batch, out, routes, cfg)
    return loss


def routes_by_layer(routes: Tensor, cfg: ChatTrainConfig) -> dict[int, Tensor]:
    """The rows of ``routes`` (:attr:`Batch.routes`) by the layer whose head 0 they supervise:
    ``GATHER`` routes in ``cfg.gather_layer``, ``COPY`` routes in the last layer (none if empty)."""
    layers = {GATHER: cfg.gather_layer, COPY: cfg.layers - 1}
    return {layer: routes[routes[:, 4] == kind] for kind, layer in layers.items() if (routes[:, 4] == kind).any()}


def route_loss(network: ChatNetwork, batch: Batch, out: Outputs, routes: dict[int, Tensor], cfg: ChatTrainConfig) -> Tensor:
    """Supervised attention for the induction circuit of in-context labelling, which the
    next-token loss alone never started in embedded-chat (docs/chat.md): the mean ``-log`` of the
    attention mass each route's head puts on its target (:func:`attention_mass`), plus the
    cross-entropy of the copy head's own output (:func:`copy_logits`) against the label it should
    copy. ``routes`` from :func:`routes_by_layer`; ``out`` from :meth:`ChatNetwork.run` with them."""
    masses = torch.cat([attention_mass(out.heads[layer].weights, r[:, 2], r[:, 3]) for layer, r in routes.items()])
    loss = -torch.log(masses.clamp_min(1e-6)).mean()
    copies = routes.get(cfg.layers - 1)
    if copies is not None:
        labels = batch.ids[copies[:, 0], copies[:, 2]]
        loss = loss + F.cross_entropy(copy_logits(network, out.heads[cfg.layers - 1].output), labels)
    return loss


def copy_logits(network: ChatNetwork, output: Tensor) -> Tensor:
    """``(m, vocab)``: what a head's output ``(m, hidden)`` says through the final norm and the
    tied output matrix (its logit lens; scale-free, so the loss does not make the head loud where
    other replies need the residual stream)."""
    return network.lm.lm_head(network.lm.model.norm(output))


def attention_mass(weights: Tensor, starts: Tensor, ends: Tensor) -> Tensor:
    """``(m,)``: how much of each row of ``weights`` ``(m, seq)`` falls on ``[start, end)``."""
    columns = torch.arange(weights.shape[-1])
    return (weights * ((columns >= starts[:, None]) & (columns < ends[:, None]))).sum(-1)


@torch.no_grad()
def answer_accuracy(network: ChatNetwork, encoder: Encoder, bank: FeatureBank, examples: list[wc.Example]) -> float:
    """Fraction of examples whose every supervised token is the argmax (greedy decoding would
    produce the answer and stop), teacher-forced, in batches of 64."""
    right = 0
    for start in range(0, len(examples), 64):
        chunk = examples[start: start + 64]
        batch = encoder.batch(chunk)
        logits = network(batch.ids, bank.gather(batch.refs), batch.mask)
        pred = logits[:, :-1].argmax(-1)
        target = batch.labels[:, 1:]
        ok = ((pred == target) | (target == -100)).all(-1)
        right += int(ok.sum())
    return right / len(examples)


def _optimizer(network: ChatNetwork, cfg: ChatTrainConfig) -> torch.optim.Optimizer:
    decay, plain = [], []
    for name, p in network.named_parameters():
        (decay if p.ndim == 2 and "embed_tokens" not in name else plain).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": plain, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.98))


def train(cfg: ChatTrainConfig, out: str | Path, log=print) -> Path:
    """Train (or resume) and export ``out/model`` (a plain HF LLaVA directory); returns it."""
    from vlmkit.models.embedded_chat_export import export

    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    out = Path(out)
    work = out / "work"
    work.mkdir(parents=True, exist_ok=True)
    atomic_write_json(work / "config.json", asdict(cfg))

    vision_config, vision_state = _tower(cfg)
    tower = build.vision_model(vision_config, vision_state)
    processor = build.build_processor(cfg.grid, cfg.tower_mode, cfg.resample)
    train_refs = pool_refs(TRAIN_SEED, cfg.pool, cfg.count_pool)
    valid_refs = pool_refs(VALID_SEED, cfg.valid_pool, cfg.valid_pool // 2)
    train_feats = cached_features(work, "train-features", train_refs, tower, processor, log=log)
    valid_feats = cached_features(work, "valid-features", valid_refs, tower, processor, log=log)
    bank = FeatureBank()
    bank.add(train_refs, train_feats)
    bank.add(valid_refs, valid_feats)
    train_attrs = cached_attributes(work, "train", train_refs)
    valid_attrs = cached_attributes(work, "valid", valid_refs)

    flat = torch.from_numpy(train_feats[: min(len(train_feats), 2000)].astype(np.float32)).flatten(0, 1)
    network = ChatNetwork(cfg, flat.shape[-1], flat.mean(0), flat.std(0) + 1e-4)
    optimizer = _optimizer(network, cfg)
    encoder = Encoder(cfg.image_tokens())
    train_labels, heldout_labels = wc.nonce_split()

    state_path = work / "state.safetensors"
    step = 0
    if state_path.is_file():
        state, step = load_training_state(state_path, optimizer)
        missing, unexpected = network.load_state_dict(state, strict=False)
        if [k for k in missing if k != TIED] or unexpected:
            raise ValueError(f"{state_path} does not match this configuration; use a new --out or the same options")
        log(f"resumed at step {step}")

    valid = _validation_set(cfg, valid_attrs, heldout_labels)
    history_path = work / "history.jsonl"
    ema: dict[str, float] = {}
    t0 = time.time()
    network.train()
    while step < cfg.steps:
        rng = np.random.default_rng([cfg.seed, step])
        source = wc.SceneSource(TRAIN_SEED, rng, pool=cfg.pool, count_pool=cfg.count_pool, pool_attributes=train_attrs)
        stage = stage_at(step, cfg)
        icl_step = bool(stage.icl_every) and step % stage.icl_every == stage.icl_every - 1
        examples = draw_examples(stage.short, cfg.short_batch, source, rng, train_labels, 3)
        episodes = draw_icl(cfg.icl_batch, source, rng, train_labels, cfg.icl_queries) if icl_step else []
        if cfg.resample_nonce:
            network.resample_nonce(torch.Generator().manual_seed(cfg.seed * 1_000_003 + step))
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, cfg)
        loss = batch_loss(network, encoder.batch(examples), bank, cfg)
        value = float(loss.detach())
        if episodes:  # in addition to the short batch, so the other skills see as many steps as before
            icl = batch_loss(network, encoder.batch(episodes), bank, cfg)
            ema["icl"] = float(icl.detach()) if "icl" not in ema else 0.95 * ema["icl"] + 0.05 * float(icl.detach())
            loss = loss + icl
        if cfg.scaffold_batch and stage.scaffold:  # short text sequences: cheap, and dense enough for comparison to form
            scaffold_examples = draw_examples(stage.scaffold, cfg.scaffold_batch, source, rng, train_labels, 3)
            scaffold = batch_loss(network, encoder.batch(scaffold_examples), bank, cfg)
            text_value = float(scaffold.detach())
            ema["scaffold"] = text_value if "scaffold" not in ema else 0.95 * ema["scaffold"] + 0.05 * text_value
            loss = loss + scaffold
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        network.freeze_nonce_grads()
        torch.nn.utils.clip_grad_norm_(network.parameters(), cfg.grad_clip)
        optimizer.step()
        step += 1
        ema["short"] = value if "short" not in ema else 0.95 * ema["short"] + 0.05 * value
        if step % cfg.log_every == 0:
            rate = (time.time() - t0) / cfg.log_every
            t0 = time.time()
            log(f"step {step}/{cfg.steps} loss short {ema.get('short', float('nan')):.3f} icl {ema.get('icl', float('nan')):.3f} "
                f"scaffold {ema.get('scaffold', float('nan')):.3f} lr {lr_at(step, cfg):.2e} {rate:.2f} s/step")
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            save_training_state(state_path, saved_state(network), optimizer, step)
        if step % cfg.eval_every == 0 or step == cfg.steps:
            network.eval()
            scores = {task: round(answer_accuracy(network, encoder, bank, ex), 3) for task, ex in valid.items()}
            network.train()
            log(f"step {step} validation {scores}")
            with history_path.open("a") as handle:
                import json

                handle.write(json.dumps({"step": step, "valid": scores, "loss": ema}) + "\n")
            t0 = time.time()
    return export(network, cfg, vision_config, vision_state, processor, out / "model")


def _validation_set(cfg: ChatTrainConfig, attrs: dict, heldout_labels: list[str]) -> dict[str, list[wc.Example]]:
    """Fixed teacher-forced checks on the validation pool; ICL uses held-out nonce labels."""
    rng = np.random.default_rng([cfg.seed, 10**6])
    n = cfg.valid_n
    source = wc.SceneSource(VALID_SEED, rng, pool=cfg.valid_pool, count_pool=cfg.valid_pool // 2, pool_attributes=attrs)
    tasks = ("color", "shape", "texture", "position", "name", "count", "yesno", "mcq", "multiturn", "text_yesno", "text_mcq")
    sets = {t: [wc.make_example(t, source, rng, heldout_labels) for _ in range(n)] for t in tasks}
    sets["icl4"] = [wc.make_example("icl", source, rng, heldout_labels, ways=4) for _ in range(n)]
    sets["text_icl"] = [wc.make_example("text_icl", source, rng, heldout_labels, icl_queries=1) for _ in range(n)]
    return sets


def _tower(cfg: ChatTrainConfig) -> tuple[dict, dict[str, Tensor]]:
    """The frozen tower's config fields and state at the configured grid."""
    from vlmkit.models.embedded import shipped_dir

    return build.coarse_tower(*build.embedded_tower_state(cfg.tower or shipped_dir("embedded")), cfg.grid, cfg.tower_mode)


def load_run(out: str | Path) -> tuple[ChatTrainConfig, ChatNetwork]:
    """The configuration and network (eval mode) of the latest checkpoint under ``out/work``."""
    import json

    from safetensors.torch import load_file

    out = Path(out)
    saved = json.loads((out / "work" / "config.json").read_text())
    unknown = set(saved) - {f.name for f in fields(ChatTrainConfig)}
    if unknown:
        raise ValueError(f"{out} was trained by another vlmkit version (settings {', '.join(sorted(unknown))}); export it with that one")
    cfg = ChatTrainConfig(**saved)
    state = {k[len("model."):]: v for k, v in load_file(out / "work" / "state.safetensors").items() if k.startswith("model.")}
    network = ChatNetwork(cfg, state["linear_1.weight"].shape[1], state["feature_mean"], state["feature_std"])
    missing, unexpected = network.load_state_dict(state, strict=False)
    if [k for k in missing if k != TIED] or unexpected:
        raise ValueError(f"checkpoint under {out} does not match its config.json")
    return cfg, network.eval()


def export_checkpoint(out: str | Path, directory: str | Path | None = None, metrics: dict | None = None, log=print) -> Path:
    """Export the latest checkpoint under ``out/work`` (training may still be running) to
    ``directory`` (default ``out/model``) as a HF LLaVA directory."""
    from vlmkit.models.embedded_chat_export import export

    cfg, network = load_run(out)
    vision_config, vision_state = _tower(cfg)
    processor = build.build_processor(cfg.grid, cfg.tower_mode, cfg.resample)
    return export(network, cfg, vision_config, vision_state, processor, directory or Path(out) / "model", metrics)
