"""The int8 model and its gate, on the tiny real bundle (``tiny_run``) and its validation photos."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from littlevision.bundle import Bundle
from littlevision.data.decode import decode_many
from littlevision.inference import make_session
from littlevision.models import quantize as q
from littlevision.training.run import finish_gate


def _val_set(run):
    """The run's validation photos (uint8 [N, S, S, 3]) and their class indices."""
    bundle = Bundle.load(run)
    split = json.loads((run / "split.json").read_text())
    root = split["root"]
    paths, y = [], []
    for k, label in enumerate(bundle.labels):
        files = split["subsets"]["validation"].get(label, [])
        paths += [f"{root}/{f}" if root else f for f in files]
        y += [k] * len(files)
    return decode_many(paths, bundle.image_size).images, np.array(y)


def _probs(path, images):
    return make_session(path, 1).run(None, {"image": images})[0]


@pytest.fixture
def run_copy(tiny_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(tiny_run, out)
    return out


def test_quantised_model_is_int8_and_answers_probabilities(tiny_run, tmp_path):
    images, _ = _val_set(tiny_run)
    out = q.quantize_static_int8(tiny_run / "model.onnx", tmp_path / "m.int8.onnx", images[:8])
    graph = onnx.load(str(out)).graph
    assert sum(n.op_type == "QuantizeLinear" for n in graph.node) > 40  # per conv, not a no-op
    int8_4d = {
        i.name
        for i in graph.initializer
        if i.data_type == onnx.TensorProto.INT8 and len(i.dims) == 4
    }
    # every Conv's weights but the first's and the last's (kept fp32) are int8
    assert len(int8_4d) == 47
    probs = _probs(out, images)
    assert probs.shape == (len(images), 2)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    exact = _probs(tiny_run / "model.onnx", images)
    assert not np.array_equal(probs, exact)  # really a different model...
    assert np.abs(probs - exact).max() < 0.5  # ...but close to the exact one


def test_quantise_refuses_float_calibration(tiny_run, tmp_path):
    with pytest.raises(ValueError, match="uint8"):
        q.quantize_static_int8(
            tiny_run / "model.onnx", tmp_path / "x.onnx", np.zeros((2, 224, 224, 3), np.float32)
        )


def test_training_recorded_the_gate_in_the_card(tiny_run):
    card = Bundle.load(tiny_run).card
    gate = card["fast_model"]
    assert gate["precision"] == "int8" and gate["n"] == card["data"]["n_val"]
    assert 0.0 <= gate["agreement"] <= 1.0 and gate["log_loss_fp32"] > 0
    assert gate["reason"]
    assert gate["written"] == (tiny_run / "model.int8.onnx").is_file() == gate["passed"]
    if gate["passed"]:
        assert gate["agreement"] >= q.MIN_AGREEMENT


def test_gate_passes_an_agreeing_model_and_writes_it(run_copy):
    images, y = _val_set(run_copy)
    exact = _probs(run_copy / "model.onnx", images)
    candidate = run_copy / "candidate.onnx"
    shutil.copy(run_copy / "model.onnx", candidate)
    gate = q.compare(exact, _probs(candidate, images), y, speedup=1.0)
    record = finish_gate(run_copy, candidate, gate)
    assert gate.passed and record["written"] and gate.agreement == 1.0
    assert (run_copy / "model.int8.onnx").is_file() and not candidate.exists()
    assert record["log_loss_fast"] == pytest.approx(record["log_loss_fp32"], rel=1e-4)


def _swapped(path, out_path):
    """A copy of the model at ``path`` whose two output columns are swapped: it answers the
    other class for every image (made to disagree on purpose)."""
    from onnx import helper

    model = onnx.load(str(path))
    out = model.graph.output[0].name
    for node in model.graph.node:
        node.output[:] = [f"{o}_pre" if o == out else o for o in node.output]
    model.graph.initializer.append(numpy_helper.from_array(np.array([1, 0], np.int64), "swap"))
    model.graph.node.append(helper.make_node("Gather", [f"{out}_pre", "swap"], [out], axis=1))
    onnx.save(model, str(out_path))
    return out_path


def test_gate_fails_a_model_made_to_disagree_and_does_not_write_it(run_copy):
    images, y = _val_set(run_copy)
    exact = _probs(run_copy / "model.onnx", images)
    int8 = q.quantize_static_int8(run_copy / "model.onnx", run_copy / "c.onnx", images[:8])
    broken = _swapped(int8, run_copy / "broken.onnx")
    fast = _probs(broken, images)
    assert (fast.argmax(1) != exact.argmax(1)).mean() > 0.5
    (run_copy / "model.int8.onnx").write_bytes(b"stale")  # an older fast model must go too
    gate = q.compare(exact, fast, y, speedup=2.0)
    record = finish_gate(run_copy, broken, gate)
    assert not gate.passed and not record["written"]
    assert "agrees with fp32 on" in gate.reason and gate.agreement < q.MIN_AGREEMENT
    assert not (run_copy / "model.int8.onnx").exists() and not broken.exists()


def test_gate_fails_on_log_loss_alone():
    y = np.array([0, 1] * 50)
    exact = np.where(y[:, None] == np.arange(2), 0.99, 0.01).astype(np.float32)
    fast = np.where(y[:, None] == np.arange(2), 0.8, 0.2).astype(np.float32)  # same labels
    gate = q.compare(exact, fast, y)
    assert gate.agreement == 1.0 and not gate.passed and "log-loss" in gate.reason


def test_a_cpu_without_int8_instructions_keeps_fp32():
    assert q.int8_supported({"avx2", "avx512f", "avx512_vnni"})
    assert q.int8_supported({"avx2", "avx_vnni"})
    assert not q.int8_supported({"sse4_2", "avx2", "avx512f"})  # e.g. Skylake-X: no VNNI
    assert q.resolve_precision("auto", {"avx2"}) == "fp32"
    assert q.resolve_precision("auto", {"avx512_vnni"}) == "int8"
    assert q.resolve_precision("fp32", {"avx512_vnni"}) == "fp32"
    y = np.array([0, 1])
    p = np.eye(2, dtype=np.float32)
    gate = q.compare(p, p, y, cpu_int8=False)
    assert not gate.passed and "VNNI" in gate.reason
    with pytest.raises(ValueError, match="precision"):
        q.resolve_precision("fp16")


def test_append_head_matches_features_times_kernel(tiny_run, tmp_path):
    from littlevision.features import Embedder

    images, _ = _val_set(tiny_run)
    emb = Embedder("lite0")
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(1280, 3)).astype(np.float32) * 0.01
    bias = np.array([0.1, -0.2, 0.3], np.float32)
    path = q.append_head(emb.onnx_path, kernel, bias, tmp_path / "clf.onnx")
    feats = emb.embed_array(images[:4])
    logits = feats @ kernel + bias
    expected = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    np.testing.assert_allclose(_probs(path, images[:4]), expected, atol=1e-5)
