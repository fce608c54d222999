"""The fused affine augmentation and the tf.data pipeline, on real photos."""

from __future__ import annotations

import numpy as np
import pytest

from littlevision.training import augment as aug


@pytest.fixture(scope="module")
def photos(small_folder):
    from littlevision.data.decode import decode_many

    files = sorted(small_folder.rglob("*.jpg"))[::4]
    return decode_many(files, 64).images  # [10, 64, 64, 3] uint8


def test_zero_ranges_give_identity_matrices():
    m = aug.affine_matrices(np.array([3, 4]), 5, 64, 48, aug.AffineAugment()).numpy()
    np.testing.assert_allclose(m, np.tile([1, 0, 0, 0, 1, 0, 0, 0], (5, 1)), atol=1e-6)


def test_flip_alone_mirrors_exactly_or_leaves_alone(photos):
    out = aug.augment_array(photos, seed=7, config=aug.AffineAugment(horizontal_flip=True))
    same = [np.array_equal(a, b) for a, b in zip(photos, out, strict=True)]
    mirrored = [np.array_equal(a[:, ::-1], b) for a, b in zip(photos, out, strict=True)]
    assert all(s or m for s, m in zip(same, mirrored, strict=True))
    assert any(same) and any(mirrored)


def test_a_pure_shift_moves_pixels_by_the_drawn_amount():
    image = np.zeros((1, 32, 32, 3), np.uint8)
    image[0, 10:20, 10:20] = 255
    config = aug.AffineAugment(width_shift=0.25, fill_mode="constant")
    m = aug.affine_matrices(np.array([1, 2]), 1, 32, 32, config).numpy()[0]
    out = aug.augment_batch(image, np.array([1, 2]), config).numpy()[0]
    dx = m[2]  # output x reads input x + dx
    assert abs(dx) > 0.5 and np.allclose(m[[0, 1, 3, 4, 5]], [1, 0, 0, 1, 0], atol=1e-6)
    cols = np.where(out[16, :, 0] > 127)[0]
    assert abs(cols.min() - (10 - dx)) <= 1 and abs(cols.max() - (19 - dx)) <= 1


def test_tutorial_augmentation_changes_images_but_keeps_them_photos(photos):
    out = aug.augment_array(photos, seed=1, config=aug.TUTORIAL_PREVIEW)
    assert out.shape == photos.shape and out.dtype == np.uint8
    diff = np.abs(out.astype(int) - photos.astype(int)).mean(axis=(1, 2, 3))
    assert (diff > 1).all()
    # the content is moved, not destroyed: brightness is about the same
    assert np.abs(out.mean(axis=(1, 2, 3)) - photos.mean(axis=(1, 2, 3))).max() < 40


def test_same_seed_same_images_other_seed_other_images(photos):
    a = aug.augment_array(photos, seed=3, config=aug.TUTORIAL)
    b = aug.augment_array(photos, seed=3, config=aug.TUTORIAL)
    c = aug.augment_array(photos, seed=4, config=aug.TUTORIAL)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def _batches(ds):
    return [tuple(np.asarray(t) for t in batch) for batch in ds]


def test_training_batches_are_reproducible_and_resume_exactly(photos):
    y = np.arange(len(photos)) % 2
    kw = dict(batch_size=4, seed=5, config=aug.TUTORIAL, epochs=3)
    full = _batches(aug.training_dataset(photos, y, **kw))
    again = _batches(aug.training_dataset(photos, y, **kw))
    resumed = _batches(aug.training_dataset(photos, y, initial_epoch=2, **kw))
    steps = aug.steps(len(photos), 4)
    assert len(full) == 3 * steps
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(full, again, strict=True))
    assert all(
        np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
        for a, b in zip(full[2 * steps :], resumed, strict=True)
    )
    # every image once per epoch, in another order each epoch
    labels_epoch = [
        np.concatenate([b[1] for b in full[e * steps : (e + 1) * steps]]) for e in range(3)
    ]
    assert all(sorted(ls) == sorted(y) for ls in labels_epoch)
    assert full[0][0].dtype == np.float32 and full[0][0].max() <= 255.0


def test_views_and_sample_weights(photos):
    n = len(photos)
    stack = np.concatenate([np.zeros((n, 2), np.float32), np.ones((n, 2), np.float32)])
    y = np.arange(n) % 2
    w = np.where(y == 1, 3.0, 0.5).astype(np.float32)
    batches = _batches(
        aug.training_dataset(
            stack, y, batch_size=n, seed=0, config=aug.NONE, epochs=4, views=2, sample_weights=w
        )
    )
    seen_views = np.concatenate([b[0][:, 0] for b in batches])
    assert set(seen_views) == {0.0, 1.0}
    for _x, labels, weights in batches:
        np.testing.assert_array_equal(weights, np.where(labels == 1, 3.0, 0.5))
    with pytest.raises(ValueError, match="views"):
        aug.training_dataset(
            stack[:-1], y, batch_size=4, seed=0, config=aug.NONE, epochs=1, views=2
        )


def test_eval_batches_are_the_images_unchanged(photos):
    out = np.concatenate([np.asarray(b) for b in aug.eval_dataset(photos, None, 4)])
    np.testing.assert_array_equal(out, photos.astype(np.float32))


def test_bad_ranges_are_refused():
    with pytest.raises(ValueError, match="zoom"):
        aug.AffineAugment(zoom=1.2)
    with pytest.raises(ValueError, match="rotation"):
        aug.AffineAugment(rotation=-3)
    with pytest.raises(ValueError, match="fill_mode"):
        aug.AffineAugment(fill_mode="mirror")
