"""Torch networks as mllife models: seeded, streamed training with augmentation, a
learning-rate schedule, a frozen-then-unfrozen backbone, mixed precision on CUDA, early
stopping and a checkpoint after every epoch.

Artifacts hold only tensors and plain values, and load with ``weights_only=True``.
"""

from __future__ import annotations

import copy
import io
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from mllife._errors import ArtifactError, ConfigError, TrainingError
from mllife._faults import crash_point
from mllife.models.base import FitResult, Model, ProgressLog
from mllife.models.networks import BUILT_IN, build_network, classifier_head
from mllife.preprocess.pixels import PixelSet
from mllife.storage.files import atomic_target

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


def progress_bar(done: int, total: int, width: int = 20) -> str:
    """``[#########...........]``: how far training is, in the logs and the CLI."""
    filled = round(width * done / max(total, 1))
    return "[" + "#" * filled + "." * (width - filled) + "]"


def pick_device(setting: str = "auto") -> torch.device:
    """``setting`` ("cpu", "cuda", "cuda:1"), or CUDA when present, else the CPU."""
    if setting and setting != "auto":
        device = torch.device(setting)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(f"training.device is {setting!r} but no CUDA device is available")
        return device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class _TensorBatches:
    """Shuffled (or ordered) slices of in-memory tensors; moved to the device once."""

    def __init__(self, x: torch.Tensor, y: np.ndarray, batch: int, generator) -> None:
        self.x, self.y = x, torch.as_tensor(y, dtype=torch.long)
        self.batch, self.generator = batch, generator
        self._on = None

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.batch)

    def to(self, device) -> _TensorBatches:
        if self._on != device:
            self.x, self.y, self._on = self.x.to(device), self.y.to(device), device
        return self

    def __iter__(self):
        n = len(self.x)
        if self.generator is not None:
            order = torch.randperm(n, generator=self.generator).to(self.x.device)
        else:
            order = torch.arange(n, device=self.x.device)
        for start in range(0, n, self.batch):
            idx = order[start : start + self.batch]
            yield self.x[idx], self.y[idx]


class _Labelled(Dataset):
    """(input, label) pairs; images augmented in the worker that loads them."""

    def __init__(self, inputs, labels: np.ndarray, augment=None) -> None:
        self.inputs, self.labels, self.augment = inputs, np.asarray(labels), augment

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        x = self.inputs[index]
        if isinstance(x, tuple):  # a TensorDataset item
            x = x[0]
        if self.augment is not None:
            x = self.augment(x)
        return x, int(self.labels[index])


def build_augment(spec: dict | None, size: int):
    """torchvision v2 transforms for uint8 (C, S, S) training images, or None."""
    if not spec:
        return None
    from torchvision.transforms import v2

    steps = []
    if spec.get("crop"):
        steps.append(v2.RandomResizedCrop(size, scale=(float(spec["crop"]), 1.0), antialias=True))
    if spec.get("hflip"):
        steps.append(v2.RandomHorizontalFlip())
    if spec.get("vflip"):
        steps.append(v2.RandomVerticalFlip())
    if spec.get("rotation"):
        steps.append(v2.RandomRotation(float(spec["rotation"])))
    if spec.get("color_jitter"):
        j = float(spec["color_jitter"])
        steps.append(v2.ColorJitter(brightness=j, contrast=j, saturation=j, hue=min(j / 2, 0.5)))
    return v2.Compose(steps) if steps else None


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
            return DataLoader(
                _Labelled(x, y, augment),
                batch_size=batch,
                shuffle=train,
                generator=generator,
                num_workers=x.workers,
            )
        return _TensorBatches(x, np.asarray(y), batch, generator if train else None)

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
        loop = _Loop(self, device, optimizer, scheduler, scaler, amp, log)
        return loop.run(train_loader, val_loader)

    # -- prediction --------------------------------------------------------------------

    def _inference_device(self) -> torch.device:
        return pick_device(self.device_setting)

    def predict_proba_features(self, x) -> np.ndarray:
        device = self._inference_device()
        self.network.to(device).eval()
        batches = (
            (self.preprocessor.normalize(b) for b in x.batches(256))
            if isinstance(x, PixelSet)
            else torch.split(x, 1024)
        )
        out = []
        with torch.no_grad():
            for batch in batches:
                out.append(torch.softmax(self.network(batch.to(device)).float(), dim=1).cpu())
        return torch.cat(out).double().numpy()

    # -- artifacts ---------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        payload = {
            "format": FORMAT,
            "name": self.name,
            "classes": self.classes,
            "preprocessor": self.preprocessor.state(),
            "architecture": self.architecture,
            "module": self.module,
            "pretrained": None if self.weights is None else self.weights["label"],
            "augment": self.augment,
            "params": self.params,
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
        return model


