"""Import TensorFlow/Keras quietly and only when needed (the CLI's ``info`` must stay fast)."""

from __future__ import annotations

import os
import sys


def quiet_keras():
    """Return the ``keras`` module with TensorFlow's start-up chatter turned off.

    TensorFlow 2.21 writes absl/oneDNN notices straight to file descriptor 2 while its native
    libraries load, whatever TF_CPP_MIN_LOG_LEVEL says; a user's terminal should not show them,
    so stderr is pointed at /dev/null for the duration of the first import only.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    if "keras" in sys.modules and "tensorflow" in sys.modules:
        return sys.modules["keras"]
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import keras
        import tensorflow as tf

        tf.constant(0)  # the first op loads the last native libraries (and their notices)
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    return keras
