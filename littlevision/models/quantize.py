"""int8 models: ONNX Runtime static quantisation, and the gate that decides whether one is kept.

An int8 copy of a bundle's model runs about twice as fast on a CPU with VNNI instructions, but
it is not the same model: on cats-vs-dogs it changed a few of 800 validation predictions. So it
is never used silently. :func:`quantize_static_int8` makes it (QDQ, weights per channel,
activations calibrated on the user's own training images) and :func:`gate` compares it with the
exact model on the run's validation split; ``train`` writes ``model.int8.onnx`` only when the gate
passes, and ``card.json`` records the figures either way (docs/precision.md).

ONNX Runtime was measured against OpenVINO (fp32, bf16 and NNCF int8) side by side in
``benchmarks/bench_runtimes.py``; see docs/benchmarks.md for why it is the runtime kept.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from littlevision._io import atomic_path
from littlevision.metrics import log_loss

# The gate: the fast model must agree with the exact one on this share of top-1 labels...
MIN_AGREEMENT = 0.995
# ...and its validation log-loss may exceed the exact model's by at most this fraction.
MAX_LOG_LOSS_RATIO = 1.10
# Calibration images: more than 64 changed nothing measurable on cats-vs-dogs (docs/precision.md).
CALIBRATION_IMAGES = 64

# x86 instruction sets that make int8 convolutions faster than fp32 (from /proc/cpuinfo flags).
INT8_CPU_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")

PRECISIONS = ("auto", "fp32", "int8")
# Bump when quantize_static_int8 changes what it makes: cached int8 backbones (and the
# embeddings keyed on them) are then made again instead of reused.
QUANTIZE_VERSION = 2
FAST_MODEL = "model.int8.onnx"


def quantize_static_int8(
    fp32_path: str | os.PathLike,
    out_path: str | os.PathLike,
    calibration: np.ndarray,
    batch_size: int = 16,
) -> Path:
    """Write an int8 (QDQ, per-channel weights) copy of an ONNX model that takes uint8 images.

    Args:
        fp32_path: The exact model (input uint8 ``[N, S, S, 3]``).
        out_path: Where the int8 model goes (written atomically).
        calibration: uint8 images ``[M, S, S, 3]`` from the training set; activation ranges
            are the min/max seen on them.
        batch_size: Images per calibration call.

    Returns:
        ``out_path``.
    """
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if calibration.ndim != 4 or calibration.dtype != np.uint8 or not len(calibration):
        raise ValueError(
            "Expected calibration images uint8 [M, S, S, 3] with M >= 1. "
            f"Received: shape={calibration.shape}, dtype={calibration.dtype}"
        )
    out_path = Path(out_path)
    input_name = onnx.load(str(fp32_path), load_external_data=False).graph.input[0].name

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(
                [
                    {input_name: calibration[i : i + batch_size]}
                    for i in range(0, len(calibration), batch_size)
                ]
            )

        def get_next(self):
            return next(self.batches, None)

    with tempfile.TemporaryDirectory() as tmp:
        # Folds BatchNormalization into Conv and infers shapes, so every Conv gets one scale
        # per output channel of its final weights.
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
        staged = Path(tmp) / "int8.onnx"
        quantize_static(
            str(prepared),
            str(staged),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            # Only convolutions (the head stays fp32), and not the first nor the last one: on
            # cats-vs-dogs (400 validation images, 64 calibration images) quantising every Conv
            # changed 0.75% of the labels and raised log-loss 19-23% (MinMax or percentile,
            # with or without the Adds); keeping the stem and the final 1x1 Conv in fp32 (2 of
            # 49, ~8% of the work) brought it to 0.5% and +8.8% (docs/benchmarks.md).
            op_types_to_quantize=["Conv"],
            nodes_to_exclude=_end_convs(prepared),
            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
        )
        out_path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(out_path) as partial:
            shutil.move(staged, partial)  # the staging folder may be on another file system
    return out_path


def _end_convs(path: Path) -> list[str]:
    """Names of the first and the last Conv of a model (kept fp32: the most sensitive)."""
    import onnx

    convs = [n.name for n in onnx.load(str(path)).graph.node if n.op_type == "Conv"]
    return sorted({convs[0], convs[-1]}) if convs else []


def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none, e.g. macOS)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def int8_supported(flags: set[str] | None = None) -> bool:
    """Whether the CPU has int8 dot-product instructions (VNNI or AMX).

    Without them ONNX Runtime's int8 convolutions are emulated and slower than fp32, so the
    gate keeps the exact model. Where flags cannot be read (not Linux) the measured speed check
    in :func:`gate` still decides.
    """
    flags = cpu_flags() if flags is None else flags
    return not flags or any(f in flags for f in INT8_CPU_FLAGS)


def resolve_precision(precision: str, flags: set[str] | None = None) -> str:
    """``auto`` -> ``int8`` where the CPU has int8 instructions, else ``fp32``; others as given.

    Raises:
        ValueError: for a precision other than auto, fp32 or int8.
    """
    if precision not in PRECISIONS:
        raise ValueError(
            f"Expected precision auto, fp32 or int8. Received: precision={precision!r}"
        )
    if precision == "auto":
        return "int8" if int8_supported(flags) else "fp32"
    return precision


@dataclass
class GateResult:
    """The fast model against the exact one on the run's validation images (card.json)."""

    precision: str  # "int8"
    passed: bool
    reason: str
    n: int = 0
    agreement: float = 0.0  # share of images with the same top-1 label
    log_loss_fp32: float = 0.0
    log_loss_fast: float = 0.0
    accuracy_fp32: float = 0.0
    accuracy_fast: float = 0.0
    speedup: float = 0.0  # fp32 time / int8 time on a few images, measured here (recorded only)
    max_abs_diff: float = 0.0  # largest probability difference
    cpu_int8: bool = True  # VNNI/AMX present
    thresholds: dict = field(
        default_factory=lambda: {
            "min_agreement": MIN_AGREEMENT,
            "max_log_loss_ratio": MAX_LOG_LOSS_RATIO,
            "cpu_flags": list(INT8_CPU_FLAGS),
        }
    )

    def to_dict(self) -> dict:
        out = asdict(self)
        for k, v in out.items():
            if isinstance(v, float):
                out[k] = round(v, 6)
        return out


