"""Image preprocessing that matches Hugging Face image processors, without torchvision.

CLIP: resize the short side to ``size`` (bicubic), centre-crop ``crop``, scale to [0, 1],
normalise. SigLIP: resize to ``size x size``, scale, normalise. Settings come from a model
directory's ``preprocessor_config.json`` when there is one, else from the family defaults in
``specs/preprocessing.json``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

_RESAMPLE = {"nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC,
             "lanczos": Image.Resampling.LANCZOS}
# PIL's integer codes, as Hugging Face stores them in preprocessor_config.json.
_RESAMPLE_CODES = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic"}


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any PIL image (greyscale, palette, CMYK, with alpha) to RGB; transparent pixels
    are composited on white."""
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):  # 16-bit or float greyscale: scale to 8 bits
        array = np.asarray(image, dtype=np.float64)
        top = array.max() if array.size and array.max() > 255 else 255.0
        image = Image.fromarray(np.clip(array / top * 255, 0, 255).astype(np.uint8))
    return image.convert("RGB")


@dataclass(frozen=True)
class ImagePreprocessor:
    """Turns PIL images into a normalised pixel tensor.

    Attributes:
        resize: ``"shortest_edge"`` (scale the short side to ``size``, keep aspect) or ``"exact"``.
        size: target of the resize.
        crop: side of the centre crop, or ``None`` for no crop.
        resample: ``"bicubic"``, ``"bilinear"``, ``"nearest"`` or ``"lanczos"``.
        mean, std: per-channel normalisation of [0, 1] pixels.
    """

    resize: str
    size: int
    crop: int | None
    resample: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @property
    def output_size(self) -> int:
        return self.crop or self.size

    def key(self) -> str:
        """A stable description used in cache keys."""
        return json.dumps(asdict(self), sort_keys=True)

    def _resize(self, image: Image.Image) -> Image.Image:
        width, height = image.size
        if self.resize == "exact":
            target = (self.size, self.size)
        else:
            short, long = sorted((width, height))
            new_long = int(self.size * long / short)
            target = (self.size, new_long) if width <= height else (new_long, self.size)
        if target == image.size:
            return image
        return image.resize(target, resample=_RESAMPLE[self.resample])

    def _center_crop(self, image: Image.Image) -> Image.Image:
        width, height = image.size
        top = (height - self.crop) // 2
        left = (width - self.crop) // 2
        return image.crop((left, top, left + self.crop, top + self.crop))

    def __call__(self, image: Image.Image) -> Tensor:
        """One PIL image of any mode (converted to RGB) -> ``(3, S, S)`` float32 tensor."""
        image = self._resize(to_rgb(image))
        if self.crop is not None:
            image = self._center_crop(image)
        return self.normalize(np.asarray(image))

    def normalize(self, pixels: np.ndarray) -> Tensor:
        """uint8 RGB ``(..., S, S, 3)`` already at the output size -> float32 ``(..., 3, S, S)``."""
        array = pixels.astype(np.float32) / 255.0
        array = (array - np.asarray(self.mean, dtype=np.float32)) / np.asarray(self.std, dtype=np.float32)
        return torch.from_numpy(np.ascontiguousarray(np.moveaxis(array, -1, -3)))

    def batch(self, images: list[Image.Image]) -> Tensor:
        """PIL images of any mode -> ``(batch, 3, S, S)``."""
        return torch.stack([self(image) for image in images])


@cache
def _presets() -> dict:
    text = resources.files("vlmkit.models").joinpath("specs/preprocessing.json").read_text()
    return {k: v for k, v in json.loads(text).items() if not k.startswith("_")}


def preset(name: str) -> ImagePreprocessor:
    """A named preprocessing preset from ``specs/preprocessing.json`` (e.g. ``clip-224``)."""
    spec = dict(_presets()[name])
    return ImagePreprocessor(**{**spec, "mean": tuple(spec["mean"]), "std": tuple(spec["std"])})


def from_hf_config(config: dict, fallback: ImagePreprocessor) -> ImagePreprocessor:
    """Read a Hugging Face ``preprocessor_config.json`` dict; unknown fields keep ``fallback``'s values."""
    size = config.get("size", {})
    if isinstance(size, int):
        size = {"shortest_edge": size}
    if "shortest_edge" in size:
        resize, target = "shortest_edge", int(size["shortest_edge"])
    elif "height" in size:
        resize, target = "exact", int(size["height"])
    else:
        resize, target = fallback.resize, fallback.size
    crop = fallback.crop
    if "do_center_crop" in config or "crop_size" in config:
        crop_size = config.get("crop_size") or {}
        if isinstance(crop_size, int):
            crop_size = {"height": crop_size}
        crop = int(crop_size.get("height", target)) if config.get("do_center_crop", True) else None
    resample = config.get("resample", fallback.resample)
    if isinstance(resample, int):
        resample = _RESAMPLE_CODES.get(resample, fallback.resample)
    mean = tuple(config.get("image_mean", fallback.mean))
    std = tuple(config.get("image_std", fallback.std))
    return ImagePreprocessor(resize=resize, size=target, crop=crop, resample=resample, mean=mean, std=std)


def from_model_dir(directory: Path, fallback: ImagePreprocessor) -> ImagePreprocessor:
    """The preprocessing saved beside a checkpoint, or ``fallback`` when there is none."""
    path = Path(directory) / "preprocessor_config.json"
    if not path.is_file():
        return fallback
    from vlmkit.runs.readers import read_json

    config = read_json(path, "preprocessing config", "fix or delete preprocessor_config.json beside the checkpoint", dict)
    try:
        return from_hf_config(config, fallback)
    except (TypeError, ValueError, KeyError) as exc:
        from vlmkit.errors import ModelNotFound

        raise ModelNotFound(f"{path} has an unreadable field ({exc}); fix or delete it to use the family's default preprocessing") from exc


def to_hf_config(pre: ImagePreprocessor, processor_type: str) -> dict:
    """The Hugging Face ``preprocessor_config.json`` equivalent of ``pre``."""
    codes = {name: code for code, name in _RESAMPLE_CODES.items()}
    size = {"shortest_edge": pre.size} if pre.resize == "shortest_edge" else {"height": pre.size, "width": pre.size}
    config = {
        "image_processor_type": processor_type, "do_resize": True, "size": size,
        "resample": codes[pre.resample], "do_center_crop": pre.crop is not None,
        "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
        "image_mean": list(pre.mean), "image_std": list(pre.std), "do_convert_rgb": True,
    }
    if pre.crop is not None:
        config["crop_size"] = {"height": pre.crop, "width": pre.crop}
    return config
