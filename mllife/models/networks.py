"""The networks a torch candidate can name, and their pretrained weights.

- built in: ``small_cnn``, ``mlp``, ``resnet18`` (untrained, small-image stem);
- any torchvision classification architecture (``resnet50``, ``efficientnet_b0``,
  ``mobilenet_v3_small``, ``convnext_tiny``, ``vit_b_16``...), built without weights and
  then given ``weights`` from a local file or the torch hub cache;
- ``timm:<name>`` when timm is installed;
- the user's own ``nn.Module`` by import path (``module``).

Nothing is downloaded at run time: a weights name (``DEFAULT``, ``IMAGENET1K_V1``) is
looked up in the torch hub cache (``torch.hub.get_dir()/checkpoints``), where torchvision
itself keeps what it downloads; a missing file is a :class:`ConfigError` naming the path
and how to put the file there.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import math
from pathlib import Path

import torch
from torch import nn

from mllife._errors import ConfigError

__all__ = [
    "BUILT_IN",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "Backbone",
    "build_network",
    "classifier_head",
    "file_sha256",
    "head_name",
    "resolve_weights",
    "unwrapped",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class SmallCNN(nn.Module):
    """Two 3x3 convolutions and a small head; fits small images of any size."""

    def __init__(self, *, n_classes: int, input_shape: tuple[int, ...], width: int = 16) -> None:
        super().__init__()
        _needs_images("small_cnn", input_shape)
        self.features = nn.Sequential(
            nn.Conv2d(input_shape[0], width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d((4, 4)),
        )
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(2 * width * 16, 64),
            nn.ReLU(),
            nn.Dropout(0.2),
            nn.Linear(64, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class MLP(nn.Module):
    """A multilayer perceptron on the flattened input."""

    def __init__(
        self, *, n_classes: int, input_shape: tuple[int, ...], hidden: int = 128, dropout=0.1
    ) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(math.prod(input_shape), hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _needs_images(architecture: str, input_shape: tuple[int, ...]) -> None:
    if len(input_shape) != 3:
        raise ConfigError(f"architecture {architecture!r} needs images; for a table use 'mlp'")


def small_resnet18(*, n_classes: int, input_shape: tuple[int, ...]) -> nn.Module:
    """torchvision's resnet18, untrained, with a stem for the image's channels; small
    inputs keep their resolution (3x3 stride-1 stem, no max-pool, as for CIFAR)."""
    from torchvision.models import resnet18

    _needs_images("resnet18", input_shape)
    model = resnet18(weights=None, num_classes=n_classes)
    channels, size = input_shape[0], input_shape[-1]
    if size < 64:
        model.conv1 = nn.Conv2d(channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    else:
        model.conv1 = nn.Conv2d(channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    return model


#: built-in architecture -> (builder, its own parameters with defaults)
BUILT_IN = {
    "small_cnn": (SmallCNN, {"width": 16}),
    "mlp": (MLP, {"hidden": 128, "dropout": 0.1}),
    "resnet18": (small_resnet18, {}),
}


class _GrayToColour(nn.Module):
    """Repeats a one-channel image to the three channels a pretrained stem expects."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x)


def unwrapped(network: nn.Module) -> nn.Module:
    """The network itself, inside the grey-to-colour wrapper mllife may have put around it."""
    return network.inner if isinstance(network, _GrayToColour) else network


def head_name(network: nn.Module) -> str:
    """The name of the classification head: the network's last ``nn.Linear``."""
    found = None
    for name, module in network.named_modules():
        if isinstance(module, nn.Linear):
            found = name
    if found is None:
        raise ConfigError(f"{type(network).__name__} has no nn.Linear classification head")
    return found


def classifier_head(network: nn.Module) -> tuple[nn.Module, str, nn.Linear]:
    """(parent module, attribute, the last ``nn.Linear``): the classification head."""
    parent_name, _, attribute = head_name(network).rpartition(".")
    parent = network.get_submodule(parent_name) if parent_name else network
    return parent, attribute, getattr(parent, attribute)


def _replace_head(network: nn.Module, n_classes: int) -> nn.Module:
    parent, attribute, head = classifier_head(network)
    if head.out_features != n_classes:
        setattr(parent, attribute, nn.Linear(head.in_features, n_classes))
    return network


def _torchvision(name: str, n_classes: int) -> nn.Module:
    import torchvision

    available = torchvision.models.list_models(module=torchvision.models)
    if name not in available:
        raise ConfigError(
            f"unknown architecture {name!r}: not built in ({sorted(BUILT_IN)}) and not a"
            f" torchvision classification model (e.g. {', '.join(available[:6])}...)"
        )
    return torchvision.models.get_model(name, weights=None)


def _timm(name: str) -> nn.Module:
    try:
        import timm
    except ImportError:
        raise ConfigError(
            f"architecture 'timm:{name}' needs timm: `pip install timm` in this environment"
        ) from None
    return timm.create_model(name, pretrained=False)


