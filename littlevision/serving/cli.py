"""``littlevision serve RUN``: run the service under uvicorn until SIGTERM or Ctrl-C.

The main CLI (``littlevision.cli``) adds the ``serve`` verb through :func:`register`, which
parses the options and calls :func:`serve`. Running this module directly
(``python -m littlevision.serving.cli RUN``) does the same without Typer; the tests and the
benchmark use it to start a real server process.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer

from littlevision.errors import UserError
from littlevision.serving.settings import MB, ServeSettings

log = logging.getLogger("littlevision.serving")


def _configure_logging(level: str) -> None:
    """Show the service's own messages (reloads, warnings) beside uvicorn's."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=level.upper(), format="%(levelname)s:     %(message)s")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def build_settings(
    max_batch: int = 4,
    batch_wait_ms: float = 2.0,
    api_key_env: str | None = None,
    *,
    max_queue: int = 64,
    request_timeout_s: float = 30.0,
    max_body_mb: float = 20.0,
    threads: int | None = None,
    watch_interval_s: float = 2.0,
) -> ServeSettings:
    """The service's settings from command-line values; the API key is read from the environment."""
    api_key = None
    if api_key_env:
        api_key = os.environ.get(api_key_env)
        if not api_key or not api_key.strip():
            raise UserError(
                f"Expected the API key in environment variable {api_key_env}. "
                "Received: it is unset or empty."
            )
    return ServeSettings(
        max_batch=max_batch,
        batch_wait_ms=batch_wait_ms,
        max_queue=max_queue,
        request_timeout_s=request_timeout_s,
        max_body_bytes=int(max_body_mb * MB),
        api_key=api_key,
        threads=threads,
        watch_interval_s=watch_interval_s,
    )


