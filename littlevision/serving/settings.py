"""How a service runs: one frozen dataclass, passed explicitly to :func:`create_app`."""

from __future__ import annotations

from dataclasses import dataclass, field

from littlevision.errors import UserError

MB = 1024 * 1024


@dataclass(frozen=True)
class ServeSettings:
    """Knobs of a running service. Defaults suit a 2-core CPU serving one small model.

    Args:
        max_batch: Most images the micro-batcher gives ONNX Runtime in one call. Small on
            purpose: on a 2-core CPU, lite0 at 224 px costs ~35% more per image at batch 32 than
            at batch 1-2 (its activations outgrow the caches), while batches of 4 still save
            most of the per-call overhead that matters for small models (docs/serving.md).
        batch_wait_ms: Longest an image waits for others to join its batch while the model is
            idle. A few ms buys large batches under load and costs little alone.
        max_queue: Most images admitted and not yet answered. Past it the service answers
            429 with ``Retry-After`` at once: bounded latency and memory instead of a pile-up.
        request_timeout_s: Longest one request may wait for its answer before a 503.
        max_body_bytes: Largest request body; bigger ones get 413 before they are read.
        max_batch_images: Most images in one ``/v1/predict/batch`` or v2 ``infer`` request.
        api_key: When set, ``/v1/reload`` and ``/v1/feedback`` need it (``X-API-Key`` or
            ``Authorization: Bearer``). Kept out of ``repr`` so it never reaches a log.
        threads: ONNX Runtime intra-op threads (default: all cores).
        decode_threads: Threads decoding uploads off the event loop (default: all cores).
        watch_interval_s: How often the run folder is checked for a new model; 0 turns the
            watcher off (``POST /v1/reload`` still works).
        explain_timeout_s: Longest a Grad-CAM request may take. The first one imports
            TensorFlow and loads the Keras model, which takes seconds.
        max_pixels: Decompression-bomb limit passed to the decoder (None: its default).
    """

    max_batch: int = 4
    batch_wait_ms: float = 2.0
    max_queue: int = 64
    request_timeout_s: float = 30.0
    max_body_bytes: int = 20 * MB
    max_batch_images: int = 32
    api_key: str | None = field(default=None, repr=False)
    threads: int | None = None
    decode_threads: int | None = None
    watch_interval_s: float = 2.0
    explain_timeout_s: float = 120.0
    max_pixels: int | None = None

    def __post_init__(self) -> None:
        _at_least("max_batch", self.max_batch, 1)
        _at_least("batch_wait_ms", self.batch_wait_ms, 0)
        _at_least("max_queue", self.max_queue, 1)
        _at_least("request_timeout_s", self.request_timeout_s, 0.001)
        _at_least("max_body_bytes", self.max_body_bytes, 1)
        _at_least("max_batch_images", self.max_batch_images, 1)
        _at_least("watch_interval_s", self.watch_interval_s, 0)
        _at_least("explain_timeout_s", self.explain_timeout_s, 0.001)
        if self.threads is not None:
            _at_least("threads", self.threads, 1)
        if self.decode_threads is not None:
            _at_least("decode_threads", self.decode_threads, 1)
        if self.max_pixels is not None:
            _at_least("max_pixels", self.max_pixels, 1)
        if self.api_key is not None and not self.api_key.strip():
            raise UserError("Expected a non-empty API key. Received: an empty string.")


def _at_least(name: str, value: float, low: float) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or value < low:
        raise UserError(f"Expected {name} >= {low}. Received: {name}={value!r}")
