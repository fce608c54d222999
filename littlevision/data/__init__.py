"""Data in: listing labelled images (:class:`Dataset`) and decoding them safely (:func:`load_image`).

Everything in littlevision that reads an image goes through :mod:`littlevision.data.decode`, so a
file is accepted or refused for the same reason everywhere. The demo dataset writer lives in
:mod:`littlevision.data.demo` and is imported on use (it needs scikit-learn).
"""

from littlevision.data.dataset import SUBSETS, Dataset, Item, LoadReport
from littlevision.data.decode import (
    DECODE_REASONS,
    MAX_PIXELS,
    DecodeError,
    DecodeResult,
    ImageInfo,
    decode_many,
    iter_decoded,
    load_image,
    map_decoded,
    probe,
    resize_image,
)
from littlevision.data.demo import DIGITS_COUNT, write_digits_folder

__all__ = [
    "DECODE_REASONS",
    "DIGITS_COUNT",
    "MAX_PIXELS",
    "SUBSETS",
    "DecodeError",
    "DecodeResult",
    "Dataset",
    "ImageInfo",
    "Item",
    "LoadReport",
    "decode_many",
    "iter_decoded",
    "load_image",
    "map_decoded",
    "probe",
    "resize_image",
    "write_digits_folder",
]
