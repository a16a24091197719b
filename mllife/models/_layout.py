"""The memory layout inference runs in.

Image batches run as NHWC ("channels_last"): oneDNN's CPU convolutions (and cuDNN's
tensor-core ones) are several times faster in it at serving batch sizes -- measured on
small_cnn, one CPU thread, 32 images: 15.9 -> 5.2 ms at 32 px, 55 -> 21 ms at 64 px; one
image is unchanged (0.50 vs 0.52 ms). The values are the same up to float rounding.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["for_inference"]


def for_inference(network: nn.Module, batch: torch.Tensor, device: torch.device):
    """(network, batch) on ``device``, in eval mode, channels_last for image batches."""
    if batch.ndim != 4:
        return network.to(device).eval(), batch.to(device)
    network = network.to(device, memory_format=torch.channels_last).eval()
    return network, batch.to(device).contiguous(memory_format=torch.channels_last)
