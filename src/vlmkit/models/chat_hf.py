"""In-process Hugging Face chat models: any image-text-to-text LMM or causal text LLM.

A directory (or hub repository) is loaded with ``AutoModelForImageTextToText`` + ``AutoProcessor``
when its config has a vision part, and with ``AutoModelForCausalLM`` + ``AutoTokenizer``
otherwise; GGUF files load through transformers' GGUF support. Conversations are rendered with
the checkpoint's own chat template, batched with left padding for generation and right padding
for scoring. Family quirks stay inside transformers' processors: this file knows no family.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from vlmkit.errors import ModelNotFound, UnsupportedError, UserError
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
from vlmkit.models.families import dir_fingerprint
from vlmkit.models.quiet import quiet_transformers
from vlmkit.runs.readers import first_line, read_json, safetensors_keys

DTYPES = {"auto": "auto", "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def to_hf_messages(conversation: Conversation, *, with_images: bool) -> list[dict]:
    """Messages in the chat-template format: a content list of ``{"type": "image"}`` and
    ``{"type": "text"}`` parts for multimodal processors, a plain string for text LLMs."""
    rendered = []
    for message in conversation:
        if with_images:
            content = [{"type": "text", "text": part} if isinstance(part, str) else {"type": "image"} for part in message.parts]
        else:
            content = message.text
        rendered.append({"role": message.role, "content": content})
    return rendered


class HFChatModel:
    """A transformers model behind :class:`vlmkit.models.chat.ChatModel`.

    Args:
        model: a ``PreTrainedModel`` with ``generate``.
        processor: an ``AutoProcessor`` (multimodal) or a tokenizer (text LLM).
        name, fingerprint: as in the protocol.
        batch_size: conversations per forward pass.
    """

    def __init__(self, model, processor, *, name: str, fingerprint: str, multimodal: bool, batch_size: int = 8):
        self.model = model.eval()
        self.processor = processor
        self.tokenizer = getattr(processor, "tokenizer", processor)
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.name = name
        self.fingerprint = fingerprint
        self.multimodal = multimodal
        self.batch_size = batch_size
        self.capabilities = frozenset({"score", *(("images", "multi_image") if multimodal else ())})

    # -- loading -----------------------------------------------------------------------------
    @classmethod
    def from_directory(
        cls, directory: Path, *, name: str, fingerprint: str, device: str = "cpu", dtype: str = "auto", gguf_file: str | None = None
    ) -> HFChatModel:
        """Load a ``save_pretrained`` directory (or a directory holding ``gguf_file``); a damaged
        config or weights file is a one-line :class:`UserError` naming it."""
        if dtype not in DTYPES:
            raise UserError(f"unknown --dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
        kwargs = {"dtype": DTYPES[dtype]}
        if device == "auto":
            kwargs["device_map"] = "auto"
        multimodal = False
        if gguf_file is None:
            fix = "point --model at a complete save_pretrained checkpoint directory (vlmkit export writes one)"
            multimodal = "vision_config" in read_json(directory / "config.json", "model config", fix, dict)
            for weights in sorted(directory.glob("*.safetensors")):
                safetensors_keys(weights, "model weights", fix)
        try:
            model, processor = cls._from_pretrained(directory, gguf_file, multimodal, kwargs)
        except (OSError, ValueError, RuntimeError) as exc:  # what transformers raises for an incomplete checkpoint
            raise ModelNotFound(f"cannot load {directory}: {first_line(exc)}; check that it holds a complete checkpoint") from exc
        if device not in ("auto", "cpu"):
            model = model.to(device)
        if (
            getattr(getattr(processor, "tokenizer", processor), "chat_template", None) is None
            and getattr(processor, "chat_template", None) is None
        ):
            raise ModelNotFound(f"{directory} has no chat template; vlmkit needs an instruction-tuned checkpoint with one")
        return cls(model, processor, name=name, fingerprint=fingerprint, multimodal=multimodal)

    @staticmethod
    def _from_pretrained(directory: Path, gguf_file: str | None, multimodal: bool, kwargs: dict):
        from transformers import AutoModelForCausalLM, AutoModelForImageTextToText, AutoTokenizer

        from vlmkit.models.hf_processors import load_processor

        with quiet_transformers():
            if gguf_file is not None:
                model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=gguf_file, **kwargs)
                processor = AutoTokenizer.from_pretrained(directory, gguf_file=gguf_file)
            elif multimodal:
                model = AutoModelForImageTextToText.from_pretrained(directory, **kwargs)
                processor = load_processor(directory)  # AutoProcessor, minus a video slot without torchvision
                if not hasattr(processor, "tokenizer"):
                    raise ModelNotFound(
                        f"{directory}: the processor did not load (only a tokenizer); the checkpoint needs its processor files"
                    )
            else:
                model = AutoModelForCausalLM.from_pretrained(directory, **kwargs)
                processor = AutoTokenizer.from_pretrained(directory)
        return model, processor

    def save(self, out: Path) -> None:
        """Write a ``save_pretrained`` directory (weights as safetensors, processor, chat template)."""
        self.model.save_pretrained(out)
        self.processor.save_pretrained(out)

    # -- rendering ---------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def render(self, conversation: Sequence[Message], *, continuation: str | None = None, add_generation_prompt: bool = True) -> str:
        """The prompt text of a conversation, ending with the assistant's turn opened (and
        ``continuation`` appended when given); with ``add_generation_prompt=False``, the
        conversation as the template closes it (for training on its assistant turns)."""
        messages = to_hf_messages(conversation, with_images=self.multimodal)
        template_owner = self.processor if self.multimodal else self.tokenizer
        text = template_owner.apply_chat_template(messages, add_generation_prompt=add_generation_prompt, tokenize=False)
        return text + (continuation or "")

    def training_batch(self, conversations: Sequence[Conversation]) -> dict[str, Tensor]:
        """Right-padded inputs with ``labels`` for supervised fine-tuning: the token ids of every
        assistant turn (with the template's end-of-turn tokens), -100 elsewhere (system, user,
        image and padding positions). Each conversation must contain an assistant turn."""
        texts, images, spans = [], [], []
        for conversation in conversations:
            messages = list(conversation)
            turns = [i for i, m in enumerate(messages) if m.role == "assistant"]
            if not turns:
                raise UserError("a training conversation needs at least one assistant turn (the answer to learn)")
            texts.append(self.render(messages, add_generation_prompt=False))
            images.append(conversation_images(messages))
            spans.append([(self._length(messages[:i], True), self._length(messages[: i + 1], False)) for i in turns])
        batch = self._encode(texts, images, "right")
        labels = torch.full_like(batch["input_ids"], -100)
        for row, row_spans in enumerate(spans):
            for start, end in row_spans:
                labels[row, start:end] = batch["input_ids"][row, start:end]
        batch["labels"] = labels
        return batch

    def _length(self, messages: list[Message], add_generation_prompt: bool) -> int:
        """Token count of a rendered conversation prefix (image tokens expanded)."""
        text = self.render(messages, add_generation_prompt=add_generation_prompt)
        return int(self._encode([text], [conversation_images(messages)], "right")["input_ids"].shape[1])

    def _encode(self, texts: list[str], images: list[list], padding_side: str) -> dict[str, Tensor]:
        self.tokenizer.padding_side = padding_side
        if not self.multimodal:
            batch = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        elif any(images):
            pil = [[open_image(image) for image in group] for group in images]
            batch = self.processor(text=texts, images=pil, return_tensors="pt", padding=True, add_special_tokens=False)
        else:
            try:
                batch = self.processor(text=texts, return_tensors="pt", padding=True, add_special_tokens=False)
            except ValueError:  # some processors refuse text without images; text alone is the tokenizer's
                batch = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        batch = {k: v for k, v in batch.items() if k != "labels"}
        return {k: v.to(self.device) if isinstance(v, Tensor) else v for k, v in batch.items()}

    # -- the protocol ------------------------------------------------------------------------
    def generate(
        self, conversations: Sequence[Conversation], *, max_new_tokens: int = 64, temperature: float = 0.0, seed: int = 0
    ) -> list[str]:
        conversations = check_conversations(conversations)
        check_images_allowed(self, conversations)
        check_generation(max_new_tokens, temperature)
        answers: list[str | None] = [None] * len(conversations)
        # conversations with and without images go in separate batches: processors expect one or the other
        groups: dict[bool, list[int]] = {}
        for index, conversation in enumerate(conversations):
            groups.setdefault(bool(conversation_images(conversation)), []).append(index)
        for indices in groups.values():
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start : start + self.batch_size]
                texts = [self.render(conversations[i]) for i in chunk]
                images = [conversation_images(conversations[i]) for i in chunk]
                for i, answer in zip(chunk, self._generate_batch(texts, images, max_new_tokens, temperature, seed), strict=True):
                    answers[i] = answer
        return answers  # type: ignore[return-value]

    @torch.inference_mode()
    def _generate_batch(self, texts, images, max_new_tokens: int, temperature: float, seed: int) -> list[str]:
        batch = self._encode(texts, images, "left")
        sampling = {"do_sample": True, "temperature": temperature, "top_k": 0} if temperature > 0 else {"do_sample": False}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            output = self.model.generate(**batch, max_new_tokens=max_new_tokens, pad_token_id=self.tokenizer.pad_token_id, **sampling)
        new_tokens = output[:, batch["input_ids"].shape[1] :]
        return [text.strip() for text in self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]

    @torch.inference_mode()
    def score(self, conversation: Conversation, options: Sequence[str]) -> list[float]:
        require(self, "score")
        (conversation,) = check_conversations([conversation])
        check_images_allowed(self, [conversation])
        if not options or any(not option for option in options):
            raise UserError("score needs one or more non-empty options")
        images = conversation_images(conversation)
        prompt = self._encode([self.render(conversation)], [images], "right")["input_ids"][0]
        scores = []
        for start in range(0, len(options), self.batch_size):
            chunk = list(options[start : start + self.batch_size])
            texts = [self.render(conversation, continuation=option) for option in chunk]
            batch = self._encode(texts, [images] * len(chunk), "right")
            logprobs = torch.log_softmax(self.model(**batch).logits.float(), dim=-1)
            for row, ids in enumerate(batch["input_ids"]):
                length = int(batch["attention_mask"][row].sum())
                start_at = _common_prefix(prompt, ids[:length])
                if start_at >= length:
                    raise UnsupportedError(f"{self.name}: option {chunk[row]!r} adds no token after the prompt")
                targets = ids[start_at:length]
                scores.append(float(logprobs[row, start_at - 1 : length - 1].gather(1, targets[:, None]).sum()))
        return scores


def _common_prefix(a: Tensor, b: Tensor) -> int:
    n = min(len(a), len(b))
    diff = (a[:n] != b[:n]).nonzero()
    return int(diff[0]) if len(diff) else n


def load(source: str, device: str = "cpu", dtype: str = "auto") -> HFChatModel:
    """``hf:<repo-or-dir>`` or a directory: a local directory, a ``.gguf`` file, or a hub id
    (from the local cache, else downloaded)."""
    path = Path(source).expanduser()
    if path.suffix == ".gguf" and path.is_file():
        return HFChatModel.from_directory(
            path.parent, name=source, fingerprint=dir_fingerprint(path.parent), device=device, dtype=dtype, gguf_file=path.name
        )
    if path.is_dir():
        ggufs = sorted(path.glob("*.gguf"))
        if not (path / "config.json").is_file():
            if ggufs:
                return HFChatModel.from_directory(
                    path, name=source, fingerprint=dir_fingerprint(path), device=device, dtype=dtype, gguf_file=ggufs[0].name
                )
            raise ModelNotFound(f"{path} has no config.json or .gguf file; point --model at a save_pretrained directory")
        return HFChatModel.from_directory(path, name=source, fingerprint=dir_fingerprint(path), device=device, dtype=dtype)
    if path.exists():
        raise ModelNotFound(
            f"{path} is not a directory or .gguf file; --model takes a checkpoint directory, hf:<org>/<name> or openai:<model>"
        )
    from vlmkit.models.hf_loading import hub_snapshot

    directory = hub_snapshot(source)
    return HFChatModel.from_directory(directory, name=f"hf:{source}", fingerprint=dir_fingerprint(directory), device=device, dtype=dtype)
