"""``embedded-chat`` through plain transformers only: the reference the chat layer must match.

:class:`PlainLlavaChat` loads a directory with ``AutoModelForImageTextToText`` and
``AutoProcessor``, renders conversations with the directory's own chat template and decodes
greedily: nothing vlmkit-specific sits between the files and the answers, so "the exported
directory answers identically in plain transformers" is checked against this class.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from vlmkit.errors import ModelNotFound


def hf_messages(conversation) -> tuple[list[dict], list]:
    """``Message`` list -> (chat-template messages, images in order)."""
    messages, images = [], []
    for message in conversation:
        content = []
        for part in message.parts:
            if isinstance(part, str):
                content.append({"type": "text", "text": part})
            else:
                content.append({"type": "image"})
                images.append(part)
        messages.append({"role": message.role, "content": content})
    return messages, images


class PlainLlavaChat:
    """Greedy batched generation with plain transformers (left padding)."""

    capabilities = frozenset({"images", "multi_image"})

    def __init__(self, model, processor, name: str):
        self.model, self.processor, self.name, self.fingerprint = model.eval(), processor, name, name
        self.processor.tokenizer.padding_side = "left"

    @classmethod
    def load(cls, name: str, device: str = "cpu") -> PlainLlavaChat:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        from vlmkit.models.quiet import quiet_transformers

        directory = Path(name)
        if name == "embedded-chat":
            from importlib import resources

            directory = Path(str(resources.files("vlmkit.models").joinpath("weights/embedded-chat")))
        if not (directory / "config.json").is_file():
            raise ModelNotFound(f"no chat model directory at {directory}; pass a directory written by `vlmkit world train-chat`")
        with quiet_transformers():
            model = AutoModelForImageTextToText.from_pretrained(directory).to(device)
            processor = AutoProcessor.from_pretrained(directory)
        return cls(model, processor, str(name))

    @torch.no_grad()
    def generate(self, conversations: Sequence, *, max_new_tokens: int = 16, temperature: float = 0.0, seed: int = 0) -> list[str]:
        from PIL import Image

        texts, images = [], []
        for conversation in conversations:
            messages, pictures = hf_messages(conversation)
            texts.append(self.processor.apply_chat_template(messages, add_generation_prompt=True))
            images += [p if isinstance(p, Image.Image) else Image.open(p).convert("RGB") for p in pictures]
        inputs = self.processor(text=texts, images=images or None, return_tensors="pt", padding=True).to(self.model.device)
        torch.manual_seed(seed)
        output = self.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=temperature > 0, temperature=temperature or None)
        new = output[:, inputs["input_ids"].shape[1]:]
        return [t.strip() for t in self.processor.batch_decode(new, skip_special_tokens=True)]
