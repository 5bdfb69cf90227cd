"""Matryoshka TopK sparse autoencoders (Zaigrajew et al., arXiv 2502.20578), as SEM uses them
(arXiv 2603.19028, §3.1).

``z = ReLU(W_enc (x - b_pre) + b_enc)`` and ``x_hat = W_dec z + b_pre`` (no other decoder bias).
Training keeps, for each level ``k_i``, only the ``k_i`` largest pre-activations and sums
``w_i * MSE(x, x_hat_i)`` with the "reverse" weights ``(L, L-1, ..., 1)`` (the smallest ``k``
weighs most), so the first latents must reconstruct on their own. At inference only the ReLU is
applied. The inputs are *unnormalised* embeddings.

Shapes: ``x`` ``(n, d_in)``, ``z`` ``(n, latents)``; ``W_enc`` ``(latents, d_in)``, ``W_dec``
``(d_in, latents)`` (stored as ``nn.Linear`` weights, the layout of the official checkpoints).
"""

from __future__ import annotations

import json
import pickle
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict
from safetensors.torch import save_file
from torch import Tensor, nn

from vlmkit.errors import UserError
from vlmkit.runs.readers import first_line, need_dir, read_json, read_safetensors

WEIGHTINGS = ("reverse", "uniform")


class SAEFile(BaseModel):
    """``sae.json``: the SAE's shape (other keys, e.g. training provenance, are allowed)."""

    model_config = ConfigDict(extra="allow")

    d_in: int
    latents: int
    k_levels: list[int]
    weighting: str


@dataclass(frozen=True)
class SAEConfig:
    d_in: int
    latents: int
    k_levels: tuple[int, ...] = (256, 512)
    weighting: str = "reverse"

    def __post_init__(self):
        if not self.k_levels or list(self.k_levels) != sorted(set(self.k_levels)):
            raise ValueError(f"k levels must be distinct and increasing, got {self.k_levels}")
        if self.k_levels[0] < 1 or self.k_levels[-1] > self.latents:
            raise ValueError(f"k levels must lie in [1, {self.latents}], got {self.k_levels}")
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {self.weighting!r}")

    def weights(self) -> list[float]:
        n = len(self.k_levels)
        return [float(n - i) for i in range(n)] if self.weighting == "reverse" else [1.0] * n


