"""Float32 NumPy building blocks of the NumPy chat backend: activations (as transformers names
them), layer and RMS norms, softmax. Nothing here imports torch."""

from __future__ import annotations

import math

import numpy as np

from vlmkit.errors import UnsupportedError

F32 = np.float32
NEG = np.finfo(F32).min  # additive mask value (transformers' eager masks use the dtype minimum too)


# -- activations -------------------------------------------------------------------------------


def _sigmoid(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-x))


_erf = np.frompyfunc(math.erf, 1, 1)


def _gelu(x: np.ndarray) -> np.ndarray:
    """Exact GELU, ``x * Phi(x)``, with ``math.erf`` (correctly rounded) in float64."""
    x64 = x.astype(np.float64)
    return (0.5 * x64 * (1 + _erf(x64 / math.sqrt(2)).astype(np.float64))).astype(x.dtype)


def _gelu_tanh(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1 + np.tanh(F32(math.sqrt(2 / math.pi)) * (x + F32(0.044715) * x**3)))


ACTIVATIONS = {
    "gelu": _gelu,
    "gelu_pytorch_tanh": _gelu_tanh,
    "gelu_new": _gelu_tanh,
    "quick_gelu": lambda x: x * _sigmoid(F32(1.702) * x),
    "silu": lambda x: x * _sigmoid(x),
    "swish": lambda x: x * _sigmoid(x),
    "relu": lambda x: np.maximum(x, 0),
}


def activation(name: str):
    if name not in ACTIVATIONS:
        raise UnsupportedError(f"activation {name!r} is not implemented in NumPy (have {', '.join(ACTIVATIONS)})")
    return ACTIVATIONS[name]


def layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    centered = x - mean
    var = (centered * centered).mean(-1, keepdims=True)
    return centered / np.sqrt(var + F32(eps)) * weight + bias


def rms_norm(x: np.ndarray, weight: np.ndarray, eps: float) -> np.ndarray:
    """Llama's RMSNorm: ``weight * x / sqrt(mean(x**2) + eps)`` (Zhang & Sennrich, NeurIPS 2019)."""
    return weight * (x / np.sqrt((x * x).mean(-1, keepdims=True) + F32(eps)))


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    e /= e.sum(-1, keepdims=True)
    return e


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))