def serve(
    run_dir: str | os.PathLike,
    host: str = "127.0.0.1",
    port: int = 8000,
    max_batch: int = 4,
    batch_wait_ms: float = 2.0,
    api_key_env: str | None = None,
    *,
    max_queue: int = 64,
    request_timeout_s: float = 30.0,
    max_body_mb: float = 20.0,
    threads: int | None = None,
    watch_interval_s: float = 2.0,
    log_level: str = "info",
    access_log: bool = True,
) -> int:
    """Serve the bundle in ``run_dir`` on ``host:port`` until SIGTERM/SIGINT; return exit code 0.

    On SIGTERM the server stops accepting connections, answers every request it already
    accepted (for up to ``request_timeout_s`` more), then exits with 0 -- what a process manager
    or Kubernetes expects of a clean stop.

    Args:
        run_dir: A run folder made by ``littlevision train``.
        host: Address to bind. The default is loopback only; binding elsewhere without an API
            key logs a warning, since feedback and reload would then be open to the network.
        port: TCP port.
        max_batch: Most images per ONNX Runtime call.
        batch_wait_ms: Longest an image waits for a fuller batch while the model is idle.
        api_key_env: Name of an environment variable holding the API key for reload and
            feedback (the key itself never appears on a command line or in ``ps``).
        max_queue: Most images pending before new requests get 429.
        request_timeout_s: Longest a request may wait for its answer (then 503).
        max_body_mb: Largest request body, in MiB (then 413).
        threads: ONNX Runtime intra-op threads (default: all cores).
        watch_interval_s: Poll the run folder for a new model this often (0: never).
        log_level: uvicorn's log level.
        access_log: Log one line per request.

    Returns:
        0 after a clean shutdown.

    Raises:
        UserError: for a wrong run folder, an API key variable that is unset or empty, bad
            settings, or when the service could not start (the port is taken, the model fails).
    """
    import uvicorn

    from littlevision.serving.app import create_app

    settings = build_settings(
        max_batch,
        batch_wait_ms,
        api_key_env,
        max_queue=max_queue,
        request_timeout_s=request_timeout_s,
        max_body_mb=max_body_mb,
        threads=threads,
        watch_interval_s=watch_interval_s,
    )
    api_key = settings.api_key
    if not _is_loopback(host) and api_key is None:
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
        timeout_graceful_shutdown=int(request_timeout_s) + 5,
        # A backstop behind the app's own queue limit: connections past it get 503 at once.
        limit_concurrency=max(64, 4 * max_queue),
        server_header=False,
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
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--max-batch", type=int, default=4)
    p.add_argument("--batch-wait-ms", type=float, default=2.0)
    p.add_argument("--api-key-env", default=None)
    p.add_argument("--max-queue", type=int, default=64)
    p.add_argument("--request-timeout-s", type=float, default=30.0)
    p.add_argument("--max-body-mb", type=float, default=20.0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--watch-interval-s", type=float, default=2.0)
    p.add_argument("--log-level", default="info")
    p.add_argument("--no-access-log", dest="access_log", action="store_false")
    a = p.parse_args(argv)
    _configure_logging(a.log_level)
    try:
        return serve(
            a.run_dir,
            a.host,
            a.port,
            a.max_batch,
            a.batch_wait_ms,
            a.api_key_env,
            max_queue=a.max_queue,
            request_timeout_s=a.request_timeout_s,
            max_body_mb=a.max_body_mb,
            threads=a.threads,
            watch_interval_s=a.watch_interval_s,
            log_level=a.log_level,
            access_log=a.access_log,
        )
    except UserError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 2


def register(app: typer.Typer, friendly) -> None:
    """Add the ``serve`` verb to the main ``littlevision`` Typer app (its plug-in hook)."""

    @app.command("serve")
    @friendly
    def serve_command(
        run: Annotated[Path, typer.Argument(help="The run folder to serve.", show_default=False)],
        host: Annotated[
            str, typer.Option(help="Address to bind (loopback by default).")
        ] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
        max_batch: Annotated[int, typer.Option(help="Most images per ONNX Runtime call.")] = 4,
        batch_wait_ms: Annotated[
            float,
            typer.Option(help="Longest an image waits for a fuller batch while the model is idle."),
        ] = 2.0,
        api_key_env: Annotated[
            str | None,
            typer.Option(help="Environment variable holding the API key for reload and feedback."),
        ] = None,
        max_queue: Annotated[
            int, typer.Option(help="Most images pending; past it requests get 429.")
        ] = 64,
        request_timeout_s: Annotated[
            float, typer.Option(help="Longest a request may wait for its answer (then 503).")
        ] = 30.0,
        max_body_mb: Annotated[float, typer.Option(help="Largest request body (then 413).")] = 20.0,
        threads: Annotated[
            int | None, typer.Option(help="ONNX Runtime threads (default: all cores).")
        ] = None,
        watch_interval_s: Annotated[
            float, typer.Option(help="Check the run folder for a new model this often (0: never).")
        ] = 2.0,
        log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
        access_log: Annotated[bool, typer.Option(help="One log line per request.")] = True,
        engine: Annotated[
            str, typer.Option(help="local (uvicorn) or ray (Ray Serve replicas).")
        ] = "local",
        replicas: Annotated[int, typer.Option(help="Ray Serve replicas (with --engine ray).")] = 1,
        address: Annotated[
            str | None, typer.Option(help="Ray cluster to join (default: a local Ray).")
        ] = None,
    ) -> None:
        """Serve a run over HTTP: predict, explain, feedback, metrics, a web page."""
        _configure_logging(log_level)
        if engine not in ("local", "ray"):
            raise UserError(f"Unknown engine '{engine}'. Use local or ray.")
        if engine == "ray":
            from littlevision.scale import serve_ray

            settings = build_settings(
                max_batch,
                batch_wait_ms,
                api_key_env,
                max_queue=max_queue,
                request_timeout_s=request_timeout_s,
                max_body_mb=max_body_mb,
                threads=threads,
                watch_interval_s=watch_interval_s,
            )
            code = serve_ray(
                run, replicas, settings=settings, address=address, host=host, port=port
            )
            if code:
                raise typer.Exit(code)
            return
        code = serve(
            run,
            host,
            port,
            max_batch,
            batch_wait_ms,
            api_key_env,
            max_queue=max_queue,
            request_timeout_s=request_timeout_s,
            max_body_mb=max_body_mb,
            threads=threads,
            watch_interval_s=watch_interval_s,
            log_level=log_level,
            access_log=access_log,
        )
        if code:
            raise typer.Exit(code)


if __name__ == "__main__":
    sys.exit(main())
