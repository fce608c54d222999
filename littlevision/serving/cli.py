"""``littlevision serve RUN``: run the service under uvicorn until SIGTERM or Ctrl-C.

The main CLI (``littlevision.cli``) adds the ``serve`` verb through :func:`register`, which
parses the options and calls :func:`serve`. Running this module directly
(``python -m littlevision.serving.cli RUN``) does the same without Typer; the tests and the
benchmark use it to start a real server process.
"""

from __future__ import annotations

import argparse
import inspect
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer

from littlevision._net import is_loopback
from littlevision.errors import UserError
from littlevision.serving.settings import CliOption, ServeSettings, cli_options, settings_from_cli

log = logging.getLogger("littlevision.serving")


def _configure_logging(level: str) -> None:
    """Show the service's own messages (reloads, warnings) beside uvicorn's."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=level.upper(), format="%(levelname)s:     %(message)s")


#: Options of the process rather than of the app: where to listen and what to log.
PROCESS_OPTIONS = (
    CliOption("host", str, "127.0.0.1", "Address to bind (loopback by default)."),
    CliOption("port", int, 8000, "TCP port."),
    CliOption("log_level", str, "info", "debug, info, warning or error."),
    CliOption("access_log", bool, True, "One log line per request."),
)

#: Options of the ``serve`` verb only: which engine runs the app.
ENGINE_OPTIONS = (
    CliOption("engine", str, "local", "local (uvicorn) or ray (Ray Serve replicas)."),
    CliOption("replicas", int, 1, "Ray Serve replicas (with --engine ray)."),
    CliOption("address", str, None, "Ray cluster to join (default: a local Ray).", optional=True),
)


def serve_options() -> list[CliOption]:
    """Every option of ``python -m littlevision.serving.cli``: the settings', then the process's."""
    return [*cli_options(), *PROCESS_OPTIONS]


def serve(
    run_dir: str | os.PathLike,
    settings: ServeSettings | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "info",
    access_log: bool = True,
) -> int:
    """Serve the bundle in ``run_dir`` on ``host:port`` until SIGTERM/SIGINT; return exit code 0.

    On SIGTERM the server stops accepting connections, answers every request it already
    accepted (for up to ``settings.request_timeout_s`` more), then exits with 0 -- what a
    process manager or Kubernetes expects of a clean stop.

    Args:
        run_dir: A run folder made by ``littlevision train``.
        settings: How the service runs (default: :class:`ServeSettings` ()).
        host: Address to bind. The default is loopback only; binding elsewhere without an API
            key logs a warning, since feedback and reload would then be open to the network.
        port: TCP port.
        log_level: uvicorn's log level.
        access_log: Log one line per request.

    Returns:
        0 after a clean shutdown.

    Raises:
        UserError: for a wrong run folder, bad settings, or when the service could not start
            (the port is taken, the model fails).
    """
    import uvicorn

    from littlevision.serving.app import create_app
    from littlevision.serving.protocol import protocol_class

    settings = settings or ServeSettings()
    if not is_loopback(host) and settings.api_key is None:
        log.warning(
            "Serving on %s without an API key: anyone who can reach it can reload the "
            "model and write feedback files. Use --api-key-env.",
            host,
        )
    app = create_app(run_dir, settings)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=access_log,
        lifespan="on",
        timeout_graceful_shutdown=int(settings.request_timeout_s) + 5,
        # A backstop behind the app's own queue limit: connections past it get 503 at once.
        limit_concurrency=max(64, 4 * settings.max_queue),
        server_header=False,
        http=protocol_class(settings.header_timeout_s),
    )
    runtime = app.state.runtime

    class _Server(uvicorn.Server):
        def handle_exit(self, sig, frame) -> None:
            runtime.draining = True  # /readyz says no at once, while accepted work finishes
            super().handle_exit(sig, frame)

    server = _Server(config)
    # uvicorn re-raises the signal it caught once it has shut down, which would end the
    # process with 143 instead of 0; a handler of ours receives that re-raise instead.
    main_thread = threading.current_thread() is threading.main_thread()
    previous = {}
    if main_thread:
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, lambda *_: None)
    try:
        server.run()
    except SystemExit as e:  # uvicorn exits 1 when it cannot bind
        if e.code:
            raise UserError(
                f"The service could not start on {host}:{port} (is the port "
                "already in use?). See the log above."
            ) from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not server.started:
        raise UserError(f"The service could not start: {runtime.startup_error or 'see the log'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m littlevision.serving.cli RUN [options]`` (the same options as ``serve``)."""
    p = argparse.ArgumentParser(
        prog="python -m littlevision.serving.cli", description="Serve a littlevision run over HTTP."
    )
    p.add_argument("run_dir")
    for option in serve_options():
        if option.type is bool:  # a flag that turns its default around
            flag = option.flag if not option.default else "--no-" + option.flag[2:]
            action = "store_false" if option.default else "store_true"
            text = option.help if not option.default else f"Turn off: {option.help.lower()}"
            p.add_argument(flag, dest=option.name, action=action, help=text)
        else:
            p.add_argument(option.flag, type=option.type, default=option.default, help=option.help)
    values = vars(p.parse_args(argv))
    _configure_logging(values["log_level"])
    try:
        return serve(values["run_dir"], settings_from_cli(values), **_process_values(values))
    except UserError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 2


def _process_values(values: dict) -> dict:
    return {o.name: values[o.name] for o in PROCESS_OPTIONS}


def _typer_signature(options: list[CliOption]) -> inspect.Signature:
    """A signature Typer reads as ``RUN`` plus one ``--option`` per :class:`CliOption`."""
    run = inspect.Parameter(
        "run",
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        annotation=Annotated[
            Path, typer.Argument(help="The run folder to serve.", show_default=False)
        ],
    )
    params = [run]
    for o in options:
        type_ = o.type | None if o.optional else o.type
        params.append(
            inspect.Parameter(
                o.name,
                inspect.Parameter.POSITIONAL_OR_KEYWORD,
                default=o.default,
                annotation=Annotated[type_, typer.Option(help=o.help)],
            )
        )
    return inspect.Signature(params)


def register(app: typer.Typer, friendly) -> None:
    """Add the ``serve`` verb to the main ``littlevision`` Typer app (its plug-in hook)."""

    def serve_command(run: Path, **values) -> None:
        """Serve a run over HTTP: predict, explain, feedback, metrics, a web page."""
        _configure_logging(values["log_level"])
        engine = values["engine"]
        if engine not in ("local", "ray"):
            raise UserError(f"Unknown engine '{engine}'. Use local or ray.")
        settings = settings_from_cli(values)
        if engine == "ray":
            from littlevision.scale import serve_ray

            code = serve_ray(
                run,
                values["replicas"],
                settings=settings,
                address=values["address"],
                host=values["host"],
                port=values["port"],
            )
        else:
            code = serve(run, settings, **_process_values(values))
        if code:
            raise typer.Exit(code)

    signature = _typer_signature([*serve_options(), *ENGINE_OPTIONS])
    serve_command.__signature__ = signature
    serve_command.__annotations__ = {p.name: p.annotation for p in signature.parameters.values()}
    app.command("serve")(friendly(serve_command))


if __name__ == "__main__":
    sys.exit(main())
