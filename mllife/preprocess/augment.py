"""Random changes to training images (torchvision transforms v2 on uint8 pixels): what
a candidate's ``augment`` declares, applied in the DataLoader workers to training
batches only."""

from __future__ import annotations

__all__ = ["build_augment"]


def build_augment(spec: dict | None, size: int):
    """torchvision v2 transforms for uint8 (C, S, S) training images, or None."""
    if not spec:
        return None
    # imported here: torchvision costs ~3 s to import (its ops pull in torch._dynamo),
    # which a candidate without augmentation never needs
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
