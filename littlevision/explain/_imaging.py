"""Small image helpers shared by the explainers: resizing, colour maps, tiling, encoding."""

from __future__ import annotations

import base64
import io
from functools import lru_cache

import numpy as np

from littlevision._plots import figure_png as figure_png  # the explainers call _imaging.figure_png


def resize_square(image: np.ndarray, size: int) -> np.ndarray:
    """Resize a whole uint8 RGB image to ``size`` x ``size``, as the ONNX contract asks."""
    try:  # the same resampling as training, when the data package provides it
        from littlevision.data.decode import resize_image
    except ImportError:
        resize_image = None
    if resize_image is not None:
        return resize_image(image, size)
    from PIL import Image

    if image.shape[:2] == (size, size):
        return image
    return np.asarray(
        Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR, reducing_gap=None)
    )


def resize_map(heatmap: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear upsampling of a float map [h, w] to [height, width] (pixel centres aligned)."""
    from PIL import Image

    if heatmap.shape == (height, width):
        return heatmap.astype(np.float32)
    img = Image.fromarray(np.ascontiguousarray(heatmap, dtype=np.float32), mode="F")
    return np.asarray(img.resize((width, height), Image.Resampling.BILINEAR), dtype=np.float32)


def fit_within(image: np.ndarray, max_side: int | None) -> np.ndarray:
    """Shrink ``image`` so its longer side is at most ``max_side`` (never enlarges)."""
    from PIL import Image

    h, w = image.shape[:2]
    if not max_side or max(h, w) <= max_side:
        return image
    scale = max_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS))


@lru_cache(maxsize=8)
def colormap_lut(name: str = "turbo") -> np.ndarray:
    """A [256, 3] uint8 lookup table for a matplotlib colour map."""
    import matplotlib

    cmap = matplotlib.colormaps[name]
    return (cmap(np.linspace(0.0, 1.0, 256))[:, :3] * 255 + 0.5).astype(np.uint8)


def colorize(values: np.ndarray, cmap: str = "turbo") -> np.ndarray:
    """Map floats in 0..1 [H, W] to uint8 RGB [H, W, 3]."""
    idx = (np.clip(values, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
    return colormap_lut(cmap)[idx]


def blend_heatmap(
    image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.5, cmap: str = "turbo"
) -> np.ndarray:
    """Overlay a 0..1 heatmap on a uint8 RGB image of any size.

    The colour's opacity grows with the heat, so cold regions keep the photo readable while the
    regions the model used stand out.
    """
    h, w = image.shape[:2]
    heat = resize_map(heatmap, h, w)
    colour = colorize(heat, cmap).astype(np.float32)
    a = (alpha * (0.3 + 0.7 * np.clip(heat, 0.0, 1.0)))[..., None]
    out = image.astype(np.float32) * (1.0 - a) + colour * a
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def normalize01(x: np.ndarray, axis=None, eps: float = 1e-12) -> np.ndarray:
    """Scale to 0..1 by min and max (along ``axis``); a constant input becomes zeros."""
    x = np.asarray(x, np.float32)
    lo = x.min(axis=axis, keepdims=True)
    span = x.max(axis=axis, keepdims=True) - lo
    return np.where(span > eps, (x - lo) / np.maximum(span, eps), 0.0).astype(np.float32)


def tile(
    images: np.ndarray, columns: int | None = None, pad: int = 2, background: int = 255
) -> np.ndarray:
    """Arrange uint8 images [N, H, W, 3] (or [N, H, W]) in a grid with ``pad`` pixels between."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = np.repeat(images[..., None], 3, axis=-1)
    n, h, w = images.shape[:3]
    columns = columns or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / columns))
    grid = np.full((rows * (h + pad) - pad, columns * (w + pad) - pad, 3), background, np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, columns)
        grid[r * (h + pad) : r * (h + pad) + h, c * (w + pad) : c * (w + pad) + w] = img
    return grid


def upscale_nearest(images: np.ndarray, factor: int) -> np.ndarray:
    """Enlarge [N, H, W, ...] images by an integer factor with square pixels (for tiny kernels)."""
    return np.repeat(np.repeat(images, factor, axis=1), factor, axis=2)


def encode(image: np.ndarray, fmt: str = "PNG", quality: int = 85) -> bytes:
    """uint8 RGB [H, W, 3] to PNG or JPEG bytes."""
    from PIL import Image

    buf = io.BytesIO()
    img = Image.fromarray(np.ascontiguousarray(image))
    if fmt.upper() in ("JPEG", "JPG"):
        img.save(buf, format="JPEG", quality=quality, optimize=True)
    else:
        img.save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def data_uri(data: bytes, mime: str = "image/png") -> str:
    """A ``data:`` URI, so an HTML page carries its images inside it."""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
