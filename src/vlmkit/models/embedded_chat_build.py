"""Building the pieces of ``embedded-chat`` as a plain Hugging Face LLaVA checkpoint.

``embedded-chat`` is a ``LlavaForConditionalGeneration`` (Liu et al., "Visual Instruction
Tuning", NeurIPS 2023): the frozen CLIP vision tower of ``embedded``, a two-layer projector and a
small Llama language model trained from scratch, with a word-level ``tokenizers`` tokenizer over
the shapes world's language and a chat template. Nothing here is vlmkit-specific at load time:
``AutoModelForImageTextToText`` and ``AutoProcessor`` load the directory as is.

Image tokens. ``embedded``'s tower sees 96 px images as an 8 x 8 grid of 12 px patches. To keep
multi-image prompts short, the exported tower reads the same 96 px image on a coarser ``grid``
(``grid`` x ``grid`` patches of ``96 / grid`` px): its patch kernel is the original 12 px kernel
tiled and divided by the number of tiles (so each coarse patch embedding is the mean of the
original embeddings of the 12 px patches it covers), and its position embeddings are the 8 x 8
table average-pooled to ``grid`` x ``grid``. With ``vision_feature_select_strategy="full"`` the
language model gets the CLS token and the ``grid**2`` patch tokens of the last layer.

Chat template: ``<|user|> <image> what color is the shape ? <|end|> <|assistant|> red <|end|>``
(roles ``system``, ``user``, ``assistant``; each ``{"type": "image"}`` part becomes ``<image>``,
which the processor expands to the image's tokens; generation stops at ``<|end|>``).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from vlmkit.data import world_chat as wc

SPECIAL_TOKENS = ("<pad>", "<unk>", "<image>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>")
IMAGE_TOKEN = "<image>"
END_TOKEN = "<|end|>"
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
SIDE = 96
PATCH = 12

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>' }}"
    "{% if message['content'] is string %}{{ ' ' + message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}{{ ' <image>' }}"
    "{% elif part['type'] == 'text' %}{{ ' ' + part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{{ ' <|end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)


def vocabulary() -> list[str]:
    """Token strings in id order: special tokens, world words, then the nonce labels (training
    pool first, held-out pool last), so each group is a contiguous id range."""
    train, heldout = wc.nonce_split()
    return [*SPECIAL_TOKENS, *wc.base_words(), *train, *heldout]


def nonce_id_range() -> tuple[int, int]:
    """``[start, end)`` token ids of every nonce label (their embeddings stay at their random init)."""
    vocab = vocabulary()
    train, heldout = wc.nonce_split()
    start = vocab.index(train[0])
    return start, start + len(train) + len(heldout)


def build_tokenizer():
    """A ``PreTrainedTokenizerFast``: lower-cased, split on whitespace and punctuation, one id per word."""
    from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(vocabulary())}
    core = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    core.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    core.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    core.add_special_tokens(list(SPECIAL_TOKENS))
    return PreTrainedTokenizerFast(
        tokenizer_object=core, unk_token="<unk>", pad_token="<pad>", eos_token=END_TOKEN,
        extra_special_tokens={"image_token": IMAGE_TOKEN}, padding_side="left", model_max_length=2048,
    )


RESAMPLE = {"nearest": 0, "bicubic": 3}


def image_processor_kwargs(side: int = SIDE, resample: str = "bicubic") -> dict:
    return {
        "do_resize": True, "size": {"shortest_edge": side}, "resample": RESAMPLE[resample], "do_center_crop": True,
        "crop_size": {"height": side, "width": side}, "do_rescale": True, "rescale_factor": 1 / 255,
        "do_normalize": True, "image_mean": list(CLIP_MEAN), "image_std": list(CLIP_STD), "do_convert_rgb": True,
    }


def build_processor(grid: int, mode: str = "tile", resample: str = "bicubic"):
    """The ``LlavaProcessor``: CLIP preprocessing (96 px for ``mode="tile"``, ``12 * grid`` px
    for ``"resize"``), the tokenizer, the chat template; each image becomes ``1 + grid**2`` tokens."""
    side = SIDE if mode == "tile" else PATCH * grid
    from transformers import CLIPImageProcessor, LlavaProcessor

    from vlmkit.models.quiet import quiet_transformers

    with quiet_transformers():
        image_processor = CLIPImageProcessor(**image_processor_kwargs(side, resample))
    return LlavaProcessor(
        image_processor=image_processor, tokenizer=build_tokenizer(), patch_size=side // grid,
        vision_feature_select_strategy="full", chat_template=CHAT_TEMPLATE, num_additional_image_tokens=1, image_token=IMAGE_TOKEN,
    )


def render_text(turns: list[wc.Turn], add_generation_prompt: bool = False) -> str:
    """The chat template, in Python, over :class:`~vlmkit.data.world_chat.Turn` lists (images as
    ``<image>``); tested equal to the Jinja template."""
    out = []
    for turn in turns:
        body = "".join(f" {IMAGE_TOKEN}" if isinstance(p, wc.SceneRef) else f" {p}" for p in turn.parts)
        out.append(f"<|{turn.role}|>{body} {END_TOKEN}\n")
    return "".join(out) + ("<|assistant|>" if add_generation_prompt else "")


# -- the vision tower -------------------------------------------------------------------------


def embedded_tower_state(directory: str | Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """``(vision_config dict, CLIPVisionModel state dict)`` of an ``embedded`` checkpoint."""
    directory = Path(directory)
    config = json.loads((directory / "config.json").read_text())["vision_config"]
    prefix = "vision_model."
    state = {k[len(prefix):]: v for k, v in load_file(directory / "model.safetensors").items() if k.startswith(prefix)}
    return config, state


def coarse_tower(config: dict, state: dict[str, torch.Tensor], grid: int, mode: str = "tile") -> tuple[dict, dict[str, torch.Tensor]]:
    """The tower on a ``grid`` x ``grid`` patch grid (see module doc).

    Args:
        config: CLIPVisionConfig fields with ``image_size`` / ``patch_size`` giving an n x n grid.
        state: its ``CLIPVisionModel`` state dict.
        grid: a divisor of n.
        mode: ``"tile"`` (same image size, patches ``n / grid`` times larger, kernel tiled) or
            ``"resize"`` (same patches on an image resized to ``patch * grid`` px).
    Returns:
        the new config fields and state dict (``grid`` == n returns copies of the inputs).
    """
    n = config["image_size"] // config["patch_size"]
    if n % grid:
        raise ValueError(f"grid {grid} must divide the tower's {n} x {n} patch grid")
    factor = n // grid
    if mode not in ("tile", "resize"):
        raise ValueError(f"mode must be tile or resize, not {mode!r}")
    state = dict(state)
    if mode == "tile":
        kernel = state["embeddings.patch_embedding.weight"]  # (d, 3, p, p)
        state["embeddings.patch_embedding.weight"] = kernel.repeat(1, 1, factor, factor) / factor**2
    positions = state["embeddings.position_embedding.weight"]  # (1 + n*n, d)
    table = positions[1:].reshape(n, n, -1).permute(2, 0, 1)[None]
    pooled = F.avg_pool2d(table, factor)[0].permute(1, 2, 0).reshape(grid * grid, -1)
    state["embeddings.position_embedding.weight"] = torch.cat([positions[:1], pooled])
    state.pop("embeddings.position_ids", None)
    if mode == "tile":
        return {**config, "patch_size": config["patch_size"] * factor}, state
    return {**config, "image_size": config["patch_size"] * grid}, state


def vision_model(config: dict, state: dict[str, torch.Tensor]):
    """A frozen ``CLIPVisionModel`` in eval mode."""
    from transformers import CLIPVisionConfig, CLIPVisionModel

    model = CLIPVisionModel(CLIPVisionConfig(**config)).eval()
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    if missing or unexpected:
        raise ValueError(f"tower state does not match its config (missing {missing[:3]}, unexpected {unexpected[:3]})")
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def pixels(images: list, processor) -> torch.Tensor:
    """``(n, 3, 96, 96)`` float pixel values through the checkpoint's own image processor."""
    return processor.image_processor(images=images, return_tensors="pt")["pixel_values"]


@torch.no_grad()
def tower_features(tower, pixel_values: torch.Tensor) -> torch.Tensor:
    """``(n, 1 + grid**2, d_vision)``: the last layer's hidden states, CLS first (what LLaVA's
    ``vision_feature_layer=-1`` with strategy ``"full"`` hands to the projector)."""
    return tower(pixel_values=pixel_values, output_hidden_states=True).hidden_states[-1]
