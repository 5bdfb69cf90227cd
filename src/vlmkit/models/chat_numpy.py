"""A LLaVA checkpoint as a :class:`~vlmkit.models.chat.ChatModel` in NumPy: no torch, no transformers.

``vlmkit chat --model embedded-chat`` spends seconds importing torch and transformers' modeling
stack for a network that computes in milliseconds. :class:`NumpyLlavaChat` answers from the same
Hugging Face directory with what it needs and nothing more:

- the chat template (``chat_template.jinja`` or the processor's or tokenizer's
  ``chat_template``), rendered with jinja2 configured as transformers configures it;
- the tokenizer (``tokenizer.json``) through the ``tokenizers`` package;
- the image preprocessing of the saved processor config (convert to RGB, resize, center crop,
  rescale, normalize) with PIL and NumPy, step for step as transformers' PIL backend does it;
- the network (:mod:`vlmkit.models.llava_numpy`), greedy or sampled decoding with a key/value
  cache, ``generation_config.json``'s end-of-sequence ids, left padding for generation and right
  padding for scoring, exactly as :class:`~vlmkit.models.chat_hf.HFChatModel` batches them.

Greedy answers and scores equal the HF backend's (``tests/test_chat_numpy.py``); sampled answers
are deterministic under ``seed`` but are not the draws torch would make. Anything this path does
not implement raises :class:`~vlmkit.errors.UnsupportedError` at load time; the chat registry
then loads the checkpoint through transformers (``backend="auto"``) or reports the error
(``backend="numpy"``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from vlmkit.errors import UnsupportedError, UserError
from vlmkit.models.chat import (
    Conversation,
    Message,
    check_conversations,
    check_generation,
    check_images_allowed,
    conversation_images,
    open_image,
    require,
)
from vlmkit.models.llava_checkpoint import parse_config, read_weights
from vlmkit.models.llava_numpy import LlavaNumpy
from vlmkit.models.numpy_ops import F32, log_softmax, softmax

#: the CLIP image processor's defaults (transformers' ``CLIPImageProcessor``), for keys a config omits
CLIP_DEFAULTS = {
    "do_resize": True, "size": {"shortest_edge": 224}, "resample": 3, "do_center_crop": True,
    "crop_size": {"height": 224, "width": 224}, "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
    "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711], "do_convert_rgb": True,
}  # fmt: skip
IMAGE_PROCESSORS = ("CLIPImageProcessor", "CLIPImageProcessorPil")
TOKENIZER_CLASSES = ("TokenizersBackend", "PreTrainedTokenizerFast")
#: generation_config.json keys -> values that leave greedy decoding unchanged (None: any value)
NEUTRAL_GENERATION = {
    "_from_model_config": None, "transformers_version": None, "bos_token_id": None, "eos_token_id": None, "pad_token_id": None,
    "decoder_start_token_id": None, "max_new_tokens": None, "max_length": None, "do_sample": None, "temperature": None,
    "top_k": None, "use_cache": None, "output_attentions": None, "output_hidden_states": None, "output_scores": None,
    "output_logits": None, "return_dict_in_generate": None, "suppress_tokens": None, "begin_suppress_tokens": None,
    "top_p": 1.0, "num_beams": 1, "num_return_sequences": 1, "repetition_penalty": 1.0, "min_length": 0, "min_new_tokens": 0,
    "no_repeat_ngram_size": 0, "length_penalty": 1.0, "early_stopping": False,
}  # fmt: skip


def _json(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UnsupportedError(f"{path.name} cannot be read") from exc
    if not isinstance(value, dict):
        raise UnsupportedError(f"{path.name} is not a JSON object")
    return value


def _token(value) -> str | None:
    return value.get("content") if isinstance(value, dict) else value


# -- images ------------------------------------------------------------------------------------


class ImagePreprocessor:
    """transformers' ``CLIPImageProcessor`` (PIL backend) for one image: RGB ``(3, H, W)`` float32.

    Args:
        config: the image-processor fields of ``processor_config.json`` (or
            ``preprocessor_config.json``); missing keys take the CLIP defaults.
    """

    def __init__(self, config: dict):
        kind = config.get("image_processor_type", "CLIPImageProcessor")
        if kind not in IMAGE_PROCESSORS:
            raise UnsupportedError(f"image processor {kind!r} is not implemented in NumPy")
        cfg = {**CLIP_DEFAULTS, **config}
        if cfg.get("do_pad"):
            raise UnsupportedError("image padding (do_pad) is not implemented in NumPy")
        size = cfg["size"] if isinstance(cfg["size"], dict) else {"shortest_edge": cfg["size"]}
        if cfg["do_resize"] and not (set(size) == {"shortest_edge"} or set(size) == {"height", "width"}):
            raise UnsupportedError(f"resize size {size} is not implemented (shortest_edge, or height and width)")
        crop = cfg["crop_size"] if isinstance(cfg["crop_size"], dict) else {"height": cfg["crop_size"], "width": cfg["crop_size"]}
        self.cfg, self.size, self.crop = cfg, size, (int(crop["height"]), int(crop["width"]))
        self.mean = np.asarray(cfg["image_mean"], F32)
        self.std = np.asarray(cfg["image_std"], F32)

    def output_size(self) -> tuple[int, int] | None:
        """``(H, W)`` of every output when it does not depend on the input (cropped or fixed size)."""
        if self.cfg["do_center_crop"]:
            return self.crop
        if self.cfg["do_resize"] and "height" in self.size:
            return int(self.size["height"]), int(self.size["width"])
        return None

    def resized_size(self, height: int, width: int) -> tuple[int, int]:
        """transformers' ``get_resize_output_image_size`` (``default_to_square=False``)."""
        if "height" in self.size:
            return int(self.size["height"]), int(self.size["width"])
        target = int(self.size["shortest_edge"])
        short, long = (width, height) if width <= height else (height, width)
        new_long = int(target * long / short)
        return (new_long, target) if width <= height else (target, new_long)

    def __call__(self, image: Image.Image) -> np.ndarray:
        cfg = self.cfg
        if cfg["do_convert_rgb"]:
            if "A" in image.getbands() or image.info.get("transparency") is not None:  # alpha onto white, as transformers does
                rgba = image.convert("RGBA")
                image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")
            else:
                image = image.convert("RGB")
        if cfg["do_resize"]:
            height, width = self.resized_size(image.height, image.width)
            image = image.resize((width, height), resample=cfg["resample"])
        pixels = np.asarray(image)
        if pixels.ndim == 2:
            pixels = pixels[..., None]
        pixels = np.moveaxis(pixels, -1, 0)  # (C, H, W)
        if cfg["do_center_crop"]:
            pixels = center_crop(pixels, *self.crop)
        if cfg["do_rescale"]:
            pixels = (pixels.astype(np.float64) * cfg["rescale_factor"]).astype(F32)
        if cfg["do_normalize"]:
            pixels = pixels if np.issubdtype(pixels.dtype, np.floating) else pixels.astype(F32)
            pixels = ((pixels.T - self.mean) / self.std).T
        return np.ascontiguousarray(pixels, dtype=F32)


