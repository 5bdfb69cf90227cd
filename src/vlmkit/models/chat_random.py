"""``random:<arch>-tiny[@seed]``: real chat architectures with random weights, no download.

Each architecture is a real transformers class at a tiny width (hidden size 32, 1-2 layers): a
Llama text LLM and every image-text-to-text family that transformers can build without
torchvision (LLaVA-1.5/NeXT/NeXT-Video/OneVision, Qwen2-VL/2.5-VL/3-VL, Idefics2/3, SmolVLM,
Gemma 3, InternVL, PaliGemma, Aya Vision, GLM-4.1V, Llama 3.2 Vision, DeepSeek-VL). Each gets a
word-level tokenizer over a small fixed vocabulary holding the family's special tokens, the
family's PIL image processor and processor (video-slot processors through
:func:`vlmkit.models.hf_processors.without_video`) and a shared chat template in which an image
is the family's placeholder. Family facts are data in ``specs/chat_architectures.json``; this
file holds only the generic builders. The same name and seed always give the same weights; the
models never generate special tokens, so their answers are words. Built directories are cached
under a hash of their recipe.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from importlib import resources
from pathlib import Path

import torch

from vlmkit.errors import ModelNotFound

#: a chat template every tiny model shares: role tags, images as the family's placeholder text
TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|> "
    "{% if message['content'] is string %}{{ message['content'] }} "
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}__IMAGE__ {% else %}{{ part['text'] }} {% endif %}"
    "{% endfor %}{% endif %}<|end|> {% endfor %}"
    "{% if add_generation_prompt %}<|assistant|> {% endif %}"
)

#: the words of the tiny vocabulary (enough for test prompts and the shapes world)
WORDS = (
    "a an the is are what in this image picture photo of and or yes no which one two three four five "
    "color colour shape size texture position background object objects there how many answer with letter "
    "option options describe name it small large left right top bottom center red orange yellow green cyan "
    "blue purple pink white black gray beige navy maroon circle square triangle star hexagon cross solid "
    "striped dotted checkered something that kind label dax wug blick fep zup ? . , : ( ) A B C D E"
).split()
SPECIALS = ["[PAD]", "[UNK]", "<s>", "</s>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]


@cache
def architectures() -> dict[str, dict]:
    text = resources.files("vlmkit.models").joinpath("specs/chat_architectures.json").read_text()
    return {k: v for k, v in json.loads(text).items() if not k.startswith("_")}


def parse(spec: str) -> tuple[str, int]:
    """``"llava-tiny@3"`` -> ``("llava-tiny", 3)``."""
    arch, _, seed = spec.partition("@")
    if arch not in architectures():
        raise ModelNotFound(f"unknown random chat architecture {arch!r}; choose one of: {', '.join(architectures())}")
    if seed and not seed.isdigit():
        raise ModelNotFound(f"bad seed {seed!r} in random:{spec}; write random:{arch}@<integer>")
    return arch, int(seed or 0)


def word_tokenizer(named: dict[str, str] | None = None, extra: list[str] | None = None):
    """A ``PreTrainedTokenizerFast`` over :data:`WORDS` (whitespace and punctuation split).

    Args:
        named: special tokens the processor reads as tokenizer attributes
            (``{"image_token": "<image>"}`` -> ``tokenizer.image_token``, ``.image_token_id``).
        extra: further special tokens, in the vocabulary without an attribute.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    named = named or {}
    specials = list(dict.fromkeys(SPECIALS + list(named.values()) + list(extra or [])))
    vocab = {token: i for i, token in enumerate(specials + [w for w in dict.fromkeys(WORDS) if w not in specials])}
    core = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    core.decoder = decoders.WordPiece(prefix="##", cleanup=True)
    core.add_special_tokens(specials)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<s>",
        eos_token="<|end|>",
        pad_token="[PAD]",
        unk_token="[UNK]",
        extra_special_tokens=dict(named),
    )
    tokenizer.chat_template = TEMPLATE
    return tokenizer


def _text_config(spec: dict, tokenizer) -> dict:
    text = dict(spec["text_config"])
    text.update(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return text


def _resolve(value, tokenizer):
    """Spec values that depend on the built tokenizer: ``"$vocab_size"`` and ``"$id:<token>"``."""
    if isinstance(value, dict):
        return {k: _resolve(v, tokenizer) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, tokenizer) for v in value]
    if value == "$vocab_size":
        return len(tokenizer)
    if isinstance(value, str) and value.startswith("$id:"):
        token_id = tokenizer.convert_tokens_to_ids(value[4:])
        if token_id == tokenizer.unk_token_id:
            raise ValueError(f"{value[4:]!r} is not in the tiny vocabulary; list it under tokens or extra_tokens")
        return token_id
    return value


