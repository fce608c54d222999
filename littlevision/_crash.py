"""What the command line does when littlevision itself fails (a bug, not a user mistake).

The user gets one line naming a log file that holds the traceback, and exit code
:data:`EXIT_CRASH`, distinct from a user mistake (2) and from findings (1), so scripts and CI
can tell "fix your input" from "report a bug". The log holds the command line, versions and the
full traceback, ready to attach to a bug report.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path

#: Exit codes of the ``littlevision`` command.
EXIT_OK = 0
EXIT_FINDINGS = 1  # doctor --fail-on found problems of that severity
EXIT_USER = 2  # a user mistake: one sentence, no traceback
EXIT_CRASH = 3  # littlevision failed: one line naming the log with the traceback
EXIT_INTERRUPTED = 130  # Ctrl-C


def log_dir() -> Path:
    """Where crash logs go: ``LITTLEVISION_LOG_DIR``, else the user's log folder."""
    if os.environ.get("LITTLEVISION_LOG_DIR"):
        return Path(os.environ["LITTLEVISION_LOG_DIR"])
    import platformdirs

    return Path(platformdirs.user_log_dir("littlevision", appauthor=False))


def write_crash_log(exc: BaseException, argv: list[str] | None = None) -> Path:
    """Write the traceback of ``exc`` (with the command line and versions) to a new log file.

    Falls back to the temporary folder when the log folder cannot be written.

    Returns:
        The log file's path.
    """
    from littlevision import __version__

    argv = sys.argv if argv is None else argv
    text = (
        f"littlevision {__version__} crashed at {time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n"
        f"command: {' '.join(argv)}\n"
        f"python {platform.python_version()} on {platform.platform()}\n\n"
        + "".join(traceback.format_exception(exc))
    )
    name = f"crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    for folder in (log_dir(), Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / name
            path.write_text(text, encoding="utf-8")
            return path
        except OSError:
            continue
    raise exc  # nowhere to write: the traceback goes to the terminal after all


def crash_line(exc: BaseException, log: Path) -> str:
    """The one line a user sees."""
    what = str(exc).splitlines()[0][:120] if str(exc) else ""
    return (
        f"littlevision failed unexpectedly ({type(exc).__name__}{': ' + what if what else ''}). "
        f"This is a bug, not your input; the traceback is in {log}"
    )