class MatryoshkaSAE(nn.Module):
    def __init__(self, cfg: SAEConfig):
        super().__init__()
        self.cfg = cfg
        self.b_pre = nn.Parameter(torch.zeros(cfg.d_in))
        self.encoder = nn.Linear(cfg.d_in, cfg.latents)
        self.decoder = nn.Linear(cfg.latents, cfg.d_in, bias=False)
        with torch.no_grad():  # decoder starts as the encoder's transpose, unit columns
            self.decoder.weight.copy_(F.normalize(self.encoder.weight, dim=1).T)
            self.encoder.bias.zero_()

    def pre_activation(self, x: Tensor) -> Tensor:
        return self.encoder(x - self.b_pre)

    def encode(self, x: Tensor) -> Tensor:
        """Inference latents ``(n, latents)``: ReLU only, no TopK."""
        return torch.relu(self.pre_activation(x))

    def decode(self, z: Tensor) -> Tensor:
        return self.decoder(z) + self.b_pre

    def forward(self, x: Tensor) -> Tensor:
        return self.decode(self.encode(x))

    def loss(self, x: Tensor) -> Tensor:
        """The Matryoshka objective ``sum_i w_i MSE(x, decode(TopK_{k_i}(h)))``."""
        h = self.pre_activation(x)
        top = h.topk(self.cfg.k_levels[-1], dim=1)
        total = x.new_zeros(())
        for k, weight in zip(self.cfg.k_levels, self.cfg.weights(), strict=True):
            z = torch.zeros_like(h).scatter(1, top.indices[:, :k], torch.relu(top.values[:, :k]))
            total = total + weight * F.mse_loss(self.decode(z), x)
        return total

    @property
    def atoms(self) -> Tensor:
        """Decoder directions ``(latents, d_in)``, one row per latent."""
        return self.decoder.weight.T

    # ---- persistence ---------------------------------------------------------------------
    def save(self, directory: str | Path, extra: dict | None = None, half: bool = False) -> Path:
        """``sae.safetensors`` + ``sae.json`` (the config and anything in ``extra``); ``half``
        stores float16 weights (loading always returns float32)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        dtype = torch.float16 if half else torch.float32
        save_file({k: v.detach().cpu().to(dtype).contiguous() for k, v in self.state_dict().items()}, directory / "sae.safetensors")
        (directory / "sae.json").write_text(json.dumps({**asdict(self.cfg), **(extra or {})}, indent=2))
        return directory

    @classmethod
    def load(cls, path: str | Path) -> MatryoshkaSAE:
        """A vlmkit SAE directory, or an official SEM checkpoint file (see :func:`load_official`)."""
        path = Path(path).expanduser()
        fix = "pass a folder written by vlmkit sae train (sae.json + sae.safetensors) or an official SEM checkpoint"
        if path.is_file():
            try:
                return load_official(path)
            except (ValueError, KeyError, RuntimeError, OSError, EOFError, pickle.UnpicklingError) as exc:
                raise UserError(f"cannot load an SAE from {path} ({first_line(exc)}); {fix}") from exc
        need_dir(path, "SAE", fix)
        meta = read_json(path / "sae.json", "SAE config", fix, SAEFile)
        try:
            cfg = SAEConfig(meta.d_in, meta.latents, tuple(meta.k_levels), meta.weighting)
        except ValueError as exc:
            raise UserError(f"{path / 'sae.json'}: {exc}; {fix}") from exc
        state = read_safetensors(path / "sae.safetensors", "SAE weights", fix)
        sae = cls(cfg)
        expected = {k: tuple(v.shape) for k, v in sae.state_dict().items()}
        found = {k: tuple(v.shape) for k, v in state.items()}
        if found != expected:
            wrong = sorted(set(expected) ^ set(found)) or [k for k in expected if expected[k] != found[k]]
            raise UserError(f"{path / 'sae.safetensors'} does not match {path / 'sae.json'} (d_in {cfg.d_in}, {cfg.latents} latents): "
                            f"{wrong[0]} is {found.get(wrong[0])}, expected {expected.get(wrong[0])}; {fix}")
        sae.load_state_dict({k: v.float() for k, v in state.items()})
        return sae.eval()


def load_official(path: str | Path) -> MatryoshkaSAE:
    """An SAE checkpoint of the official SEM release (``mardgui/SEM`` v1.0).

    The file is a torch state dict with ``bpre`` ``(d_in,)``, ``encoder.weight``
    ``(latents, d_in)``, ``encoder.bias`` ``(latents,)`` and ``decoder.weight`` ``(d_in,
    latents)``; its name ends in ``_<d_in>_<latents>_<k1>x<k2>..._<weighting>`` (the code reads
    the last four ``_``-separated fields), e.g. ``..._512_16384_256x512_reverse.pth``.
    """
    path = Path(path)
    fields = path.stem.split("_")
    try:
        d_in, latents, levels, weighting = int(fields[-4]), int(fields[-3]), fields[-2], fields[-1]
        cfg = SAEConfig(d_in, latents, tuple(int(k) for k in levels.split("x")), weighting)
    except (IndexError, ValueError) as exc:
        raise ValueError(f"cannot read the SAE shape from {path.name}; official names end in "
                         "_<d_in>_<latents>_<k1>x<k2>_<weighting>") from exc
    state = torch.load(path, map_location="cpu", weights_only=True)
    sae = MatryoshkaSAE(cfg)
    sae.load_state_dict({"b_pre": state["bpre"], **{k: v for k, v in state.items() if k != "bpre"}})
    return sae.eval()


def find_sae(path: str | Path | None, model_name: str) -> Path | None:
    """The SAE to use with ``model_name``: ``path`` when given, else the one shipped beside a
    shipped model (the embedded ones), else ``None``. One lookup for every command."""
    if path is not None:
        return Path(path)
    from vlmkit.models import shipped_companion

    shipped = shipped_companion(model_name, "sae")
    return shipped if shipped is not None and (shipped / "sae.json").is_file() else None


def check_width(sae: MatryoshkaSAE, model, path) -> MatryoshkaSAE:
    """``sae`` when it reads ``model``'s embedding width; otherwise a :class:`UserError`."""
    if sae.cfg.d_in != model.embed_dim:
        raise UserError(f"the SAE at {path} reads {sae.cfg.d_in}-d embeddings but {model.name} gives {model.embed_dim}-d ones; "
                        "use the SAE trained for this model")
    return sae


@dataclass
class SAEQuality:
    """Reconstruction quality at inference (ReLU latents).

    fvu: ``sum ||x - x_hat||^2 / sum ||x - mean(x)||^2``; cosine: mean ``cos(x, x_hat)``;
    l0: mean number of active latents; dead: latents never active on these inputs.
    """

    fvu: float
    cosine: float
    l0: float
    dead: int
    sparsity: float  # fraction of latents inactive per input, on average


@torch.no_grad()
def quality(sae: MatryoshkaSAE, batches) -> SAEQuality:
    """Accumulate :class:`SAEQuality` over an iterable of ``(n, d_in)`` batches."""
    err = cos_sum = active_sum = 0.0
    n = 0
    total = torch.zeros(sae.cfg.d_in, dtype=torch.float64)
    total_sq = 0.0
    ever = torch.zeros(sae.cfg.latents, dtype=torch.bool)
    for x in batches:
        x = x.float()
        z = sae.encode(x)
        x_hat = sae.decode(z)
        err += float(((x - x_hat) ** 2).sum())
        cos_sum += float(F.cosine_similarity(x, x_hat, dim=-1).sum())
        active = z > 0
        active_sum += float(active.sum())
        ever |= active.any(0)
        total += x.double().sum(0)
        total_sq += float((x.double() ** 2).sum())
        n += x.shape[0]
    var_sum = total_sq - float((total**2).sum()) / n  # sum ||x - mean||^2
    l0 = active_sum / n
    return SAEQuality(fvu=err / max(var_sum, 1e-12), cosine=cos_sum / n, l0=l0, dead=int((~ever).sum()), sparsity=1 - l0 / sae.cfg.latents)
