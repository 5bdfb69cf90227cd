"""Robust image loading: EXIF orientation, any PIL mode to RGB, one clear error when unreadable."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from vlmkit.errors import DatasetError
from vlmkit.models.preprocess import to_rgb

__all__ = ["IMAGE_SUFFIXES", "load_image", "to_rgb"]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})


def load_image(path: str | Path) -> Image.Image:
    """Open an image file as an upright RGB image (EXIF orientation applied).

    Raises:
        DatasetError: the file is missing or is not a readable image.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"image not found: {path}; check the path (manifest paths are relative to the manifest's folder)")
    try:
        with Image.open(path) as image:
            image.load()
            image = ImageOps.exif_transpose(image)
            return to_rgb(image)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DatasetError(
            f"cannot read image {path} ({type(exc).__name__}); replace the file or pass --skip-bad-images to skip unreadable images"
        ) from exc
