"""How a service runs: one frozen dataclass, passed explicitly to :func:`create_app`.

:class:`ServeSettings` is the one place a service option is written. A field whose metadata
holds a :func:`cli` spec is also a command-line option: the Typer ``serve`` verb, the argparse
``python -m littlevision.serving.cli`` and Ray Serve's ``app_builder`` are all built from
:func:`cli_options`, and turn what they parsed back into settings with :func:`settings_from_cli`.
A new option is one field here.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from littlevision.errors import UserError

MB = 1024 * 1024


@dataclass(frozen=True)
class Cli:
    """How a :class:`ServeSettings` field is spelled on a command line.

    Args:
        help: One line for ``--help``.
        name: The option's name when it differs from the field's (``max_body_mb`` for
            ``max_body_bytes``); ``--max-body-mb`` on the command line.
        type: The command-line value's type when it differs from the field's.
        to_setting: Command-line value -> field value (e.g. MiB -> bytes).
        from_setting: Field default -> command-line default.
    """

    help: str
    name: str | None = None
    type: type | None = None
    to_setting: Callable[[Any], Any] | None = None
    from_setting: Callable[[Any], Any] | None = None


#: ``cli(..., **IN_MIB)``: a byte count given on the command line in MiB.
IN_MIB: dict[str, Any] = {
    "type": float,
    "to_setting": lambda mb: int(mb * MB),
    "from_setting": lambda n: n / MB,
}


def cli(help: str, **kwargs: Any) -> dict[str, Cli]:
    """Field metadata that makes a setting a command-line option (see :class:`Cli`)."""
    return {"cli": Cli(help, **kwargs)}


@dataclass(frozen=True)
class CliOption:
    """One command-line option, ready for Typer or argparse.

    ``name`` is a Python identifier (``max_body_mb``: ``--max-body-mb``); ``type`` is ``int``,
    ``float``, ``str`` or ``bool`` (a flag); ``optional`` means ``None`` is allowed (the default
    says "not given"); ``setting`` is the :class:`ServeSettings` field it fills, ``None`` for an
    option of the process rather than of the app (``--host``).
    """

    name: str
    type: type
    default: Any
    help: str
    optional: bool = False
    setting: str | None = None
    to_setting: Callable[[Any], Any] | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def parse(self, text: str) -> Any:
        """The value of ``text`` (a string from a config file or ``key=value`` argument)."""
        if self.type is bool:
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise UserError(f"Expected {self.name}=true or false. Received: {self.name}={text!r}")
        try:
            return self.type(text)
        except ValueError:
            raise UserError(
                f"Expected {self.name} to be {_KINDS.get(self.type, self.type.__name__)}. "
                f"Received: {self.name}={text!r}"
            ) from None


_KINDS = {int: "a whole number", float: "a number"}


def _api_key_from_env(variable: str | None) -> str | None:
    """The API key held by environment variable ``variable`` (never a literal on a command line)."""
    if not variable:
        return None
    key = os.environ.get(variable)
    if not key or not key.strip():
        raise UserError(
            f"Expected the API key in environment variable {variable}. "
            "Received: it is unset or empty."
        )
    return key


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
            ``Authorization: Bearer``). Kept out of ``repr`` so it never reaches a log. On a
            command line it is named by an environment variable (``--api-key-env``), so the
            key never appears in ``ps``.
        threads: ONNX Runtime intra-op threads (default: all cores).
        decode_threads: Threads decoding uploads off the event loop (default: all cores).
        watch_interval_s: How often the run folder is checked for a new model; 0 turns the
            watcher off (``POST /v1/reload`` still works).
        explain_timeout_s: Longest a Grad-CAM request may take. The first one imports
            TensorFlow and loads the Keras model, which takes seconds.
        max_pixels: Decompression-bomb limit passed to the decoder (None: its default).
        header_timeout_s: Longest a connection may take to send a request's headers (from
            connecting, or from the end of its previous answer); then it is closed. A client
            trickling headers cannot hold a connection longer than this.
        body_timeout_s: Longest a request body may take to arrive, from the end of its headers
            (then 408). Bodies are read before a request takes a queue slot, so a slow upload
            holds a connection for at most this long and never holds a slot.
        max_buffered_bytes: Most request-body bytes held in memory at once, all requests
            together (counted as they arrive, released when the request is answered). A body
            that would pass it gets 429: with ``max_parses`` this bounds the memory of uploads
            under any load, while a slow client (which holds few bytes) never starves others.
        explain: Serve ``/v1/explain``. Its first call imports TensorFlow and loads the Keras
            model, which takes the process from about 260 MB to about 1 GB (docs/serving.md);
            ``--no-explain`` keeps a service lean (``/v1/explain`` then answers 501).
        warm_explain: Load TensorFlow and the Keras model and run one Grad-CAM at start-up, so
            the first ``/v1/explain`` is not slow (the memory is taken at once instead).
        max_parses: Most v2 ``infer`` JSON bodies parsed at once. Parsing a tensor sent as JSON
            costs several times its size in memory (docs/serving.md), so this bounds it; the
            others wait their turn (inside ``request_timeout_s``).
        collect: Keep a bounded, content-hashed sample of the images the model was unsure
            about (``unknown``, or a top score under ``collect_below_score``) in
            ``RUN/collected/``: the next images to label (littlevision.serving.collect).
        collect_max_images: Most images kept.
        collect_max_bytes: Most bytes kept (images and their JSON records).
        collect_below_score: The "low confidence" line for collecting.
        precision: Which model answers: ``auto`` serves the bundle's ``model.int8.onnx`` when
            training wrote one (it passed the accuracy gate), else ``model.onnx``; ``fp32``
            always serves the exact model. Every answer's ``model.precision`` says which.
    """

    max_batch: int = field(default=4, metadata=cli("Most images per ONNX Runtime call."))
    batch_wait_ms: float = field(
        default=2.0,
        metadata=cli("Longest an image waits for a fuller batch while the model is idle."),
    )
    max_queue: int = field(
        default=64, metadata=cli("Most images pending; past it requests get 429.")
    )
    request_timeout_s: float = field(
        default=30.0, metadata=cli("Longest a request may wait for its answer (then 503).")
    )
    max_body_bytes: int = field(
        default=20 * MB,
        metadata=cli(
            "Largest request body in MiB (then 413).",
            name="max_body_mb",
            **IN_MIB,
        ),
    )
    max_batch_images: int = 32
    api_key: str | None = field(
        default=None,
        repr=False,
        metadata=cli(
            "Environment variable holding the API key for reload and feedback.",
            name="api_key_env",
            type=str,
            to_setting=_api_key_from_env,
        ),
    )
    threads: int | None = field(
        default=None, metadata=cli("ONNX Runtime threads (default: all cores).")
    )
    decode_threads: int | None = None
    watch_interval_s: float = field(
        default=2.0, metadata=cli("Check the run folder for a new model this often (0: never).")
    )
    explain_timeout_s: float = 120.0
    max_pixels: int | None = None
    header_timeout_s: float = field(
        default=10.0, metadata=cli("Longest a client may take to send its headers (then closed).")
    )
    body_timeout_s: float = field(
        default=30.0, metadata=cli("Longest a request body may take to arrive (then 408).")
    )
    max_buffered_bytes: int = field(
        default=128 * MB,
        metadata=cli(
            "Most request-body MiB held at once, all requests together (then 429).",
            name="max_buffered_mb",
            **IN_MIB,
        ),
    )
    explain: bool = field(
        default=True,
        metadata=cli("Serve /v1/explain (its first call loads TensorFlow: about +750 MB)."),
    )
    warm_explain: bool = field(
        default=False,
        metadata=cli("Load Grad-CAM at start-up so the first /v1/explain is not slow."),
    )
    max_parses: int = field(
        default=2, metadata=cli("Most v2 infer JSON bodies parsed at once (bounds memory).")
    )
    collect: bool = field(
        default=False,
        metadata=cli("Keep images the model was unsure about in RUN/collected/ (capped)."),
    )
    collect_max_images: int = field(
        default=1000, metadata=cli("Most images --collect keeps (never exceeded).")
    )
    collect_max_bytes: int = field(
        default=200 * MB,
        metadata=cli(
            "Most MiB --collect keeps, images and their JSON (never exceeded).",
            name="collect_max_mb",
            **IN_MIB,
        ),
    )
    collect_below_score: float = field(
        default=0.6, metadata=cli("--collect also keeps images whose top score is below this.")
    )
    precision: str = field(
        default="auto",
        metadata=cli("auto (the bundle's int8 model when it passed its gate), fp32 or int8."),
    )

    def __post_init__(self) -> None:
        _at_least("max_batch", self.max_batch, 1)
        _at_least("batch_wait_ms", self.batch_wait_ms, 0)
        _at_least("max_queue", self.max_queue, 1)
        _at_least("request_timeout_s", self.request_timeout_s, 0.001)
        _at_least("max_body_bytes", self.max_body_bytes, 1)
        _at_least("max_batch_images", self.max_batch_images, 1)
        _at_least("watch_interval_s", self.watch_interval_s, 0)
        _at_least("explain_timeout_s", self.explain_timeout_s, 0.001)
        _at_least("header_timeout_s", self.header_timeout_s, 0.001)
        _at_least("body_timeout_s", self.body_timeout_s, 0.001)
        _at_least("max_parses", self.max_parses, 1)
        _at_least("max_buffered_bytes", self.max_buffered_bytes, self.max_body_bytes)
        if self.threads is not None:
            _at_least("threads", self.threads, 1)
        if self.decode_threads is not None:
            _at_least("decode_threads", self.decode_threads, 1)
        if self.max_pixels is not None:
            _at_least("max_pixels", self.max_pixels, 1)
        _at_least("collect_max_images", self.collect_max_images, 1)
        _at_least("collect_max_bytes", self.collect_max_bytes, 1)
        _at_least("collect_below_score", self.collect_below_score, 0)
        if self.api_key is not None and not self.api_key.strip():
            raise UserError("Expected a non-empty API key. Received: an empty string.")
        if self.precision not in ("auto", "fp32", "int8"):
            raise UserError(
                f"Expected precision auto, fp32 or int8. Received: precision={self.precision!r}"
            )


