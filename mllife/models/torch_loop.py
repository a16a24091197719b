"""The training loop of torch candidates: batches (streamed images or in-memory tensors),
epochs of training and validation, mixed precision, early stopping, and a checkpoint
after every epoch that a resumed run continues from."""

from __future__ import annotations

import copy
import math
import time

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from mllife._errors import TrainingError
from mllife._faults import crash_point
from mllife.models.base import FitResult
from mllife.storage.files import atomic_target, remove_orphaned_temp_files, temp_suffix

__all__ = ["Labelled", "Loop", "TensorBatches", "progress_bar"]


def progress_bar(done: int, total: int, width: int = 20) -> str:
    """``[#########...........]``: how far training is, in the logs and the CLI."""
    filled = round(width * done / max(total, 1))
    return "[" + "#" * filled + "." * (width - filled) + "]"


class TensorBatches:
    """Shuffled (or ordered) slices of in-memory tensors; moved to the device once."""

    def __init__(self, x: torch.Tensor, y: np.ndarray, batch: int, generator) -> None:
        self.x, self.y = x, torch.as_tensor(y, dtype=torch.long)
        self.batch, self.generator = batch, generator
        self._on = None

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.batch)

    def to(self, device) -> TensorBatches:
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


class Labelled(Dataset):
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


class Loop:
    """One fit: epochs of training and validation, early stopping, checkpoints."""

    def __init__(self, model, device, optimizer, scheduler, scaler, amp, log, generator=None):
        """``model``: the TorchModel being fitted (its network, settings, preprocessing);
        ``generator``: the one that shuffles the training batches."""
        self.model, self.device, self.log, self.generator = model, device, log, generator
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
        if isinstance(loader, TensorBatches):
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
        if isinstance(loader, TensorBatches):
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
            # where every random draw stands, so a resumed fit goes on exactly as the
            # uninterrupted one would (the next epoch's shuffle, dropout, augmentation)
            "rng": self._rng_states(),
        }
        # the temp name carries this process's id: a fit resumed after this one was killed
        # mid-write removes it (``_resume``)
        with atomic_target(path, suffix=temp_suffix(), fsync=False) as tmp:
            torch.save(state, tmp)

    def _rng_states(self) -> dict:
        states = {"torch": torch.get_rng_state()}
        if self.generator is not None:
            states["shuffle"] = self.generator.get_state()
        if torch.cuda.is_available():
            states["cuda"] = torch.cuda.get_rng_state_all()
        return states

    def _restore_rng(self, states: dict | None) -> None:
        if states is None:  # a checkpoint of an earlier version: resumes, not exactly
            self.log(f"{self.model.name}: the checkpoint has no random state: the resumed"
                     " epochs will differ from an uninterrupted fit")  # fmt: skip
            return
        torch.set_rng_state(states["torch"].cpu())
        if self.generator is not None and "shuffle" in states:
            self.generator.set_state(states["shuffle"].cpu())
        if "cuda" in states and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in states["cuda"]])

    def _resume(self) -> None:
        path = self.model.checkpoint_path
        if path is None:
            return
        if path.parent.is_dir():  # what a writer killed mid-checkpoint left
            remove_orphaned_temp_files(path.parent)
        if not path.is_file():
            return
        # tensors and plain values only: a tampered checkpoint cannot run code
        state = torch.load(path, map_location=self.device, weights_only=True)
        self.model.network.load_state_dict(state["network"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.best_loss, self.best_state = state["best_loss"], state["best_state"]
        self.stale, self.history = state["stale"], state["history"]
        self._restore_rng(state.get("rng"))
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
            if not math.isfinite(val_loss):
                raise TrainingError(
                    f"candidate {model.name!r}: validation loss is {val_loss} at epoch {epoch}"
                    f" (train loss {train_loss:.4f}, lr={model.settings['lr']}): the network"
                    " gives non-finite outputs on the validation split; lower the learning"
                    " rate, or look for non-finite values in the validation inputs"
                )
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
        if self.best_state is None:
            raise TrainingError(
                f"candidate {model.name!r}: no epoch was trained (epochs = {self.epochs})"
            )
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
