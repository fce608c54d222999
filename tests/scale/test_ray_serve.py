"""The Serve deployment answers like ``littlevision serve``: same probabilities, 4xx for junk."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from littlevision.bundle import Bundle
from littlevision.data.decode import load_image
from littlevision.inference import Predictor

pytestmark = pytest.mark.slow  # starts Ray Serve and a replica (~20 s on 2 busy cores)

BAD = {
    "empty": (b"", 400),
    "text": (b"hello, I am not an image\n" * 10, 422),
    "html": (b"<html><script>alert(1)</script></html>", 422),
}


def test_serve_deployment_answers_v1_predict(ray_local, tiny_run, cats_dogs_dir, free_port):
    import httpx

    from littlevision.scale import serve_ray
    from littlevision.serving import ServeSettings

    bundle = Bundle.load(tiny_run)
    predictor = Predictor.from_bundle(bundle)
    photos = [
        p.read_bytes()
        for cls in ("cats", "dogs")
        for p in sorted((cats_dogs_dir / "validation" / cls).iterdir())[:2]
    ]
    service = serve_ray(
        tiny_run, 1, port=free_port, blocking=False, settings=ServeSettings(watch_interval_s=0)
    )
    try:
        with httpx.Client(base_url=service.url, timeout=60) as client:
            for data in photos:
                r = client.post("/v1/predict", content=data, headers={"Content-Type": "image/jpeg"})
                assert r.status_code == 200, r.text
                body = r.json()
                expected = predictor.predict_array(load_image(data, bundle.image_size))
                got = np.array([body["probabilities"][label] for label in bundle.labels])
                np.testing.assert_allclose(got, expected, atol=1e-5)
                assert body["label"] == bundle.labels[int(expected.argmax())]
            photos[0] = photos[0][: len(photos[0]) // 2]
            for name, (data, status) in {**BAD, "truncated": (photos[0], 422)}.items():
                r = client.post("/v1/predict", content=data, headers={"Content-Type": "image/jpeg"})
                assert r.status_code == status, (name, r.text)
                assert r.json()["status"] == status
            # Concurrent requests all answered, through Serve's batching.
            with ThreadPoolExecutor(8) as pool:
                codes = list(
                    pool.map(
                        lambda d: (
                            client.post(
                                "/v1/predict", content=d, headers={"Content-Type": "image/jpeg"}
                            ).status_code
                        ),
                        photos[1:] * 4,
                    )
                )
            assert codes == [200] * len(codes)
            metrics = client.get("/metrics").text
            assert "littlevision_batch_size_count" in metrics
            assert client.get("/readyz").status_code == 200
    finally:
        service.shutdown()
