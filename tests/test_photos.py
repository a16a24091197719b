"""Real photos: colour, EXIF orientation, any size, streamed and cached, augmented, and
transfer learning from local pretrained weights. Real files and real models, no mocks."""

from __future__ import annotations

import base64
import io
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from PIL import Image

from mllife._errors import ConfigError
from mllife.config.project import CandidateConfig
from mllife.data.colour_photos import colour_photo, write_colour_photos
from mllife.models import build_model
from mllife.preprocess.images import ImagePreprocessor
from mllife.preprocess.pixels import PixelCache, PixelSet

REPO = Path(__file__).resolve().parents[1]


def _jpeg(image: Image.Image, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=92, **kwargs)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """120 synthetic colour JPEGs (40 per class), hue carrying the class."""
    folder = tmp_path_factory.mktemp("photos") / "photos"
    write_colour_photos(folder, per_class=40, seed=1)
    return folder


def _rows(folder: Path) -> pl.DataFrame:
    import hashlib

    files = sorted(folder.rglob("*.jpg"))
    return pl.DataFrame(
        {
            "path": [str(f) for f in files],
            "sha256": [hashlib.sha256(f.read_bytes()).hexdigest() for f in files],
            "label": [f.parent.name for f in files],
        }
    )


def _logreg_accuracy(rows: pl.DataFrame, pre: ImagePreprocessor) -> float:
    """Logistic regression on the pixels, alternate rows for training and testing."""
    from sklearn.linear_model import LogisticRegression

    x = pre.fit_transform(rows["path"].to_list()).reshape(rows.height, -1).numpy()
    y = rows["label"].to_numpy()
    train, test = np.arange(rows.height) % 2 == 0, np.arange(rows.height) % 2 == 1
    model = LogisticRegression(max_iter=2000).fit(x[train], y[train])
    return float((model.predict(x[test]) == y[test]).mean())


def test_colour_reaches_the_model_and_grayscale_cannot_tell_the_hues_apart(photos):
    rows = _rows(photos)
    colour = _logreg_accuracy(rows, ImagePreprocessor(size=16, channels=3))
    gray = _logreg_accuracy(rows, ImagePreprocessor(size=16, channels=1))
    assert colour >= 0.9, colour
    assert gray <= 0.6, gray  # three classes: chance is 0.33


