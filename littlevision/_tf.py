"""Import TensorFlow/Keras quietly and only when needed (the CLI's ``info`` must stay fast)."""

from __future__ import annotations

import os


def quiet_keras():
    """Return the ``keras`` module with TensorFlow's start-up chatter turned off."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras

    return keras