def compare(
    fp32_probs: np.ndarray,
    fast_probs: np.ndarray,
    y: np.ndarray,
    speedup: float = float("inf"),
    cpu_int8: bool = True,
    precision: str = "int8",
) -> GateResult:
    """Apply the gate to two models' validation probabilities ``[N, C]`` and labels ``[N]``.

    The fast model passes when it agrees with the exact one on >= 99.5% of top-1 labels, its
    log-loss is within 10% of the exact one's, and the CPU has int8 dot-product instructions.
    Whether int8 is faster is decided by the CPU's features, not by the measured ``speedup``
    (which is recorded): on a machine shared with other work a timing of a few images is noise,
    and a gate that flips with the load would make two trainings of the same data differ.
    """
    y = np.asarray(y, dtype=np.int64)
    n = len(y)
    if n == 0:
        return GateResult(precision, False, "no validation images to check the fast model on")
    agreement = float((fp32_probs.argmax(1) == fast_probs.argmax(1)).mean())
    ll32, llq = log_loss(y, fp32_probs), log_loss(y, fast_probs)  # n > 0: floats
    result = GateResult(
        precision=precision,
        passed=False,
        reason="",
        n=n,
        agreement=agreement,
        log_loss_fp32=ll32,
        log_loss_fast=llq,
        accuracy_fp32=float((fp32_probs.argmax(1) == y).mean()),
        accuracy_fast=float((fast_probs.argmax(1) == y).mean()),
        speedup=float(speedup) if np.isfinite(speedup) else 0.0,
        max_abs_diff=float(np.abs(fp32_probs - fast_probs).max()),
        cpu_int8=cpu_int8,
    )
    # Log-loss within 10%: with a near-perfect exact model (log-loss ~0.001) a ratio alone would
    # reject noise, so an absolute slack of 0.005 nats is allowed as well.
    ll_limit = max(ll32 * MAX_LOG_LOSS_RATIO, ll32 + 0.005)
    if not cpu_int8:
        result.reason = (
            "this CPU has no int8 dot-product instructions (VNNI/AMX): int8 would be slower"
        )
    elif agreement < MIN_AGREEMENT:
        result.reason = (
            f"{precision} agrees with fp32 on {agreement:.2%} of {n} validation images "
            f"(needs >= {MIN_AGREEMENT:.1%})"
        )
    elif llq > ll_limit:
        result.reason = f"{precision} log-loss {llq:.4f} is more than 10% above fp32's {ll32:.4f}"
    else:
        result.passed = True
        result.reason = (
            f"{precision} agrees with fp32 on {agreement:.2%} of {n} validation images, "
            f"log-loss {llq:.4f} vs {ll32:.4f}"
            + (f", {speedup:.2f}x as fast" if np.isfinite(speedup) else "")
        )
    return result


