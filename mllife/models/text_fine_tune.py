"""Fine-tuning a sentence encoder on the training split: the encoder and a linear head
over its pooled vector, cross-entropy, AdamW with linear warm-up and decay (the recipe
BERT-class encoders are fine-tuned with). On the CPU a few epochs of short texts take
minutes; on a GPU (when there is one) seconds."""

from __future__ import annotations

import hashlib
import time

import numpy as np
import torch
from torch import nn

__all__ = ["fine_tune"]


def fine_tune(model, texts: list[str], labels: np.ndarray, *, epochs: int, log) -> list[dict]:
    """Train ``model.encoder`` in place; returns one history record per epoch."""
    encoder = model.encoder
    seed = int(model.params.get("seed", 0))
    torch.manual_seed(seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    network = encoder.network.to(device).train()
    head = nn.Linear(encoder.dimension, len(model.classes)).to(device)
    batch_size = int(model.params.get("batch_size", 32))
    steps = epochs * -(-len(texts) // batch_size)
    optimizer = torch.optim.AdamW(
        [*network.parameters(), *head.parameters()],
        lr=float(model.params.get("fine_tune_lr", 5e-5)),
        weight_decay=0.01,
    )
    warmup = max(1, steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / (steps - warmup)))
    )
    rng = np.random.default_rng(seed)
    counted = encoder.truncated
    ids = encoder.tokens(texts)
    encoder.truncated = counted  # counted once, when the vectors are made
    history = []
    for epoch in range(1, epochs + 1):
        started, total, correct = time.perf_counter(), 0.0, 0
        for chunk in np.array_split(rng.permutation(len(texts)), steps // epochs):
            tokens, mask = encoder._batch([ids[i] for i in chunk])
            target = torch.from_numpy(labels[chunk]).to(device)
            logits = head(encoder.pooled(tokens.to(device), mask.to(device)))
            loss = nn.functional.cross_entropy(logits, target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(network.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            total += float(loss.detach()) * len(chunk)
            correct += int((logits.argmax(1) == target).sum())
        record = {"epoch": epoch, "train_loss": total / len(texts),
                  "train_accuracy": correct / len(texts),
                  "seconds": time.perf_counter() - started}  # fmt: skip
        history.append(record)
        log(
            f"{model.name}: fine-tuning epoch {epoch}/{epochs} loss {record['train_loss']:.4f}"
            f" train accuracy {record['train_accuracy']:.4f} ({record['seconds']:.0f} s on"
            f" {device.type})"
        )
    network.to("cpu").eval()
    digest = hashlib.sha256()
    for name, value in sorted(encoder.state().items()):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(value).tobytes())
    model.encoder_label = f"{encoder.files.label()}-tuned-{digest.hexdigest()[:16]}"
    return history