def center_crop(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """transformers' ``center_crop`` of a ``(C, H, W)`` array (zero-padded when it is smaller)."""
    h, w = image.shape[-2:]
    top, left = (h - height) // 2, (w - width) // 2
    if top >= 0 and left >= 0:
        return image[..., top : top + height, left : left + width]
    new_h, new_w = max(height, h), max(width, w)
    padded = np.zeros((*image.shape[:-2], new_h, new_w), image.dtype)
    top_pad, left_pad = -(-(new_h - h) // 2), -(-(new_w - w) // 2)
    padded[..., top_pad : top_pad + h, left_pad : left_pad + w] = image
    top, left = top + top_pad, left + left_pad
    return padded[..., max(0, top) : min(new_h, top + height), max(0, left) : min(new_w, left + width)]


# -- text --------------------------------------------------------------------------------------


def compile_template(source: str):
    """A jinja2 template in transformers' sandbox: ``trim_blocks``, ``lstrip_blocks``, loop
    controls, ``{% generation %}`` blocks, ``tojson``, ``raise_exception`` and ``strftime_now``."""
    from datetime import datetime

    import jinja2
    from jinja2.ext import Extension, loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class GenerationBlock(Extension):  # renders its body (transformers uses it to track assistant spans)
        tags = {"generation"}

        def parse(self, parser):
            next(parser.stream)
            return parser.parse_statements(("name:endgeneration",), drop_needle=True)

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[GenerationBlock, loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    try:
        return env.from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        raise UnsupportedError(f"the chat template does not compile ({exc.message})") from exc


def find_template(directory: Path, processor: dict, tokenizer: dict) -> str:
    """The processor's chat template, as transformers' ``AutoProcessor`` finds it."""
    if (directory / "chat_template.jinja").is_file():
        return (directory / "chat_template.jinja").read_text()
    for source in (_json(directory / "chat_template.json"), processor, tokenizer):
        template = source.get("chat_template")
        if isinstance(template, str):
            return template
        if template is not None:
            raise UnsupportedError("named chat templates (a list) are not implemented in NumPy")
    raise UnsupportedError(f"{directory} has no chat template")


class TextSide:
    """Chat template, tokenizer and image-token expansion of a LLaVA processor directory."""

    def __init__(self, directory: Path):
        from tokenizers import Tokenizer

        tok_cfg = _json(directory / "tokenizer_config.json")
        proc = _json(directory / "processor_config.json")
        if proc.get("processor_class", tok_cfg.get("processor_class", "LlavaProcessor")) != "LlavaProcessor":
            raise UnsupportedError(f"processor {proc.get('processor_class')!r} is not LlavaProcessor")
        if tok_cfg.get("tokenizer_class", "TokenizersBackend") not in TOKENIZER_CLASSES:
            raise UnsupportedError(f"tokenizer class {tok_cfg.get('tokenizer_class')!r} is not a plain tokenizer.json tokenizer")
        if not (directory / "tokenizer.json").is_file():
            raise UnsupportedError(f"{directory} has no tokenizer.json")
        try:
            self.tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        except Exception as exc:  # tokenizers raises a bare Exception for a file it cannot parse
            raise UnsupportedError(f"tokenizer.json cannot be read by tokenizers ({str(exc)[:80]})") from exc
        model_type = json.loads(self.tokenizer.to_str())["model"]["type"]
        if tok_cfg.get("clean_up_tokenization_spaces") and model_type != "BPE":
            raise UnsupportedError("clean_up_tokenization_spaces is not implemented in NumPy")
        self.special = {k: _token(v) for k, v in tok_cfg.items() if k.endswith("_token") and isinstance(_token(v), str)}
        self.template = compile_template(find_template(directory, proc, tok_cfg))
        image_cfg = proc.get("image_processor") or _json(directory / "preprocessor_config.json")
        self.images = ImagePreprocessor(image_cfg)
        self.image_token = proc.get("image_token") or tok_cfg.get("image_token") or "<image>"
        self.image_token_id = self.tokenizer.token_to_id(self.image_token)
        self.patch_size = proc.get("patch_size")
        self.extra_tokens = int(proc.get("num_additional_image_tokens") or 0)
        self.strategy = proc.get("vision_feature_select_strategy")
        pad = self.special.get("pad_token") or self.special.get("eos_token")
        self.pad_id = None if pad is None else self.tokenizer.token_to_id(pad)
        if self.image_token_id is None or self.patch_size is None or self.pad_id is None:
            raise UnsupportedError("the processor config lacks an image token, patch size or pad token")

    def tokens_per_image(self, height: int, width: int) -> int:
        """transformers' ``LlavaProcessor.replace_image_token`` count for ``(H, W)`` pixels."""
        n = (height // self.patch_size) * (width // self.patch_size) + self.extra_tokens
        return n - 1 if self.strategy == "default" else n

    def render(self, conversation: Sequence[Message], *, add_generation_prompt: bool = True) -> str:
        messages = [
            {"role": m.role, "content": [{"type": "text", "text": p} if isinstance(p, str) else {"type": "image"} for p in m.parts]}
            for m in conversation
        ]
        return self.template.render(
            messages=messages, tools=None, documents=None, add_generation_prompt=add_generation_prompt, **self.special
        )

    def encode(self, text: str, image_sizes: list[tuple[int, int]]) -> list[int]:
        """Token ids of a rendered prompt, each image token expanded to its image's token count."""
        pieces = text.split(self.image_token)
        if len(pieces) - 1 != len(image_sizes):
            raise UserError(f"the chat template placed {len(pieces) - 1} image tokens for {len(image_sizes)} images")
        expanded = pieces[0] + "".join(
            self.image_token * self.tokens_per_image(*s) + p for s, p in zip(image_sizes, pieces[1:], strict=True)
        )
        return self.tokenizer.encode(expanded, add_special_tokens=False).ids

    def decode(self, rows: list[list[int]]) -> list[str]:
        return [text.strip() for text in self.tokenizer.decode_batch(rows, skip_special_tokens=True)]


def eos_ids(directory: Path, config: dict) -> tuple[set[int], dict]:
    """End-of-sequence ids (``generation_config.json``, else the model config) and the generation
    config; a setting that changes decoding beyond greedy/temperature and suppressed tokens raises."""
    generation = _json(directory / "generation_config.json")
    for key, value in generation.items():
        if key not in NEUTRAL_GENERATION or (NEUTRAL_GENERATION[key] is not None and value not in (None, NEUTRAL_GENERATION[key])):
            raise UnsupportedError(f"generation_config.json sets {key}={value!r}, which the NumPy path does not implement")
    eos = generation.get("eos_token_id", (config.get("text_config") or {}).get("eos_token_id", config.get("eos_token_id")))
    return set(eos if isinstance(eos, list) else [] if eos is None else [eos]), generation


# -- the chat model ----------------------------------------------------------------------------


class NumpyLlavaChat:
    """A LLaVA (CLIP + Llama) directory behind :class:`~vlmkit.models.chat.ChatModel`, in NumPy.

    Args:
        network: the forward passes.
        text: template, tokenizer and image preprocessing.
        eos: end-of-sequence token ids.
        name, fingerprint: as in the protocol.
        batch_size: conversations per forward pass (the HF backend's grouping, so padded batches
            are the same).
    """

    capabilities = frozenset({"images", "multi_image", "score"})
    backend = "numpy"
    #: up to this many weights, BLAS runs on one thread: for matrices this small, threads cost
    #: more in hand-offs than they save (embedded-chat's decoding: 0.15 s on one thread, 1.6 s on
    #: two on a loaded 2-core machine; ``benchmarks/chat_startup.py``)
    single_thread_below = 50_000_000

    def __init__(self, network: LlavaNumpy, text: TextSide, eos: set[int], *, name: str, fingerprint: str, batch_size: int = 8):
        self.network, self.text, self.eos = network, text, eos
        self.name, self.fingerprint, self.batch_size = name, fingerprint, batch_size
        self.suppress: list[int] = []  # generation_config's suppress_tokens (never generated)
        self.begin_suppress: list[int] = []  # ... and begin_suppress_tokens (not generated first)

    @classmethod
    def from_directory(cls, directory: Path, *, name: str, fingerprint: str, dtype: str = "auto") -> NumpyLlavaChat:
        """Load a LLaVA directory; :class:`UnsupportedError` when any part is outside this path."""
        if dtype not in ("auto", "float32"):
            raise UnsupportedError(f"dtype {dtype} (the NumPy path computes in float32)")
        directory = Path(directory)
        config = _json(directory / "config.json")
        network = LlavaNumpy(parse_config(config), read_weights(directory))
        text = TextSide(directory)
        if text.image_token_id != network.spec.image_token_id:
            raise UnsupportedError("the tokenizer's image token is not the config's image_token_index")
        size = text.images.output_size()
        if size is None or text.tokens_per_image(*size) != network.spec.image_tokens or size != (network.spec.vision.image_size,) * 2:
            raise UnsupportedError("the processor's image size or token count does not match the vision tower")
        eos, generation = eos_ids(directory, config)
        model = cls(network, text, eos, name=name, fingerprint=fingerprint)
        model.suppress = list(generation.get("suppress_tokens") or [])
        model.begin_suppress = list(generation.get("begin_suppress_tokens") or [])
        return model

    def render(self, conversation: Sequence[Message], *, continuation: str | None = None, add_generation_prompt: bool = True) -> str:
        """The prompt text, as :meth:`HFChatModel.render <vlmkit.models.chat_hf.HFChatModel.render>`."""
        return self.text.render(conversation, add_generation_prompt=add_generation_prompt) + (continuation or "")

    def _inputs(self, texts: list[str], images: list[list]) -> tuple[list[list[int]], np.ndarray | None]:
        """Token ids per text and the pixels ``(n_images, 3, H, W)`` of all images in order."""
        pixels = [self.text.images(open_image(image)) for group in images for image in group]
        sizes = iter([p.shape[1:] for p in pixels])
        ids = [self.text.encode(text, [next(sizes) for _ in group]) for text, group in zip(texts, images, strict=True)]
        return ids, (np.stack(pixels) if pixels else None)

    def _features(self, pixels: np.ndarray | None) -> np.ndarray | None:
        return None if pixels is None else self.network.image_features(pixels)

    def _blas_threads(self):
        """A context that keeps BLAS on one thread for a small network (no-op for a large one or
        without ``threadpoolctl``)."""
        from contextlib import nullcontext

        if self.network.n_parameters >= self.single_thread_below:
            return nullcontext()
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            return nullcontext()
        return threadpool_limits(1, user_api="blas")

    # -- the protocol ------------------------------------------------------------------------
    def generate(
        self, conversations: Sequence[Conversation], *, max_new_tokens: int = 64, temperature: float = 0.0, seed: int = 0
    ) -> list[str]:
        conversations = check_conversations(conversations)
        check_images_allowed(self, conversations)
        check_generation(max_new_tokens, temperature)
        answers: list[str | None] = [None] * len(conversations)
        groups: dict[bool, list[int]] = {}  # with and without images apart, as the HF backend batches them
        for index, conversation in enumerate(conversations):
            groups.setdefault(bool(conversation_images(conversation)), []).append(index)
        rng = np.random.default_rng(seed)
        with self._blas_threads():
            self._generate_groups(conversations, groups, answers, max_new_tokens, temperature, rng)
        return answers  # type: ignore[return-value]

    def _generate_groups(self, conversations, groups, answers, max_new_tokens, temperature, rng) -> None:
        for indices in groups.values():
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start : start + self.batch_size]
                texts = [self.render(conversations[i]) for i in chunk]
                ids, pixels = self._inputs(texts, [conversation_images(conversations[i]) for i in chunk])
                for i, answer in zip(chunk, self._generate_batch(ids, pixels, max_new_tokens, temperature, rng), strict=True):
                    answers[i] = answer

    def _generate_batch(self, prompts: list[list[int]], pixels, max_new_tokens: int, temperature: float, rng) -> list[str]:
        """Left-padded batched decoding with a key/value cache; a finished row continues with
        padding, as transformers' ``generate`` does."""
        batch, width = len(prompts), max(len(p) for p in prompts)
        ids = np.full((batch, width), self.text.pad_id, np.int64)
        mask = np.zeros((batch, width + max_new_tokens), bool)
        for row, prompt in enumerate(prompts):
            ids[row, width - len(prompt) :] = prompt
            mask[row, width - len(prompt) : width] = True
        positions = np.maximum(np.cumsum(mask[:, :width], 1) - 1, 0) * mask[:, :width]
        cache = self.network.new_cache(batch, width + max_new_tokens)
        logits = self.network.forward(self.network.embed(ids, self._features(pixels)), positions, mask, cache, 0, last=True)[:, -1]
        finished = np.zeros(batch, bool)
        eos = np.array(sorted(self.eos), np.int64)
        new: list[np.ndarray] = []
        for step in range(max_new_tokens):
            logits[:, self.suppress + (self.begin_suppress if step == 0 else [])] = -np.inf
            token = self._pick(logits, temperature, rng)
            token = np.where(finished, self.text.pad_id, token)
            new.append(token)
            finished |= np.isin(token, eos)
            if finished.all() or step == max_new_tokens - 1:
                break
            mask[:, width + step] = True
            positions = positions[:, -1:] + 1
            x = self.network.embed(token[:, None])
            logits = self.network.forward(x, positions, mask, cache, width + step, last=True)[:, -1]
        return self.text.decode(np.stack(new, 1).tolist())

    @staticmethod
    def _pick(logits: np.ndarray, temperature: float, rng: np.random.Generator) -> np.ndarray:
        if temperature <= 0:
            return logits.argmax(-1)
        probs = softmax(logits.astype(np.float64) / temperature)
        draws = rng.random((len(probs), 1))
        return np.minimum((probs.cumsum(-1) < draws).sum(-1), probs.shape[-1] - 1)

    def score(self, conversation: Conversation, options: Sequence[str]) -> list[float]:
        require(self, "score")
        (conversation,) = check_conversations([conversation])
        check_images_allowed(self, [conversation])
        if not options or any(not option for option in options):
            raise UserError("score needs one or more non-empty options")
        (prompt,), pixels = self._inputs([self.render(conversation)], [conversation_images(conversation)])
        sizes = [] if pixels is None else [p.shape[1:] for p in pixels]
        scores = []
        with self._blas_threads():
            features = self._features(pixels)
            for start in range(0, len(options), self.batch_size):
                chunk = list(options[start : start + self.batch_size])
                rows = [self.text.encode(self.render(conversation, continuation=option), sizes) for option in chunk]
                scores += self._score_rows(prompt, rows, features, chunk)
        return scores

    def _score_rows(self, prompt: list[int], rows: list[list[int]], features, options: list[str]) -> list[float]:
        """Right-padded forward over prompt + option rows; log-probabilities of each option's tokens."""
        width = max(len(r) for r in rows)
        ids = np.full((len(rows), width), self.text.pad_id, np.int64)
        mask = np.zeros((len(rows), width), bool)
        for row, tokens in enumerate(rows):
            ids[row, : len(tokens)], mask[row, : len(tokens)] = tokens, True
        batch_features = None if features is None else np.concatenate([features] * len(rows))
        positions = np.broadcast_to(np.arange(width), ids.shape)
        cache = self.network.new_cache(len(rows), width)
        logprobs = log_softmax(self.network.forward(self.network.embed(ids, batch_features), positions, mask, cache, 0))
        scores = []
        for row, tokens in enumerate(rows):
            start = _common_prefix(prompt, tokens)
            if start >= len(tokens):
                raise UnsupportedError(f"{self.name}: option {options[row]!r} adds no token after the prompt")
            targets = np.asarray(tokens[start:])
            scores.append(float(logprobs[row, np.arange(start - 1, len(tokens) - 1), targets].sum()))
        return scores


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    return next((i for i in range(n) if a[i] != b[i]), n)


def load(directory: str | Path, *, name: str, fingerprint: str, dtype: str = "auto") -> NumpyLlavaChat:
    """The registry's entry: :meth:`NumpyLlavaChat.from_directory`."""
    return NumpyLlavaChat.from_directory(Path(directory), name=name, fingerprint=fingerprint, dtype=dtype)