def _at_least(name: str, value: float, low: float) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or value < low:
        raise UserError(f"Expected {name} >= {low}. Received: {name}={value!r}")


def _split_optional(hint: Any) -> tuple[type, bool]:
    """``int | None`` -> ``(int, True)``; ``int`` -> ``(int, False)``."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return args[0], len(args) < len(typing.get_args(hint))
    return hint, False


def cli_options() -> list[CliOption]:
    """The :class:`ServeSettings` fields that are command-line options, in field order."""
    hints = typing.get_type_hints(ServeSettings)
    options = []
    for f in dataclasses.fields(ServeSettings):
        spec: Cli | None = f.metadata.get("cli")
        if spec is None:
            continue
        field_type, optional = _split_optional(hints[f.name])
        default = f.default if spec.from_setting is None else spec.from_setting(f.default)
        options.append(
            CliOption(
                name=spec.name or f.name,
                type=spec.type or field_type,
                default=default,
                help=spec.help,
                optional=optional,
                setting=f.name,
                to_setting=spec.to_setting,
            )
        )
    return options


def settings_from_cli(
    values: Mapping[str, Any], base: ServeSettings | None = None
) -> ServeSettings:
    """:class:`ServeSettings` from parsed command-line values (keys: :class:`CliOption` names).

    Keys that are not settings options (``host``, ``run_dir``...) are ignored, so a whole
    parsed namespace can be passed.

    Raises:
        UserError: a value out of range, or an API key variable that is unset or empty.
    """
    changes = {}
    for option in cli_options():
        if option.name not in values:
            continue
        value = values[option.name]
        if option.to_setting is not None:
            value = option.to_setting(value)
        changes[option.setting] = value
    return dataclasses.replace(base or ServeSettings(), **changes)
