"""Our preprocessing reproduces Hugging Face's image processors (PIL backend) without torchvision."""

import numpy as np
import pytest
import torch
from PIL import Image

from vlmkit.data.images import load_image
from vlmkit.errors import DatasetError
from vlmkit.models import preprocess as pp


def _random_image(width, height, seed=0):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


@pytest.mark.parametrize("size", [(300, 200), (200, 300), (224, 224), (97, 413)])
def test_clip_matches_hf_processor(size):
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    image = _random_image(*size)
    ours = pp.preset("clip-224")(image)
    theirs = torch.as_tensor(np.asarray(CLIPImageProcessorPil()(images=image, return_tensors="np")["pixel_values"][0]))
    assert ours.shape == (3, 224, 224)
    assert (ours - theirs).abs().max() < 1e-4


def test_siglip_matches_hf_processor():
    from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil

    image = _random_image(320, 240, seed=1)
    ours = pp.preset("siglip-224")(image)
    theirs = torch.as_tensor(np.asarray(SiglipImageProcessorPil()(images=image, return_tensors="np")["pixel_values"][0]))
    assert (ours - theirs).abs().max() < 1e-4


def test_hf_config_round_trip():
    for name in ("clip-224", "siglip-224"):
        pre = pp.preset(name)
        assert pp.from_hf_config(pp.to_hf_config(pre, "X"), fallback=pp.preset("clip-64")) == pre


def test_exif_orientation_is_applied(tmp_path):
    image = Image.new("RGB", (60, 20), (255, 0, 0))
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    image.save(tmp_path / "rot.jpg", exif=exif)
    assert load_image(tmp_path / "rot.jpg").size == (20, 60)


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK", "I;16"])
def test_any_mode_becomes_rgb(tmp_path, mode):
    path = tmp_path / f"img.{'tiff' if mode in ('CMYK', 'I;16') else 'png'}"
    Image.new(mode, (10, 10)).save(path)
    assert load_image(path).mode == "RGB"


def test_transparent_pixels_become_white(tmp_path):
    Image.new("RGBA", (4, 4), (0, 0, 0, 0)).save(tmp_path / "clear.png")
    assert load_image(tmp_path / "clear.png").getpixel((0, 0)) == (255, 255, 255)


def test_unreadable_and_missing_images(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(DatasetError, match="cannot read image"):
        load_image(tmp_path / "bad.png")
    with pytest.raises(DatasetError, match="image not found"):
        load_image(tmp_path / "missing.png")