def test_exif_rotated_photos_decode_upright_in_training_serving_and_the_gallery(tmp_path):
    from mllife.reporting.gallery import _thumbnail
    from mllife.serve._images import image_size

    upright = np.zeros((80, 40, 3), dtype=np.uint8)  # portrait: bright top, dark bottom
    upright[:40] = 230
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display": how a phone stores a portrait shot
    stored = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)
    payload = _jpeg(stored, exif=exif)
    path = tmp_path / "portrait.jpg"
    path.write_bytes(payload)
    pre = ImagePreprocessor(size=16, channels=3, resize="squash")
    for source in (path, payload):  # training reads paths, serving the uploaded bytes
        pixels = pre.pixel(source).float()
        assert pixels[:, :6].mean() > 200 and pixels[:, -6:].mean() < 30
    assert image_size(payload, position=0, max_pixels=10**6) == (80, 40)  # as stored
    thumb = Image.open(io.BytesIO(_thumbnail(path).data))
    assert thumb.height > thumb.width  # portrait, upright
    array = np.asarray(thumb.convert("L"), dtype=np.float64)
    assert array[: thumb.height // 4].mean() > 200 and array[-thumb.height // 4 :].mean() < 40


def test_normalising_gives_torchvisions_floats_without_importing_it():
    """``normalize`` repeats torchvision's to_dtype(scale=True) and normalize op for op
    (bit-equal), so a model trained before keeps its inputs; and a process that only
    normalises (the digits, served images of the trained size) never imports
    torchvision (~3 s)."""
    from torchvision.transforms.v2 import functional as F

    for channels in (1, 3):
        pre = ImagePreprocessor(size=16, channels=channels)
        pixels = torch.randint(0, 256, (20, channels, 16, 16), dtype=torch.uint8)
        pre.fit_stats([pixels])
        for batch in (pixels, torch.rand(4, channels, 16, 16)):
            expected = F.normalize(
                F.to_dtype(batch, torch.float32, scale=True), mean=pre.mean, std=pre.std
            )
            assert torch.equal(pre.normalize(batch), expected)
    script = (
        "import sys, torch\n"
        "from mllife.preprocess.images import ImagePreprocessor\n"
        "pre = ImagePreprocessor(size=8)\n"
        "pre.fit_stats([torch.randint(0, 256, (4, 1, 8, 8), dtype=torch.uint8)])\n"
        "pre.normalize(pre.pixels([torch.zeros(8, 8, dtype=torch.uint8).numpy()]))\n"
        "assert 'torchvision' not in sys.modules, 'torchvision was imported'\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True)


def test_any_size_becomes_a_square_without_distortion_and_thumbnails_stay_small(tmp_path):
    from mllife.reporting.gallery import _thumbnail

    wide = np.full((100, 400, 3), 100, dtype=np.uint8)  # a 4:1 gray photo...
    wide[:, 185:215] = 255  # ...with a white band in the middle
    path = tmp_path / "wide.jpg"
    path.write_bytes(_jpeg(Image.fromarray(wide)))
    crop = ImagePreprocessor(size=20, channels=1, resize="crop").pixel(path).float()[0]
    pad = ImagePreprocessor(size=20, channels=1, resize="pad").pixel(path).float()[0]
    # crop: the centre square, unstretched (the band stays narrow, gray either side)
    assert crop[:, 8:12].mean() > 200 and crop[:, :3].mean() < 130 and crop[:, -3:].mean() < 130
    # pad: the whole photo, letterboxed with black above and below
    assert pad[:6].mean() < 10 and pad[-6:].mean() < 10 and pad[8:11].mean() > 80
    big = tmp_path / "big.jpg"
    big.write_bytes(_jpeg(colour_photo("red", np.random.default_rng(0), size=(3000, 2000))))
    assert big.stat().st_size > 50_000
    assert len(_thumbnail(big).data) < 6_000  # a 6 MP photo becomes a few KB


def test_hostile_photos_are_converted_or_dropped_with_a_reason(tmp_path):
    from mllife.data.images import clean_images, scan_image_folder

    folder = tmp_path / "data"
    for label in ("a", "b"):
        (folder / label).mkdir(parents=True)
    rng = np.random.default_rng(0)
    good = _jpeg(colour_photo("red", rng, size=(64, 48)))
    (folder / "a" / "ok.jpg").write_bytes(good)
    (folder / "a" / "truncated.jpg").write_bytes(good[: len(good) // 2])
    Image.new("CMYK", (30, 20), (10, 200, 30, 0)).save(folder / "a" / "cmyk.jpg")
    sixteen = (np.arange(400).reshape(20, 20) * 150).astype(np.uint16)
    Image.fromarray(sixteen).save(folder / "b" / "deep.png")  # mode I;16
    frames = [Image.new("P", (16, 16), i) for i in (1, 2, 3)]
    frames[0].save(folder / "b" / "anim.gif", save_all=True, append_images=frames[1:])
    Image.new("L", (1, 1), 128).save(folder / "b" / "dot.png")
    Image.new("L", (12, 12), 30).save(folder / "b" / "gray.png")  # gray in a colour set
    bomb = io.BytesIO()
    Image.new("1", (30_000, 30_000)).save(bomb, format="PNG")
    (folder / "b" / "bomb.png").write_bytes(bomb.getvalue())
    manifest = scan_image_folder(folder, root=tmp_path, max_pixels=50_000_000)
    kept, dropped = clean_images(manifest)
    reasons = dict(zip(dropped["path"].str.split("/").list.last(), dropped["reason"], strict=True))
    assert set(reasons) == {"truncated.jpg", "bomb.png"}, reasons
    assert re.search("decompression bomb|pixel limit", reasons["bomb.png"]), reasons["bomb.png"]
    pre = ImagePreprocessor(size=8, channels=3)
    pixels = pre.pixels([tmp_path / p for p in kept["path"].to_list()])
    assert pixels.shape == (kept.height, 3, 8, 8) and pixels.dtype == torch.uint8
    assert int(pixels[[p.endswith("deep.png") for p in kept["path"]]].max()) > 100  # 16->8 bit


def test_streaming_decodes_once_and_the_cache_serves_later_epochs_and_candidates(photos, tmp_path):
    rows = _rows(photos)
    pre = ImagePreprocessor(size=16, channels=3)
    cache = PixelCache(tmp_path / "cache")
    first = PixelSet(rows, root=tmp_path, preprocessor=pre, cache=cache)
    pixels = first.all()
    assert first.decoded == rows.height and pixels.shape == (rows.height, 3, 16, 16)
    again = PixelSet(rows, root=tmp_path, preprocessor=pre, cache=cache)  # next epoch/run
    assert torch.equal(again.all(), pixels) and again.decoded == 0
    other = again.with_preprocessor(ImagePreprocessor(size=24, channels=3))
    other.all()
    assert other.decoded == rows.height  # other settings: their own cache entries


_PEAK = """
import resource, sys
from pathlib import Path
import numpy as np, polars as pl, hashlib
from mllife.preprocess.images import ImagePreprocessor
from mllife.preprocess.pixels import PixelCache, PixelSet
from mllife.config.project import CandidateConfig
from mllife.models import build_model
files = sorted(Path(sys.argv[1]).rglob('*.jpg'))[: int(sys.argv[2])]
rows = pl.DataFrame({'path': [str(f) for f in files],
    'sha256': [hashlib.sha256(f.read_bytes()).hexdigest() for f in files],
    'label': [f.parent.name for f in files]})
pre = ImagePreprocessor(size=32, channels=3)
data = PixelSet(rows, root=Path('/'), preprocessor=pre, cache=PixelCache(Path(sys.argv[3])))
pre.fit_stats(data.batches(32))
classes = sorted(set(rows['label']))
y = np.array([classes.index(v) for v in rows['label']])
spec = CandidateConfig(name='cnn', kind='torch', architecture='small_cnn',
    params={'epochs': 2, 'batch_size': 32, 'patience': 5})
model = build_model(spec, classes=classes, preprocessor=pre)
model.fit(data, y, data, y, log=lambda _: None)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def test_peak_memory_does_not_grow_with_the_number_of_photos(tmp_path):
    folder = tmp_path / "many"
    write_colour_photos(folder, per_class=200, seed=3)  # 600 photos up to 640 px

    def peak(n: int) -> int:
        done = subprocess.run(
            [sys.executable, "-c", _PEAK, str(folder), str(n), str(tmp_path / f"c{n}")],
            capture_output=True, text=True, check=True, cwd=REPO,
        )  # fmt: skip
        return int(done.stdout.strip().splitlines()[-1])

    small, large = peak(150), peak(600)
    assert large <= small * 1.2, (small, large)  # KB of peak RSS: 4x the photos


# -- transfer learning ---------------------------------------------------------------


def _shape_photo(kind: str, rng, palette) -> np.ndarray:
    """A 32 px photo of a circle, a square or a cross, in random colours of ``palette``."""
    image = Image.new("RGB", (32, 32), tuple(int(v) for v in rng.integers(0, 80, 3)))
    from PIL import ImageDraw

    draw = ImageDraw.Draw(image)
    colour = tuple(int(v) for v in palette[rng.integers(len(palette))])
    x, y, r = rng.integers(10, 22), rng.integers(10, 22), rng.integers(6, 10)
    if kind == "circle":
        draw.ellipse([x - r, y - r, x + r, y + r], fill=colour)
    elif kind == "square":
        draw.rectangle([x - r, y - r, x + r, y + r], fill=colour)
    else:
        draw.rectangle([x - r, y - 2, x + r, y + 2], fill=colour)
        draw.rectangle([x - 2, y - r, x + 2, y + r], fill=colour)
    noise = rng.normal(0, 8, (32, 32, 3))
    return np.clip(np.asarray(image, dtype=np.float64) + noise, 0, 255).astype(np.uint8)


def _shape_task(kinds, palette, n, seed):
    """(images, label indices) of ``n`` shape photos."""
    rng = np.random.default_rng(seed)
    labels = [kinds[i % len(kinds)] for i in range(n)]
    return [_shape_photo(k, rng, palette) for k in labels], np.array(
        [kinds.index(k) for k in labels]
    )


def _epochs_to(history, target: float) -> int:
    return next((h["epoch"] for h in history if h["val_accuracy"] >= target), 10**6)


@pytest.fixture(scope="module")
def backbones(tmp_path_factory) -> dict[str, Path]:
    """Two local weights files of torchvision's resnet18: one pretrained here on task A
    (circles, squares and crosses in warm colours), one untrained (the same architecture
    from scratch, through the same loading path)."""
    import torchvision

    warm = np.array([[230, 60, 40], [240, 180, 30], [220, 90, 160]])
    images, y = _shape_task(["circle", "square", "cross"], warm, 600, seed=0)
    x = ImagePreprocessor(size=32, channels=3).fit_transform(images)
    torch.manual_seed(0)
    network = torchvision.models.resnet18(weights=None, num_classes=3)
    scratch = {k: v.clone() for k, v in network.state_dict().items()}
    optimizer = torch.optim.AdamW(network.parameters(), lr=2e-3)
    network.train()
    for _ in range(6):
        for idx in torch.randperm(len(x)).split(32):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(network(x[idx]), torch.as_tensor(y[idx])).backward()
            optimizer.step()
    folder = tmp_path_factory.mktemp("weights")
    torch.save(network.state_dict(), folder / "shapes_resnet18.pt")
    torch.save(scratch, folder / "untrained_resnet18.pt")
    return {
        "pretrained": folder / "shapes_resnet18.pt",
        "scratch": folder / "untrained_resnet18.pt",
    }


def _finetune(weights: Path, train, validation):
    (images, y), (val_images, yv) = train, validation
    pre = ImagePreprocessor(size=32, channels=3)
    spec = CandidateConfig(
        name="tl", kind="torch", architecture="resnet18", weights=str(weights),
        params={"epochs": 8, "batch_size": 32, "lr": 1e-3, "patience": 8, "seed": 0},
    )  # fmt: skip
    model = build_model(spec, classes=["circle", "cross"], preprocessor=pre)
    x = model.preprocessor.transform(images)  # the backbone's own normalisation
    xv = model.preprocessor.transform(val_images)
    fit = model.fit(x, y, xv, yv, log=lambda _: None)
    return _epochs_to(fit.history, 0.9), max(h["val_accuracy"] for h in fit.history)


def test_fine_tuning_from_local_weights_learns_a_related_task_in_fewer_epochs(backbones):
    cool = np.array([[40, 120, 230], [60, 200, 200], [120, 80, 220]])  # task B: new colours
    train = _shape_task(["circle", "cross"], cool, 120, seed=5)
    validation = _shape_task(["circle", "cross"], cool, 200, seed=6)
    pretrained_epochs, pretrained_best = _finetune(backbones["pretrained"], train, validation)
    scratch_epochs, scratch_best = _finetune(backbones["scratch"], train, validation)
    assert pretrained_best >= 0.9
    assert pretrained_epochs < scratch_epochs, (pretrained_epochs, scratch_epochs, scratch_best)


def test_missing_weights_are_a_clear_error_naming_the_path(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    pre = ImagePreprocessor(size=32, channels=3)
    spec = CandidateConfig(name="r", kind="torch", architecture="resnet18", weights="nope.pt")
    with pytest.raises(ConfigError, match=r"weights file .*nope\.pt does not exist"):
        build_model(spec, classes=["a", "b"], preprocessor=pre, root=tmp_path)
    spec = spec.model_copy(update={"weights": "IMAGENET1K_V1"})
    expected = tmp_path / "torch-home" / "hub" / "checkpoints"
    with pytest.raises(ConfigError, match=f"expected {re.escape(str(expected))}.*never downloads"):
        build_model(spec, classes=["a", "b"], preprocessor=pre, root=tmp_path)


def test_a_torchvision_weights_name_is_loaded_from_the_hub_cache(tmp_path, monkeypatch):
    """The real loading path for torchvision weights: the file where torchvision keeps
    what it downloads (here put there by hand: nothing is downloaded)."""
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    entry = torchvision.models.MobileNet_V3_Small_Weights.IMAGENET1K_V1
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(entry.url).name
    cached.parent.mkdir(parents=True)
    reference = torchvision.models.mobilenet_v3_small(weights=None)
    torch.save(reference.state_dict(), cached)
    spec = CandidateConfig(
        name="m", kind="torch", architecture="mobilenet_v3_small", weights="IMAGENET1K_V1"
    )
    model = build_model(
        spec, classes=["a", "b"], preprocessor=ImagePreprocessor(size=32, channels=3)
    )
    own = model.network.state_dict()
    assert torch.equal(own["features.0.0.weight"], reference.state_dict()["features.0.0.weight"])
    assert own["classifier.3.weight"].shape == (2, 1024)  # a new head for two classes
    assert model.preprocessor.mean == pytest.approx([0.485, 0.456, 0.406])  # its own stats


class TinyNet(torch.nn.Module):
    """A user's own module, named by import path in mllife.toml."""

    def __init__(self, num_classes: int, width: int = 8) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(3, width, 3, padding=1), torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
        )  # fmt: skip
        self.head = torch.nn.Linear(width, num_classes)

    def forward(self, x):
        return self.head(self.body(x))


def test_a_users_own_module_trains_saves_and_loads(photos, tmp_path):
    from mllife.models.registry import load_model, save_model

    rows = _rows(photos)
    pre = ImagePreprocessor(size=16, channels=3)
    x = pre.fit_transform(rows["path"].to_list())
    classes = sorted(set(rows["label"]))
    y = np.array([classes.index(v) for v in rows["label"]])
    spec = CandidateConfig(
        name="mine", kind="torch", module="tests.test_photos.TinyNet",
        params={"width": 12, "epochs": 3, "seed": 0},
    )  # fmt: skip
    model = build_model(spec, classes=classes, preprocessor=pre)
    model.fit(x, y, x, y, log=lambda _: None)
    ref = save_model(model, artifacts_dir=tmp_path)
    again = load_model(ref, artifacts_dir=tmp_path, store=None)
    assert isinstance(again.network, TinyNet) and again.network.head.in_features == 12
    paths = rows["path"].to_list()[:10]
    assert list(again.predict(paths)) == list(model.predict(paths))
    bad = spec.model_copy(update={"module": "collections.OrderedDict"})
    with pytest.raises(ConfigError, match="not a torch.nn.Module class"):
        build_model(bad, classes=classes, preprocessor=pre)


def test_augmentation_changes_training_photos_only(photos):
    from mllife.preprocess.augment import build_augment

    augment = build_augment({"hflip": True, "crop": 0.5, "rotation": 20, "color_jitter": 0.3}, 16)
    pixels = ImagePreprocessor(size=16, channels=3).pixel(sorted(photos.rglob("*.jpg"))[0])
    torch.manual_seed(0)
    changed = [not torch.equal(augment(pixels), pixels) for _ in range(5)]
    assert all(changed) and augment(pixels).dtype == torch.uint8
    assert build_augment(None, 16) is None and build_augment({}, 16) is None


# -- the lifecycle on photos: embedding candidate, serving, known problems --------------

PHOTO_PROJECT = """
[data]
path = "data/photos"
image_size = 32

[split]
seed = 0

[[candidates]]
name = "embed"
kind = "embedding"
architecture = "resnet18"
weights = "{weights}"
params = {{ max_iter = 3000 }}

[[candidates]]
name = "cnn"
kind = "torch"
architecture = "small_cnn"
params = {{ epochs = 2, batch_size = 32, seed = 0 }}
augment = {{ hflip = true }}

[training]
baselines = []

[promotion]
min_accuracy = 0.5
max_val_test_gap = 0.5
"""


def test_photo_lifecycle_embedding_candidate_serves_what_evaluation_predicted(
    photos, backbones, tmp_path, capsys
):
    import shutil

    from assets.runtime.run import run_lifecycle
    from mllife.config.project import load_config
    from mllife.models.registry import ModelRef, load_model
    from mllife.preprocess.inputs import split_rows
    from mllife.problems.registry import ProblemRegistry
    from mllife.promotion.deploy import promote_model
    from mllife.serve.keys import create_key
    from mllife.storage.store import Store
    from tests.serving import ServerProcess

    root = tmp_path / "project"
    shutil.copytree(photos, root / "data" / "photos")
    (root / "mllife.toml").write_text(PHOTO_PROJECT.format(weights=backbones["pretrained"]))
    config = load_config(root / "mllife.toml")
    store = Store(config.store_path)
    registry = ProblemRegistry(config, store)
    registry.add_problem("reds", description="red photos read as another colour")
    for file in sorted((root / "data" / "photos" / "red").glob("*.jpg"))[:10]:
        registry.add_pattern(
            "reds", input=file, expected="red", kind="positive", source="contrived",
            classes=["blue", "green", "red"],
        )  # fmt: skip
    # a colour problem the model fails (blue photos a client wants read as red): the
    # report's next steps point to colour jitter, the articles' countermeasure
    registry.add_problem("blue_tint", description="a blue colour filter confuses it")
    for file in sorted((root / "data" / "photos" / "blue").glob("*.jpg"))[:4]:
        registry.add_pattern(
            "blue_tint", input=file, expected="red", kind="positive", source="contrived",
            classes=["blue", "green", "red"],
        )  # fmt: skip
    outcome = run_lifecycle(config.path, log_level="WARNING")
    assert outcome.ok, "\n".join(outcome.lines)
    report = next(line for line in outcome.lines if line.startswith("report: "))
    page = Path(report.removeprefix("report: ")).read_text()
    assert "augmented: h-flip" in page and "embeddings + LogisticRegression" in page
    assert "color_jitter = 0.3" in page
    # where the backbone came from, exactly: every tensor but the (unused) head
    weights_file = backbones["pretrained"]
    said = f"backbone: 120 of 120 tensors from {weights_file} (sha256 "
    assert said in page and "head not used (embeddings)" in page
    assert "data:image/jpeg;base64," in page or "No validation example is misclassified" in page
    embeddings = sorted((config.state_dir / "cache" / "embeddings").rglob("*.npy"))
    # every photo embedded once (the sealed test photos only when embed was the challenger,
    # the one candidate whose test set is read)...
    chosen = store.query("SELECT name FROM challengers ORDER BY created_at DESC LIMIT 1")
    test_photos = store.query("SELECT n_test FROM splits")["n_test"][0]
    assert len(embeddings) == 120 - (0 if chosen["name"][0] == "embed" else test_photos)
    # one entry edited on disk: the next run computes it again and says so in its log
    tampered = embeddings[0]
    tampered.write_bytes(tampered.read_bytes()[:-4] + b"\0\0\0\0")
    stamps = [p.stat().st_mtime_ns for p in embeddings]
    outcome = run_lifecycle(config.path, log_level="WARNING", force=True)  # trains again
    assert outcome.ok
    again = sorted((config.state_dir / "cache" / "embeddings").rglob("*.npy"))
    changed = [p for p, stamp in zip(again, stamps, strict=True) if p.stat().st_mtime_ns != stamp]
    assert changed == [tampered]  # ...and the others never again
    from assets.runtime.run import prepare_instance

    messages = [e.message for e in prepare_instance(config).all_logs(outcome.run_id)]
    assert any(str(tampered) in m and "content digest" in m for m in messages), messages
    assert any(m.startswith(f"embed: {said}") for m in messages), messages  # the training log

    row = store.query("SELECT * FROM models WHERE name = 'embed'").row(0, named=True)
    ref = ModelRef.from_row(row)
    scored = store.query(
        "SELECT count(*) AS n FROM pattern_results WHERE model_hash = ?", [ref.model_hash]
    )
    assert scored["n"][0] == 14  # scored on the known problems like any model
    if store.champion().model_hash != ref.model_hash:
        promote_model(ref.model_hash, config=config, store=store, reason="test: embedding")
    model = load_model(ref, artifacts_dir=config.artifacts_dir, store=store)
    assert model.backbone_summary.startswith(said)  # it travels in the artifact
    from mllife.cli import main as cli

    capsys.readouterr()
    assert cli(["--config", str(config.path), "status"]) == 0
    assert f"  {said}" in capsys.readouterr().out
    from assets.graph.step_outputs import for_project

    splits = for_project(config).load_value(outcome.run_id, "splits")
    validation = split_rows(splits.rows, "validation")
    files = [root / p for p in validation["path"].to_list()]
    evaluated = list(model.predict(files))
    # slices of photos also group what the backbone sees alike (from the cached vectors)
    from mllife.evaluation.slices import embedding_clusters

    clusters = embedding_clusters(config, ref, validation, store=store)
    assert len(clusters) == validation.height and 2 <= clusters.n_unique() <= 8
    key = create_key(store, "alice")
    with ServerProcess(config.path) as server:
        payload = {"images": [base64.b64encode(f.read_bytes()).decode() for f in files]}
        status, body = server.request("POST", "/predict", payload, key=key)
    assert status == 200 and body["model"] == "embed"
    assert [p["label"] for p in body["predictions"]] == evaluated

    # weights that do not fit the architecture: the candidate stops before training with
    # the reason, nothing new is recorded, the champion stays
    import torchvision

    wrong = tmp_path / "resnet34.pt"
    torch.save(torchvision.models.resnet34(weights=None).state_dict(), wrong)
    config.path.write_text(config.path.read_text().replace(str(weights_file), str(wrong)))
    models, champion = store.models().height, store.champion().model_hash
    outcome = run_lifecycle(config.path, log_level="WARNING")
    assert not outcome.ok
    messages = [e.message or "" for e in prepare_instance(config).all_logs(outcome.run_id)]
    assert any(f"weights file {wrong} does not fit resnet18" in m for m in messages)
    assert store.models().height == models and store.champion().model_hash == champion


_CHECKPOINTED = """
import sys
from pathlib import Path
import numpy as np, torch
from mllife.config.project import CandidateConfig
from mllife.models import build_model
from mllife.preprocess.images import ImagePreprocessor
rng = np.random.default_rng(0)
images = [rng.integers(0, 255, (12, 12, 3), dtype=np.uint8) for _ in range(64)]
y = np.array([int(im[..., 0].mean() > 127) for im in images])
pre = ImagePreprocessor(size=12, channels=3)
x = pre.fit_transform(images)
spec = CandidateConfig(name='cnn', kind='torch', architecture='small_cnn',
    params={'epochs': 4, 'patience': 10, 'batch_size': 16, 'seed': 0})
model = build_model(spec, classes=['dark', 'light'], preprocessor=pre)
model.checkpoint_path = Path(sys.argv[1])
fit = model.fit(x, y, x, y, log=print)
print('epochs', [h['epoch'] for h in fit.history])
print('losses', [round(h['train_loss'], 6) for h in fit.history])
import hashlib
print('model', hashlib.sha256(model.to_bytes()).hexdigest())
"""


def test_a_training_killed_mid_way_resumes_from_its_last_finished_epoch(tmp_path):
    """...and ends with the very model an uninterrupted fit makes (same weights, same
    artifact hash): the checkpoint keeps the random state (shuffle, dropout)."""
    import os

    uninterrupted = subprocess.run(
        [sys.executable, "-c", _CHECKPOINTED, str(tmp_path / "other.pt")],
        capture_output=True, text=True, cwd=REPO, check=True,
    ).stdout.splitlines()[-2:]  # fmt: skip
    checkpoint = tmp_path / "cnn.pt"
    command = [sys.executable, "-c", _CHECKPOINTED, str(checkpoint)]
    env = {**os.environ, "MLLIFE_CRASH_AT": "training:epoch#3"}
    killed = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=env)
    assert killed.returncode == -9  # SIGKILLed during the third epoch
    assert torch.load(checkpoint, weights_only=True)["epoch"] == 2
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, check=True)
    assert "resuming from the checkpoint of epoch 2" in done.stdout
    assert "epochs [1, 2, 3, 4]" in done.stdout and "epoch   1/4" not in done.stdout
    # every epoch's training loss (the resumed ones too) and the model's hash
    assert done.stdout.splitlines()[-2:] == uninterrupted
    assert not checkpoint.exists()  # the artifact takes over once training finished


def test_new_photos_drift_in_the_champions_embedding_space(photos):
    from mllife.monitoring.drift import drift
    from mllife.monitoring.images import embedding_columns, model_embeddings

    rows = _rows(photos)
    pre = ImagePreprocessor(size=16, channels=3)
    x = pre.fit_transform(rows["path"].to_list())
    classes = sorted(set(rows["label"]))
    y = np.array([classes.index(v) for v in rows["label"]])
    spec = CandidateConfig(
        name="cnn", kind="torch", architecture="small_cnn", params={"epochs": 2, "seed": 0}
    )
    model = build_model(spec, classes=classes, preprocessor=pre)
    model.fit(x, y, x, y, log=lambda _: None)
    vectors = model_embeddings(model, x)
    assert vectors.shape == (rows.height, 64)  # the input of small_cnn's last layer
    reds = (rows["label"] == "red").to_numpy()
    same_a, same_b = embedding_columns(vectors[::2], vectors[1::2])
    assert not drift(same_a, same_b).drifted_columns  # the same kind of photos
    ref, cur = embedding_columns(vectors[~reds], vectors[reds])  # only red ones arrive
    report = drift(ref, cur)
    assert report.drifted_columns and report.drifted_columns[0].startswith("embedding_pc")


def test_a_split_that_fits_the_memory_budget_is_read_once_and_trained_from_memory(photos, tmp_path):
    rows = _rows(photos)
    pre = ImagePreprocessor(size=16, channels=3)
    data = PixelSet(rows, root=tmp_path, preprocessor=pre, cache=PixelCache(tmp_path / "c"))
    assert data.held() is None  # no budget: streamed
    data.memory_limit = rows.height * 3 * 16 * 16
    held = data.held()
    assert held is not None and held.shape == (rows.height, 3, 16, 16)
    assert data.decoded == rows.height and torch.equal(data[5], held[5])
    pre.fit_stats([held])
    classes = sorted(set(rows["label"]))
    y = np.array([classes.index(v) for v in rows["label"]])
    spec = CandidateConfig(
        name="cnn", kind="torch", architecture="small_cnn", params={"epochs": 2, "seed": 0}
    )
    model = build_model(spec, classes=classes, preprocessor=pre)
    model.fit(data, y, data, y, log=lambda _: None)
    assert data.decoded == rows.height  # every epoch read memory, not the cache
    small = PixelSet(rows, root=tmp_path, preprocessor=pre, cache=PixelCache(tmp_path / "c"))
    small.memory_limit = rows.height * 3 * 16 * 16 - 1
    assert small.held() is None  # one byte over: streamed
