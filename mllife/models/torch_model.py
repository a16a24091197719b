"""Torch networks as mllife models: seeded, streamed training with augmentation, a
learning-rate schedule, a frozen-then-unfrozen backbone, mixed precision on CUDA, early
stopping and a checkpoint after every epoch.

Artifacts hold only tensors and plain values, and load with ``weights_only=True``.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from mllife._errors import ArtifactError, ConfigError
from mllife.models._layout import for_inference
from mllife.models.base import FitResult, Model, ProgressLog
from mllife.models.networks import BUILT_IN, build_network, classifier_head
from mllife.models.torch_loop import Labelled, Loop, TensorBatches
from mllife.preprocess.augment import build_augment
from mllife.preprocess.pixels import PixelSet
from mllife.preprocess.text import TextFeatures

__all__ = ["ARCHITECTURES", "TorchModel", "pick_device"]

FORMAT = "mllife.torch/1"
#: training settings every architecture takes
TRAINING = {
    "epochs": 20,
    "batch_size": 64,
    "lr": 3e-3,
    "weight_decay": 1e-4,
    "patience": 4,
    "seed": 0,
    #: "none", "cosine" or "onecycle" (per batch)
    "schedule": "none",
    #: train only the classification head for this many epochs, then everything
    "head_epochs": 0,
    #: train only the head throughout (the backbone stays as pretrained)
    "freeze": False,
    #: mixed precision on CUDA
    "amp": True,
}
ARCHITECTURES = BUILT_IN


def pick_device(setting: str = "auto") -> torch.device:
    """``setting`` ("cpu", "cuda", "cuda:1"), or CUDA when present, else the CPU."""
    if setting and setting != "auto":
        device = torch.device(setting)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(f"training.device is {setting!r} but no CUDA device is available")
        return device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class TorchModel(Model):
    kind = "torch"

    def __init__(
        self,
        *,
        architecture: str | None,
        module: str | None = None,
        weights: dict | None = None,
        augment: dict | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        own = BUILT_IN[architecture][1] if architecture in BUILT_IN and not weights else {}
        if module:
            own = {k: v for k, v in self.params.items() if k not in TRAINING}
        allowed = {**TRAINING, **own}
        unknown = sorted(set(self.params) - set(allowed))
        if unknown:
            raise ConfigError(
                f"candidate {self.name!r}: unknown params {unknown} for"
                f" {architecture or module}; allowed: {sorted(allowed)}"
            )
        self.architecture = architecture
        self.module = module
        #: the resolved pretrained weights: {"path", "label"} (None: from scratch)
        self.weights = weights
        self.augment = augment
        self.settings = {**allowed, **self.params}
        self._arch_params = {k: self.settings[k] for k in own}
        self.device_setting = "auto"
        #: where fit() keeps a checkpoint after every epoch (None: no checkpoints)
        self.checkpoint_path: Path | None = None
        self.network = self._build()

    def _build(self) -> nn.Module:
        return build_network(
            architecture=self.architecture,
            module=self.module,
            n_classes=len(self.classes),
            input_shape=self.preprocessor.input_shape,
            pretrained=self.weights is not None,
            params=self._arch_params,
        )

    # -- training ----------------------------------------------------------------------

    def _loader(self, x, y, *, train: bool, generator=None):
        """Batches of (input, label): a :class:`PixelSet` through a DataLoader (decoded,
        cached, augmented in worker processes); an in-memory tensor by slicing a
        shuffled index, on the device (a DataLoader's per-row collation would cost more
        than the model on small tables)."""
        batch = int(self.settings["batch_size"])
        if isinstance(x, PixelSet):
            augment = build_augment(self.augment, self.preprocessor.size) if train else None
            held = x.held()
            if held is not None and augment is None:
                x = held  # small enough: uint8 pixels in memory, sliced like a tensor
            else:
                return DataLoader(
                    Labelled(x, y, augment),
                    batch_size=batch,
                    shuffle=train,
                    generator=generator,
                    num_workers=0 if held is not None else x.workers,
                )
        return TensorBatches(x, np.asarray(y), batch, generator if train else None)

    def _prepare(self, xb: torch.Tensor, device: torch.device) -> torch.Tensor:
        xb = xb.to(device, non_blocking=True)
        # images arrive as uint8 pixels and are normalised on the device
        return self.preprocessor.normalize(xb) if xb.dtype == torch.uint8 else xb

    def _set_backbone_trainable(self, trainable: bool) -> None:
        _, _, head = classifier_head(self.network)
        head_params = {id(p) for p in head.parameters()}
        for param in self.network.parameters():
            param.requires_grad = trainable or id(param) in head_params

    def _scheduler(self, optimizer, steps: int):
        kind, epochs = self.settings["schedule"], int(self.settings["epochs"])
        if kind == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * steps)
        if kind == "onecycle":
            return torch.optim.lr_scheduler.OneCycleLR(
                optimizer, max_lr=float(self.settings["lr"]), total_steps=epochs * steps
            )
        if kind != "none":
            raise ConfigError(
                f"candidate {self.name!r}: schedule {kind!r}: use none, cosine or onecycle"
            )
        return None

    def fit(self, x_train, y_train, x_val, y_val, *, log: ProgressLog) -> FitResult:
        x_train, x_val = _dense(x_train, self.name), _dense(x_val, self.name)
        s = self.settings
        torch.manual_seed(int(s["seed"]))
        device = pick_device(self.device_setting)
        if self.weights is None:
            self.network = self._build()
        self.network.to(device)
        generator = torch.Generator().manual_seed(int(s["seed"]))
        train_loader = self._loader(x_train, y_train, train=True, generator=generator)
        val_loader = self._loader(x_val, y_val, train=False)
        optimizer = torch.optim.AdamW(
            self.network.parameters(), lr=float(s["lr"]), weight_decay=float(s["weight_decay"])
        )
        scheduler = self._scheduler(optimizer, len(train_loader))
        amp = bool(s["amp"]) and device.type == "cuda"
        scaler = torch.amp.GradScaler("cuda", enabled=amp)
        loop = Loop(self, device, optimizer, scheduler, scaler, amp, log, generator)
        return loop.run(train_loader, val_loader)

    # -- prediction --------------------------------------------------------------------

    def _inference_device(self) -> torch.device:
        return pick_device(self.device_setting)

    def predict_proba_features(self, x) -> np.ndarray:
        x = _dense(x, self.name)
        device = self._inference_device()
        batches = (
            (self.preprocessor.normalize(b) for b in x.batches(256))
            if isinstance(x, PixelSet)
            else torch.split(x, 1024)
        )
        out = []
        with torch.no_grad():
            for batch in batches:
                network, batch = for_inference(self.network, batch, device)
                out.append(torch.softmax(network(batch).float(), dim=1).cpu())
        return torch.cat(out).double().numpy()

    # -- artifacts ---------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        payload = {
            **self.saved_common(FORMAT),
            "architecture": self.architecture,
            "module": self.module,
            "pretrained": None if self.weights is None else self.weights["label"],
            "augment": self.augment,
            "state_dict": {k: v.detach().cpu() for k, v in self.network.state_dict().items()},
        }
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> TorchModel:
        """Load an artifact; ``weights_only=True`` refuses anything but tensors and plain data."""
        try:
            payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many types for a bad file
            raise ArtifactError(f"not a loadable torch artifact: {exc}") from exc
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise ArtifactError("not an mllife torch artifact")
        pretrained = payload.get("pretrained")
        model = cls(
            architecture=payload["architecture"],
            module=payload.get("module"),
            # the architecture it was trained as; the weights themselves are in state_dict
            weights=None if pretrained is None else {"path": None, "label": pretrained},
            augment=payload.get("augment"),
            **cls.saved_fields(payload),
        )
        model.network.load_state_dict(payload["state_dict"])
        model.network.eval()
        model.restore_common(payload)
        return model


def _dense(x, name: str):
    """A text table's sparse features as the dense tensor a network takes."""
    if isinstance(x, TextFeatures):
        return torch.from_numpy(x.dense(model=name))
    return x
