"""Adapter for Hugging Face ``SiglipModel`` checkpoints.

SigLIP pools the image with an attention-pooling head (MAP) instead of a class token, so its
residual stream does not map linearly to the embedding: the weight view and hook points work,
the direct-effect decomposition does not. Texts are padded to the full context length because
the text tower pools the last position, as in the original training.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from vlmkit.models.hf_dual import HFDualEncoder, TransformersClass


class SiglipAdapter(HFDualEncoder):
    family = "siglip"
    processor_type = "SiglipImageProcessor"
    default_preprocess = "siglip-224"
    hf_class = TransformersClass("SiglipModel")
    config_class = TransformersClass("SiglipConfig")
    supports = HFDualEncoder.supports | {"sigmoid_scores"}

    def _embed_dim(self) -> int:
        return self.hf_model.config.vision_config.hidden_size

    def _image_features(self, pixels: Tensor) -> Tensor:
        return self.hf_model.vision_model(pixel_values=pixels).pooler_output

    def _text_features(self, texts: Sequence[str]) -> Tensor:
        max_length = self.hf_model.config.text_config.max_position_embeddings
        tokens = self.tokenizer(texts, padding="max_length", truncation=True, max_length=max_length, return_tensors="pt").to(self.device)
        return self.hf_model.text_model(input_ids=tokens["input_ids"]).pooler_output