def _own_module(path: str, n_classes: int, params: dict) -> nn.Module:
    module_name, _, class_name = path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(f"module {path!r} cannot be imported: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ConfigError(f"module {path!r} is not a torch.nn.Module class")
    try:
        return cls(num_classes=n_classes, **params)
    except TypeError as exc:
        raise ConfigError(
            f"module {path!r} must accept num_classes= (and the candidate's architecture"
            f" params {sorted(params)}): {exc}"
        ) from None


def build_network(
    *,
    architecture: str | None,
    module: str | None,
    n_classes: int,
    input_shape: tuple[int, ...],
    pretrained: bool,
    params: dict,
) -> nn.Module:
    """The untrained network (weights are loaded separately, see :func:`load_weights`).

    A built-in name with ``pretrained`` means torchvision's standard architecture (the
    one the weights were made for), not the small-image variant.
    """
    if module:
        return _own_module(module, n_classes, params)
    if architecture in BUILT_IN and not pretrained:
        builder, _ = BUILT_IN[architecture]
        return builder(n_classes=n_classes, input_shape=input_shape, **params)
    _needs_images(architecture, input_shape)
    if architecture.startswith("timm:"):
        network = _timm(architecture.removeprefix("timm:"))
    else:
        network = _torchvision(architecture, n_classes)
    network = _replace_head(network, n_classes)
    return _GrayToColour(network) if input_shape[0] == 1 else network


class Backbone:
    """A weights source, resolved: the file and what the network expects as input."""

    def __init__(self, path: Path, mean, std, label: str, input_size: int | None = None) -> None:
        self.path, self.mean, self.std, self.label = path, tuple(mean), tuple(std), label
        #: the image size the weights were trained at (None: not known)
        self.input_size = input_size

    @property
    def identity(self) -> str:
        """Name plus content hash: what an embedding cache entry depends on."""
        return f"{self.label}-{file_sha256(self.path)[:16]}"


def file_sha256(path: Path) -> str:
    """A weights file's sha256, computed once per (path, size, mtime)."""
    stat = Path(path).stat()
    return _file_digest(Path(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=32)
def _file_digest(path: Path, size: int, mtime_ns: int) -> str:
    """A search builds the same backbone for every trial (its identity and its loading
    both name the hash), and a large file takes a while to hash."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve_weights(architecture: str, weights: str, *, root: Path) -> Backbone:
    """Where ``weights`` lives on this machine, never downloading."""
    local = Path(weights) if Path(weights).is_absolute() else root / weights
    if local.suffix in (".pt", ".pth", ".bin", ".safetensors") or local.exists():
        if not local.is_file():
            raise ConfigError(
                f"weights file {local} does not exist: put the state dict of a"
                f" {architecture} there (torch.save(model.state_dict(), path)), or name"
                ' torchvision weights (e.g. weights = "DEFAULT") already in the torch hub'
                " cache"
            )
        mean, std, size = _expected_input(architecture)
        return Backbone(local, mean, std, f"{architecture}-file", input_size=size)
    import torchvision

    try:
        enum = torchvision.models.get_model_weights(architecture.removeprefix("timm:"))
        entry = enum[weights] if weights != "DEFAULT" else enum.DEFAULT
    except (ValueError, KeyError) as exc:
        raise ConfigError(
            f"weights {weights!r} for {architecture}: not a file and not a torchvision"
            f" weights name ({exc})"
        ) from None
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(entry.url).name
    if not cached.is_file():
        raise ConfigError(
            f"weights {weights!r} for {architecture} are not in the torch hub cache: expected"
            f" {cached}. mllife never downloads at run time. On a machine with internet run"
            f" `python -c \"import torchvision; torchvision.models.get_model('{architecture}',"
            f" weights='{entry}')\"` and copy the file from its torch hub cache to {cached}"
            f" (or download {entry.url} there)"
        )
    preset = entry.transforms()
    size = getattr(preset, "crop_size", [None])[0]
    return Backbone(cached, preset.mean, preset.std, f"{architecture}-{entry.name}", size)


def _expected_input(architecture: str) -> tuple[tuple, tuple, int | None]:
    """(mean, std, input size) a local weights file of ``architecture`` expects, from the
    architecture's own pretrained configuration: timm's ``pretrained_cfg`` (EfficientNet
    ports from TensorFlow expect 0.5/0.5, not ImageNet's statistics), torchvision's
    default weights' transforms; ImageNet's statistics for anything else."""
    if architecture.startswith("timm:"):
        try:
            from timm.models import get_pretrained_cfg
        except ImportError:
            return IMAGENET_MEAN, IMAGENET_STD, None
        cfg = get_pretrained_cfg(architecture.removeprefix("timm:"))
        if cfg is not None:
            return tuple(cfg.mean), tuple(cfg.std), cfg.input_size[-1]
        return IMAGENET_MEAN, IMAGENET_STD, None
    import torchvision

    try:
        preset = torchvision.models.get_model_weights(architecture).DEFAULT.transforms()
    except (ValueError, KeyError, AttributeError):
        return IMAGENET_MEAN, IMAGENET_STD, None
    return tuple(preset.mean), tuple(preset.std), getattr(preset, "crop_size", [None])[0]
