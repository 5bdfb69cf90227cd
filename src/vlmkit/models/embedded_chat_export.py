"""Writing a trained ``embedded-chat`` network as a plain Hugging Face LLaVA directory.

The directory (``config.json``, ``model.safetensors``, ``generation_config.json``, tokenizer
files, ``processor_config.json`` / ``preprocessor_config.json``, ``chat_template.jinja``) loads
with ``AutoModelForImageTextToText.from_pretrained`` and ``AutoProcessor.from_pretrained`` in
plain transformers; :func:`export` checks that the reloaded model's logits match the trained
network's before it returns.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import torch

from vlmkit.models import embedded_chat_build as build


def llava_config(cfg, vision_config: dict):
    """The ``LlavaConfig``: CLIP tower, Llama text model, strategy ``"full"``, last layer."""
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig

    return LlavaConfig(
        vision_config=CLIPVisionConfig(**vision_config), text_config=LlamaConfig(**cfg.text_config()),
        image_token_id=build.vocabulary().index(build.IMAGE_TOKEN), projector_hidden_act="gelu",
        vision_feature_select_strategy="full", vision_feature_layer=-1, image_seq_length=cfg.image_tokens(),
        tie_word_embeddings=True, multimodal_projector_bias=True,
    )


@torch.no_grad()
def to_llava(network, cfg, vision_config: dict, vision_state: dict):
    """A ``LlavaForConditionalGeneration`` holding the tower, the projector (feature
    standardisation folded into ``linear_1``) and the language model."""
    from transformers import LlavaForConditionalGeneration

    from vlmkit.models.quiet import quiet_transformers

    with quiet_transformers():
        model = LlavaForConditionalGeneration(llava_config(cfg, vision_config)).eval()
    inner = model.model
    missing, unexpected = inner.vision_tower.load_state_dict(vision_state, strict=False)
    if [k for k in missing if not k.endswith("position_ids")] or unexpected:
        raise ValueError(f"vision tower mismatch: {missing[:3]} {unexpected[:3]}")
    scale = 1 / network.feature_std
    weight = network.linear_1.weight * scale[None, :]
    inner.multi_modal_projector.linear_1.weight.copy_(weight)
    inner.multi_modal_projector.linear_1.bias.copy_(network.linear_1.bias - weight @ network.feature_mean)
    inner.multi_modal_projector.linear_2.weight.copy_(network.linear_2.weight)
    inner.multi_modal_projector.linear_2.bias.copy_(network.linear_2.bias)
    inner.language_model.load_state_dict(network.lm.model.state_dict())
    model.lm_head.weight = inner.language_model.embed_tokens.weight
    return model


def model_card(cfg, metrics: dict | None = None) -> str:
    from vlmkit.models.embedded_chat_card import card

    return card(cfg, metrics)


def export(network, cfg, vision_config: dict, vision_state: dict, processor, directory: str | Path, metrics: dict | None = None) -> Path:
    """Write the directory atomically (a temporary sibling renamed into place) and verify it."""
    from transformers import GenerationConfig

    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    model = to_llava(network, cfg, vision_config, vision_state)
    model.generation_config = GenerationConfig(
        eos_token_id=build.vocabulary().index(build.END_TOKEN), pad_token_id=0, do_sample=False, max_new_tokens=16,
    )
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        (tmp / "README.md").write_text(model_card(cfg, metrics))
        verify(network, tmp)
        tmp.chmod(0o755)  # mkdtemp makes 0700 folders; give the usual permissions
        for file in tmp.iterdir():
            file.chmod(0o644)
        if directory.exists():
            shutil.rmtree(directory)
        tmp.replace(directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


@torch.no_grad()
def verify(network, directory: Path, atol: float = 1e-3) -> None:
    """Reload ``directory`` with the Auto classes and compare logits with ``network`` on one
    rendered conversation (tower run in the HF model, precomputed path in ``network``)."""
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from vlmkit.data import world_chat as wc
    from vlmkit.models.quiet import quiet_transformers

    with quiet_transformers():
        model = AutoModelForImageTextToText.from_pretrained(directory).eval()
        processor = AutoProcessor.from_pretrained(directory)
    ref = wc.SceneRef(99, 0)
    image = Image.fromarray(wc.render_scene(ref))
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "what color is the shape ?"}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True)
    inputs = processor(text=[text], images=[image], return_tensors="pt")
    hf_logits = model(**inputs).logits
    vision = model.model.vision_tower
    feats = build.tower_features(vision, inputs["pixel_values"])[0]
    ours = network(inputs["input_ids"], feats, inputs["attention_mask"])
    gap = float((hf_logits - ours).abs().max())
    if gap > atol:
        raise RuntimeError(f"exported model disagrees with the trained network (max logit gap {gap:.2e})")
