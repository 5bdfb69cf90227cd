"""The model card (``README.md``) written beside an exported ``embedded-chat`` directory."""

from __future__ import annotations

from dataclasses import asdict


def card(cfg, metrics: dict | None = None) -> str:
    """Markdown: architecture, data, training settings, prompt format and measured accuracy."""
    tokens = cfg.image_tokens()
    lines = [
        "---", "library_name: transformers", "pipeline_tag: image-text-to-text", "tags: [llava, vlmkit, shapes-world]", "---", "",
        "# embedded-chat", "",
        "A tiny LLaVA (`LlavaForConditionalGeneration`) trained by vlmkit on procedurally generated shapes-world",
        "conversations. It is a test instrument for the toolkit's LMM methods, not a general model: it knows",
        "only the shapes world's objects and its small word-level language.", "",
        "## Architecture", "",
        "- Vision: the frozen CLIP vision tower of vlmkit's `embedded` (6 layers, width 128, 12 px patches, 8 x 8 grid at 96 px)"
        + ("; its own view" if cfg.grid == 8 else f", its position table average-pooled to {cfg.grid} x {cfg.grid}; " + (
            f"images resized ({cfg.resample}) to {12 * cfg.grid} px"
            if cfg.tower_mode == "resize"
            else "patch kernel tiled over 96 px images"
        )) + f": {tokens} tokens per image (CLS + patches, `vision_feature_select_strategy=\"full\"`, last layer).",
        f"- Projector: Linear-GELU-Linear to width {cfg.hidden}.",
        f"- Language model: Llama, {cfg.layers} layers, width {cfg.hidden}, {cfg.heads} heads, MLP {cfg.mlp}, tied embeddings,",
        "  trained from scratch; word-level tokenizer (lower-cased, whitespace and punctuation split).", "",
        "## Prompt format", "",
        "`<|user|> <image> what color is the shape ? <|end|>` then `<|assistant|>`; the processor's chat template",
        "writes this from `{\"type\": \"image\"}` / `{\"type\": \"text\"}` parts. In-context labelling: labels right after",
        "their image, `<image> dax <image> wug <image> fep <image> blick <image> what is this ?`.", "",
        "## Training", "",
        f"Shapes-world scenes of world seed 0 ({cfg.pool} single-object scenes, {cfg.count_pool} counting scenes); tasks: attribute",
        "questions, naming, yes/no, lettered multiple choice, counting, follow-up turns and k-way one-shot labelling",
        "with nonce-word labels (a held-out pool of nonce words is never used in training), plus a text-only scaffold",
        "batch every step (yes/no and lettered choice on a described scene, repeating key-label pairs, text induction),",
        "in curriculum stages (`CURRICULUM`). Besides the next-token loss on replies, a lens loss supervises, at layer",
        f"{cfg.lens_layer} through the tied output matrix, the attribute word each reply is decided by (for yes/no and",
        "lettered choice one it does not say) and each option's letter at its word."
        + (f" A route loss supervises the attention of in-context labelling: head 0 of layer {cfg.gather_layer} gathers"
           " each labelled and each queried image's first token, head 0 of the last layer attends to the label to copy,"
           " and that head's own output must name it." if getattr(cfg, "route_weight", 0) else ""),
        "Command: `vlmkit world train-chat --out DIR` (settings below).", "",
        "```json", __import__("json").dumps(asdict(cfg), indent=1), "```", "",
    ]
    if metrics:
        lines += ["## Measured", "", metrics.get("command", ""), "", "| task | accuracy |", "|---|---|"]
        lines += [f"| {task} | {value:.3f} |" for task, value in metrics.get("tasks", {}).items()]
        lines += ["", metrics.get("notes", ""), ""]
    return "\n".join(lines) + "\n"