class _Loop:
    """One fit: epochs of training and validation, early stopping, checkpoints."""

    def __init__(self, model: TorchModel, device, optimizer, scheduler, scaler, amp, log):
        self.model, self.device, self.log = model, device, log
        self.optimizer, self.scheduler, self.scaler, self.amp = optimizer, scheduler, scaler, amp
        self.loss_fn = nn.CrossEntropyLoss()
        s = model.settings
        self.epochs, self.patience = int(s["epochs"]), int(s["patience"])
        self.head_epochs, self.freeze = int(s["head_epochs"]), bool(s["freeze"])
        self.best_loss, self.best_state, self.stale, self.history = math.inf, None, 0, []
        self.first_epoch = 1

    def _autocast(self):
        return torch.autocast("cuda", enabled=self.amp)

    def _train_epoch(self, loader) -> float:
        if isinstance(loader, _TensorBatches):
            loader.to(self.device)
        network = self.model.network
        network.train()
        total, count = torch.zeros((), device=self.device), 0
        for xb, yb in loader:
            xb, yb = self.model._prepare(xb, self.device), yb.to(self.device)
            self.optimizer.zero_grad(set_to_none=True)
            with self._autocast():
                loss = self.loss_fn(network(xb), yb)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            if self.scheduler is not None:
                self.scheduler.step()
            total += loss.detach().float() * len(yb)  # summed on the device: one sync
            count += len(yb)
        return float(total) / max(count, 1)

    def _validate(self, loader) -> tuple[float, float]:
        if isinstance(loader, _TensorBatches):
            loader.to(self.device)
        network = self.model.network
        network.eval()
        loss_sum, right, count = 0.0, 0, 0
        with torch.no_grad(), self._autocast():
            for xb, yb in loader:
                xb, yb = self.model._prepare(xb, self.device), yb.to(self.device)
                logits = network(xb).float()
                loss_sum += float(self.loss_fn(logits, yb)) * len(yb)
                right += int((logits.argmax(1) == yb).sum())
                count += len(yb)
        return loss_sum / max(count, 1), right / max(count, 1)

    def _checkpoint(self, epoch: int) -> None:
        path = self.model.checkpoint_path
        if path is None:
            return
        state = {
            "epoch": epoch,
            "network": self.model.network.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "best_loss": self.best_loss,
            "best_state": self.best_state,
            "stale": self.stale,
            "history": self.history,
        }
        with atomic_target(path, fsync=False) as tmp:
            torch.save(state, tmp)

    def _resume(self) -> None:
        path = self.model.checkpoint_path
        if path is None or not path.is_file():
            return
        # tensors and plain values only: a tampered checkpoint cannot run code
        state = torch.load(path, map_location=self.device, weights_only=True)
        self.model.network.load_state_dict(state["network"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.best_loss, self.best_state = state["best_loss"], state["best_state"]
        self.stale, self.history = state["stale"], state["history"]
        self.first_epoch = state["epoch"] + 1
        self.log(f"{self.model.name}: resuming from the checkpoint of epoch {state['epoch']}")

    def run(self, train_loader, val_loader) -> FitResult:
        model, started = self.model, time.perf_counter()
        self._resume()
        for epoch in range(self.first_epoch, self.epochs + 1):
            if self.freeze or self.head_epochs:
                model._set_backbone_trainable(not self.freeze and epoch > self.head_epochs)
            train_loss = self._train_epoch(train_loader)
            crash_point("training:epoch")
            if not math.isfinite(train_loss):
                raise TrainingError(
                    f"candidate {model.name!r}: training loss became {train_loss} at epoch"
                    f" {epoch} (lr={model.settings['lr']}); lower the learning rate"
                )
            val_loss, val_acc = self._validate(val_loader)
            self.history.append(
                {"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
                 "val_accuracy": val_acc}
            )  # fmt: skip
            self.log(
                f"{model.name}: epoch {epoch:>3}/{self.epochs} {progress_bar(epoch, self.epochs)}"
                f" train_loss={train_loss:.4f} val_loss={val_loss:.4f} val_acc={val_acc:.4f}"
            )
            stop = self._early_stop(epoch, val_loss)
            self._checkpoint(epoch)
            if stop:
                break
        model.network.load_state_dict(self.best_state)
        model.network.to("cpu").eval()
        if model.checkpoint_path is not None:
            model.checkpoint_path.unlink(missing_ok=True)  # the artifact takes over
        return FitResult(seconds=time.perf_counter() - started, history=self.history)

    def _early_stop(self, epoch: int, val_loss: float) -> bool:
        if val_loss < self.best_loss - 1e-6:
            self.best_loss, self.stale = val_loss, 0
            self.best_state = copy.deepcopy(self.model.network.state_dict())
            return False
        self.stale += 1
        if self.stale >= self.patience:
            self.log(
                f"{self.model.name}: early stop at epoch {epoch} (best val_loss"
                f" {self.best_loss:.4f})"
            )
            return True
        return False
