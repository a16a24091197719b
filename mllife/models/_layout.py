"""The memory layout inference runs in.

Image batches run as NHWC ("channels_last"): oneDNN's CPU convolutions (and cuDNN's
tensor-core ones) are several times faster in it at serving batch sizes -- measured on
small_cnn, one CPU thread, 32 images: 15.9 -> 5.2 ms at 32 px, 55 -> 21 ms at 64 px; one
image is unchanged (0.50 vs 0.52 ms). The values are the same up to float rounding.

The network is converted once, not at every call: ``Module.to`` reassigns every
parameter's storage, and the server runs inference in several threads at once -- two
threads converting a ResNet-18 while a third runs its forward crashed the server
(segmentation fault) on its first concurrent requests.
"""

from __future__ import annotations

import threading

import torch
from torch import nn

__all__ = ["for_inference"]

_CONVERTING = threading.Lock()
#: the (device, channels_last) a network was last prepared for
_PREPARED = "_mllife_inference_layout"


def _is_prepared(network: nn.Module, wanted: tuple[torch.device, bool]) -> bool:
    if network.training or getattr(network, _PREPARED, None) != wanted:
        return False
    first = next(network.parameters(), None)  # moved since (training on another device)?
    if first is None:
        return True
    device = wanted[0]  # "cuda" (no index) matches the parameters' "cuda:0"
    return first.device.type == device.type and device.index in (None, first.device.index)


def for_inference(network: nn.Module, batch: torch.Tensor, device: torch.device):
    """(network, batch) on ``device``, in eval mode, channels_last for image batches; the
    network is converted only when it is not already so (thread-safe)."""
    device = torch.device(device)
    images = batch.ndim == 4
    wanted = (device, images)
    if not _is_prepared(network, wanted):
        with _CONVERTING:
            if not _is_prepared(network, wanted):
                layout = {"memory_format": torch.channels_last} if images else {}
                network.to(device, **layout).eval()
                setattr(network, _PREPARED, wanted)
    if images:
        return network, batch.to(device).contiguous(memory_format=torch.channels_last)
    return network, batch.to(device)