def measure_speedup(
    run_fp32: Callable[[np.ndarray], object],
    run_fast: Callable[[np.ndarray], object],
    images: np.ndarray,
    rounds: int = 3,
) -> float:
    """fp32 time / fast time on the same images, alternating, best of ``rounds`` each.

    Alternating and taking the best of each keeps a busy machine from favouring either side.
    """
    run_fp32(images[:1])  # warm both sessions up
    run_fast(images[:1])
    best = [float("inf"), float("inf")]
    for _ in range(rounds):
        for k, fn in enumerate((run_fp32, run_fast)):
            t0 = time.perf_counter()
            fn(images)
            best[k] = min(best[k], time.perf_counter() - t0)
    return best[0] / max(best[1], 1e-9)


def append_head(
    features_path: str | os.PathLike,
    kernel: np.ndarray,
    bias: np.ndarray,
    out_path: str | os.PathLike,
    output_name: str = "probabilities",
) -> Path:
    """A classifier ONNX: a feature extractor's graph + ``softmax(features @ kernel + bias)``;
    outputs the probabilities, then the features (the bundle's ``model.onnx`` contract).

    The bottleneck recipe's int8 model is its int8 backbone (the one that embedded the images)
    with the fp32 linear head on top, so its validation probabilities are known from the
    features alone and the gate costs no extra pass over the images.

    Args:
        features_path: ONNX with one output ``[N, D]``.
        kernel: ``[D, C]`` float32.
        bias: ``[C]`` float32.
        out_path: Where the classifier goes.
        output_name: The classifier's output name.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(features_path))
    graph = model.graph
    feats = graph.output[0].name
    graph.initializer.extend(
        [
            numpy_helper.from_array(np.asarray(kernel, np.float32), "head_kernel"),
            numpy_helper.from_array(np.asarray(bias, np.float32), "head_bias"),
        ]
    )
    graph.node.extend(
        [
            helper.make_node("MatMul", [feats, "head_kernel"], ["head_logits"], name="head_matmul"),
            helper.make_node("Add", ["head_logits", "head_bias"], ["head_biased"], name="head_add"),
            helper.make_node(
                "Softmax", ["head_biased"], [output_name], name="head_softmax", axis=1
            ),
        ]
    )
    features_out = graph.output[0]
    del graph.output[:]
    graph.output.append(
        helper.make_tensor_value_info(output_name, TensorProto.FLOAT, ["N", int(kernel.shape[1])])
    )
    graph.output.append(features_out)  # second output, as model.onnx has (novelty scoring)
    out_path = Path(out_path)
    with atomic_path(out_path) as tmp:
        onnx.save(model, tmp)
    return out_path