def build_llama(spec: dict):
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = word_tokenizer()
    return LlamaForCausalLM(LlamaConfig(**_text_config(spec, tokenizer))), tokenizer


def build_lmm(spec: dict):
    """Any image-text-to-text family from its spec: tokenizer with the family's special tokens,
    the family's image processor (PIL class) and processor (minus its video slot, see
    :mod:`vlmkit.models.hf_processors`), then the config, whose vocabulary size is read after
    the processor is built (some processors add tokens)."""
    import transformers

    from vlmkit.models.hf_processors import without_video

    tokenizer = word_tokenizer(spec.get("tokens"), spec.get("extra_tokens"))
    template = TEMPLATE.replace("__IMAGE__", spec["image_placeholder"])
    tokenizer.chat_template = template
    image_spec = dict(spec["image_processor"])
    image_processor = getattr(transformers, image_spec.pop("class"))(**image_spec)
    processor_class = without_video(getattr(transformers, spec["processor"]))
    processor = processor_class(
        image_processor=image_processor, tokenizer=tokenizer, chat_template=template, **spec.get("processor_kwargs", {})
    )
    config_class = getattr(transformers, spec["config"])
    kwargs = _resolve(spec.get("config_kwargs", {}), tokenizer)
    config = config_class(vision_config=dict(spec["vision_config"]), text_config=_text_config(spec, tokenizer), **kwargs)
    return getattr(transformers, spec["model"])(config), processor


BUILDERS = {"llama": build_llama, "lmm": build_lmm}


def build_directory(arch: str, seed: int, out: Path) -> Path:
    """Write ``random:<arch>@<seed>`` as a ``save_pretrained`` directory at ``out``."""
    spec = architectures()[arch]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model, processor = BUILDERS[spec["builder"]](spec)
        # weights a family zero-initialises (gates, projections) would make a random model ignore
        # images: spec "reinit" re-draws them as normal(0, std), or fills them with {"fill": value}
        for parameter_name, how in spec.get("reinit", {}).items():
            parameter = model.get_parameter(parameter_name)
            if isinstance(how, dict):
                torch.nn.init.constant_(parameter, how["fill"])
            else:
                torch.nn.init.normal_(parameter, std=how)
    tokenizer = getattr(processor, "tokenizer", processor)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    # a trained model never writes image, padding or role tokens; a random one would, and they
    # decode to nothing: keep its answers to words (and the end token)
    model.generation_config.suppress_tokens = sorted(i for i in tokenizer.added_tokens_decoder if i != tokenizer.eos_token_id)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


#: bump when the builders change what they write (the spec's own changes are hashed)
BUILD_VERSION = 2


def recipe_hash(arch: str) -> str:
    """A short hash of everything that determines a built directory besides the seed."""
    payload = json.dumps({"spec": architectures()[arch], "words": WORDS, "template": TEMPLATE, "build": BUILD_VERSION}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:10]


def cached_directory(arch: str, seed: int) -> Path:
    """Where :func:`load` keeps ``random:<arch>@<seed>``: a changed recipe gets a new directory,
    so an old build is never loaded under a new recipe."""
    from vlmkit.runs.cache import default_cache_dir

    return default_cache_dir() / "random-chat" / f"{arch}@{seed}-{recipe_hash(arch)}"


def load(spec: str, device: str = "cpu", dtype: str = "auto"):
    """Build (once per cache directory) and load a tiny random chat model."""
    from vlmkit.models.chat_hf import HFChatModel

    arch, seed = parse(spec)
    directory = cached_directory(arch, seed)
    if not (directory / "config.json").is_file():
        import tempfile

        directory.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=directory.parent) as tmp:
            build_directory(arch, seed, Path(tmp) / "model")
            try:
                (Path(tmp) / "model").rename(directory)
            except OSError:  # another process built it first
                pass
    name = f"random:{arch}" + (f"@{seed}" if seed else "")
    return HFChatModel.from_directory(
        directory, name=name, fingerprint=f"random:{arch}@{seed}:{recipe_hash(arch)}", device=device, dtype=dtype
    )
