"""Adapter for Hugging Face ``CLIPModel`` checkpoints (OpenAI CLIP, OpenCLIP conversions, edits)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from vlmkit.models.hf_dual import HFDualEncoder, TransformersClass


class CLIPAdapter(HFDualEncoder):
    """CLIP: class-token pooling, ``ln_post`` and a linear visual projection.

    Supports the exact direct-effect decomposition (:mod:`vlmkit.interpret.decompose`).
    """

    family = "clip"
    processor_type = "CLIPImageProcessor"
    default_preprocess = "clip-224"
    hf_class = TransformersClass("CLIPModel")
    config_class = TransformersClass("CLIPConfig")
    supports = HFDualEncoder.supports | {"decomposition"}

    def _embed_dim(self) -> int:
        return self.hf_model.config.projection_dim

    def _image_features(self, pixels: Tensor) -> Tensor:
        pooled = self.hf_model.vision_model(pixel_values=pixels).pooler_output
        return self.hf_model.visual_projection(pooled)

    def _text_features(self, texts: Sequence[str]) -> Tensor:
        max_length = self.hf_model.config.text_config.max_position_embeddings
        tokens = self.tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt").to(self.device)
        pooled = self.hf_model.text_model(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"]).pooler_output
        return self.hf_model.text_projection(pooled)
