"""What the machine offers: cores this process may use, and a one-line description of it."""

from __future__ import annotations

import os
import platform


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one), at least 1.

    Not ``os.cpu_count()``: in a container or under ``taskset`` the process may use fewer cores
    than the machine has, and one thread per usable core is what the model and decoder want.
    """
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def machine() -> str:
    """``"2 CPU cores (x86_64), Linux"``: the machine a measurement was made on."""
    return f"{available_cores()} CPU cores ({platform.machine()}), {platform.system()}"
