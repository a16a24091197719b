"""Built-in torch architectures as mllife models: seeded training with early stopping.

Artifacts hold only tensors and plain values, and load with ``weights_only=True``.
"""

from __future__ import annotations

import copy
import io
import math
import time
from typing import Any

import numpy as np
import torch
from torch import nn

from mllife._errors import ArtifactError, ConfigError, TrainingError
from mllife._faults import crash_point
from mllife.models.base import FitResult, Model, ProgressLog

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
}


class SmallCNN(nn.Module):
    """Two 3x3 convolutions and a small head; fits small grayscale images of any size."""

    def __init__(self, *, n_classes: int, input_shape: tuple[int, ...], width: int = 16) -> None:
        super().__init__()
        _needs_images("small_cnn", input_shape)
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1),
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
        self,
        *,
        n_classes: int,
        input_shape: tuple[int, ...],
        hidden: int = 128,
        dropout: float = 0.1,
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


def resnet18(*, n_classes: int, input_shape: tuple[int, ...]) -> nn.Module:
    """torchvision's resnet18, untrained (no download), adapted to one-channel images.

    Small inputs keep their resolution: a 3x3 stride-1 stem and no max-pool, as is usual
    for CIFAR-sized images.
    """
    from torchvision.models import resnet18 as tv_resnet18

    _needs_images("resnet18", input_shape)
    image_size = input_shape[-1]
    model = tv_resnet18(weights=None, num_classes=n_classes)
    if image_size < 64:
        model.conv1 = nn.Conv2d(1, 64, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    else:
        model.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    return model


#: architecture -> (builder, its own parameters with defaults)
ARCHITECTURES = {
    "small_cnn": (SmallCNN, {"width": 16}),
    "mlp": (MLP, {"hidden": 128, "dropout": 0.1}),
    "resnet18": (resnet18, {}),
}


def progress_bar(done: int, total: int, width: int = 20) -> str:
    """``[#########...........]``: how far training is, in the logs and the CLI."""
    filled = round(width * done / max(total, 1))
    return "[" + "#" * filled + "." * (width - filled) + "]"


def pick_device() -> torch.device:
    """CUDA when present, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class TorchModel(Model):
    kind = "torch"

    def __init__(self, *, architecture: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if architecture not in ARCHITECTURES:
            raise ConfigError(
                f"candidate {self.name!r}: unknown architecture {architecture!r};"
                f" built in: {sorted(ARCHITECTURES)}"
            )
        builder, own = ARCHITECTURES[architecture]
        allowed = {**TRAINING, **own}
        unknown = sorted(set(self.params) - set(allowed))
        if unknown:
            raise ConfigError(
                f"candidate {self.name!r}: unknown params {unknown} for {architecture};"
                f" allowed: {sorted(allowed)}"
            )
        self.architecture = architecture
        self.settings = {**allowed, **self.params}
        self._arch_params = {k: self.settings[k] for k in own}
        self.network = self._build()

    def _build(self) -> nn.Module:
        builder, _ = ARCHITECTURES[self.architecture]
        return builder(
            n_classes=len(self.classes),
            input_shape=self.preprocessor.input_shape,
            **self._arch_params,
        )

    def fit(self, x_train, y_train, x_val, y_val, *, log: ProgressLog) -> FitResult:
        s = self.settings
        torch.manual_seed(int(s["seed"]))
        device = pick_device()
        self.network = self._build().to(device)
        optimizer = torch.optim.AdamW(
            self.network.parameters(), lr=float(s["lr"]), weight_decay=float(s["weight_decay"])
        )
        loss_fn = nn.CrossEntropyLoss()
        xt, yt = x_train.to(device), torch.as_tensor(y_train, dtype=torch.long, device=device)
        xv, yv = x_val.to(device), torch.as_tensor(y_val, dtype=torch.long, device=device)
        generator = torch.Generator().manual_seed(int(s["seed"]))
        batch, epochs, patience = int(s["batch_size"]), int(s["epochs"]), int(s["patience"])
        best_loss, best_state, stale, history = math.inf, None, 0, []
        started = time.perf_counter()
        for epoch in range(1, epochs + 1):
            self.network.train()
            order = torch.randperm(len(xt), generator=generator).to(device)
            # Summed on the device: one host sync per epoch, not one per batch.
            total = torch.zeros((), device=device)
            for start in range(0, len(xt), batch):
                idx = order[start : start + batch]
                optimizer.zero_grad(set_to_none=True)
                loss = loss_fn(self.network(xt[idx]), yt[idx])
                loss.backward()
                optimizer.step()
                total += loss.detach() * len(idx)
            train_loss = float(total) / len(xt)
            crash_point("training:epoch")
            if not math.isfinite(train_loss):
                raise TrainingError(
                    f"candidate {self.name!r}: training loss became {train_loss} at epoch"
                    f" {epoch} (lr={s['lr']}); lower the learning rate"
                )
            self.network.eval()
            with torch.no_grad():
                logits = self.network(xv)
                val_loss = float(loss_fn(logits, yv))
                val_acc = float((logits.argmax(1) == yv).float().mean())
            history.append(
                {
                    "epoch": epoch,
                    "train_loss": train_loss,
                    "val_loss": val_loss,
                    "val_accuracy": val_acc,
                }
            )
            log(
                f"{self.name}: epoch {epoch:>3}/{epochs} {progress_bar(epoch, epochs)}"
                f" train_loss={train_loss:.4f} val_loss={val_loss:.4f} val_acc={val_acc:.4f}"
            )
            if val_loss < best_loss - 1e-6:
                best_loss, stale = val_loss, 0
                best_state = copy.deepcopy(self.network.state_dict())
            else:
                stale += 1
                if stale >= patience:
                    log(f"{self.name}: early stop at epoch {epoch} (best val_loss {best_loss:.4f})")
                    break
        self.network.load_state_dict(best_state)
        self.network.to("cpu").eval()
        return FitResult(seconds=time.perf_counter() - started, history=history)

    def predict_proba_features(self, x: torch.Tensor) -> np.ndarray:
        self.network.eval()
        with torch.no_grad():
            return torch.softmax(self.network(x), dim=1).double().numpy()

    def to_bytes(self) -> bytes:
        payload = {
            "format": FORMAT,
            "name": self.name,
            "classes": self.classes,
            "preprocessor": self.preprocessor.state(),
            "architecture": self.architecture,
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
        model = cls(architecture=payload["architecture"], **cls.saved_fields(payload))
        model.network.load_state_dict(payload["state_dict"])
        model.network.eval()
        return model
