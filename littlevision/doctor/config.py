"""The doctor's settings: one frozen dataclass, passed explicitly, with thresholds that were
measured on real photos (see docs/doctor.md for how each was calibrated)."""

from __future__ import annotations

from dataclasses import dataclass

from littlevision.data.decode import MAX_PIXELS


@dataclass(frozen=True)
class DoctorConfig:
    """Thresholds and resources for :func:`~littlevision.doctor.examine`.

    Attributes:
        embeddings: Compute image embeddings. ``False`` makes a quick, model-free pass
            (``doctor --quick``): duplicates and leaks then rest on the perceptual hash alone,
            and the checks that cannot work without a model (labels, outliers) are not run.
        backbone: Backbone whose embeddings drive near duplicates, outliers and label checks
            (the one training uses, so its embedding cache is shared).
        precision: Backbone precision of the embeddings: ``fp32`` (exact), ``int8``
            (quantised, calibrated on the images themselves; cached apart from fp32 vectors) or
            ``auto`` (int8 where the CPU has int8 instructions). See docs/doctor.md.
        scan_size: Side of the small square every image is decoded to, once, for all pixel
            measures and the perceptual hash.
        workers: Decoding threads (default: the cores this process may use).
        max_pixels: Images over this many pixels are reported as decompression bombs.
        tiny_side: Images whose shorter side is under this many pixels are "tiny": the model
            sees them upscaled 3x or more.
        max_aspect: Longer side over shorter side above which an image is "extreme": it is
            squashed that much when resized to the model's square input.
        blank_contrast: Luma standard deviation (0-255) below which an image is blank.
        dark_level: 90th-percentile luma below which an image is too dark (cats-vs-dogs:
            never under 72).
        light_level: 10th-percentile luma above which an image is overexposed (cats-vs-dogs:
            never over 185, even for photos on white backgrounds).
        blur_sharpness: :func:`~littlevision.doctor.measures.sharpness` below which an image is
            very blurry (cats-vs-dogs at scan size: minimum 0.015, 0.3th percentile 0.026;
            a Gaussian blur of radius 5 on a 400 px photo: median 0.008).
        near_cosine: Embedding cosine similarity at or above which two images are near
            duplicates (distinct photos of cats-vs-dogs stay below 0.85).
        near_hamming: Perceptual-hash distance (bits of 64) at or below which two images are
            near duplicates (distinct photos stay at 12 or more).
        outlier_k: Neighbours whose mean similarity scores how typical an image is (10: a small
            cluster of off-topic images, say five screenshots, still stands out).
        outlier_z: Robust z-score of that distance above which an image is an outlier;
            ``None`` adapts it to the number of images N: ``max(3, sqrt(2 ln N))``, about the
            largest z that N ordinary images reach by chance (3.0 for 50 images, 4.0 for 2800).
        label_folds: Cross-validation folds for the out-of-fold label probabilities.
        label_c: Inverse regularisation of the cross-validated logistic regression.
        label_dims: Principal components the embeddings are projected on before it (speed).
        min_per_class: Classes with fewer images than this are flagged.
        imbalance_ratio: Largest class over smallest above which the imbalance is flagged.
        seed: Seed of the cross-validation folds.
        honour_reviews: Leave out findings a person marked "keep" in ``littlevision review``
            (the marks are in the data folder's journal, ``DATA.quarantine/journal.jsonl``).
    """

    embeddings: bool = True
    backbone: str = "lite0"
    precision: str = "fp32"
    scan_size: int = 128
    workers: int | None = None
    max_pixels: int = MAX_PIXELS
    tiny_side: int = 64
    max_aspect: float = 3.0
    blank_contrast: float = 5.0
    dark_level: float = 40.0
    light_level: float = 200.0
    blur_sharpness: float = 0.02
    near_cosine: float = 0.90
    near_hamming: int = 8
    outlier_k: int = 10
    outlier_z: float | None = None
    label_folds: int = 5
    label_c: float = 1.0
    label_dims: int | None = 128
    min_per_class: int = 10
    imbalance_ratio: float = 4.0
    seed: int = 0
    honour_reviews: bool = True
