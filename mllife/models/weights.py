"""Pretrained weights, loaded exactly or not at all.

Every tensor of the backbone (all of the network but a classification head that is
replaced for this project's classes) comes from the file, or loading stops with a
:class:`ConfigError` that names the file, the architecture, what is missing, unexpected
or of another shape, and the likely cause. The common shapes of real checkpoints load
as they are: ``module.``/``model.`` prefixes (DataParallel, DDP, Lightning), wrappers
(``state_dict``, ``model``, ``model_state_dict``, ``ema``...), ``.safetensors`` files.
Weights named by another implementation of the same network load through an explicit,
checked mapping (``weights_map``): ``"order"`` (the same tensors in the same order,
every shape equal) or a table of name prefixes.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from mllife._errors import ConfigError
from mllife.models.networks import file_sha256, head_name, unwrapped

__all__ = ["LoadedWeights", "load_backbone", "read_state_dict"]

#: keys under which checkpoints keep the state dict, in the order they are tried
WRAPPERS = ("state_dict", "model_state_dict", "model", "ema", "model_ema", "state_dict_ema")
#: name prefixes that DataParallel/DDP (``module.``) and training frameworks add
PREFIXES = ("module.", "model.")
#: counters that checkpoints keep beside the weights (torch's AveragedModel, for EMA)
COUNTERS = ("n_averaged",)
#: how many names an error lists of each kind
SHOWN = 5


@dataclass(frozen=True)
class LoadedWeights:
    """What a backbone got from its weights file."""

    path: Path
    sha256: str
    loaded: int  #: backbone tensors taken from the file
    total: int  #: backbone tensors the network has
    head: str  #: "from the file" or "new (N classes)"

    def summary(self, root: Path | None = None) -> str:
        shown = self.path
        if root is not None and self.path.is_relative_to(root):
            shown = self.path.relative_to(root)
        return (
            f"backbone: {self.loaded} of {self.total} tensors from {shown}"
            f" (sha256 {self.sha256[:12]}); head {self.head}"
        )


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a weights file by name: ``.safetensors`` through the safetensors
    library, anything else through ``torch.load(weights_only=True)`` (a pickle that needs
    code to load is refused); checkpoint wrappers unwrapped."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as exc:
            raise ConfigError(
                f"weights file {path} is not a readable safetensors file ({exc}): is it"
                " truncated, or another format with a .safetensors name?"
            ) from None
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ConfigError(
            f"weights file {path} refused: it is a pickle that needs code to load, and"
            f" mllife loads weights with weights_only=True ({first}). Save the tensors"
            " alone: torch.save(model.state_dict(), path), or a .safetensors file"
        ) from None
    except Exception as exc:  # torch raises many types for a damaged or foreign file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(
            f"weights file {path} cannot be read as tensors ({first}): is it truncated,"
            " or not a torch file? Save it with torch.save(model.state_dict(), path)"
        ) from exc
    return _unwrap(content, path)


def _tensors(mapping: Mapping) -> dict[str, torch.Tensor]:
    return {k: v for k, v in mapping.items() if isinstance(v, torch.Tensor) and k not in COUNTERS}


def _unwrap(content, path: Path, depth: int = 0) -> dict[str, torch.Tensor]:
    if not isinstance(content, Mapping):
        raise ConfigError(
            f"weights file {path} holds a {type(content).__name__}, not a state dict:"
            " save it with torch.save(model.state_dict(), path)"
        )
    tensors = _tensors(content)
    if tensors and len(tensors) >= len(content) / 2:
        return tensors  # a state dict (non-tensor extras such as EMA counters dropped)
    for key in WRAPPERS:
        if depth < 2 and isinstance(content.get(key), Mapping):
            return _unwrap(content[key], path, depth + 1)
    raise ConfigError(
        f"weights file {path} holds no state dict: its keys are {sorted(content)[:10]};"
        f" mllife looks for tensors at the top or under {', '.join(WRAPPERS)}"
    )


def _strip_prefixes(state: dict[str, torch.Tensor], own: list[str]) -> dict:
    changed = True
    while changed:
        changed = False
        for prefix in PREFIXES:
            if (
                state
                and all(k.startswith(prefix) for k in state)
                and not any(k.startswith(prefix) for k in own)
            ):
                state = {k.removeprefix(prefix): v for k, v in state.items()}
                changed = True
    return state


def _by_prefix_table(state: dict, table: Mapping[str, str]) -> dict:
    """Rename keys by the longest matching prefix of ``table`` (``{"from": "to"}``)."""
    ordered = sorted(table.items(), key=lambda item: -len(item[0]))
    renamed = {}
    for key, value in state.items():
        for old, new in ordered:
            if key.startswith(old):
                key = new + key.removeprefix(old)
                break
        renamed[key] = value
    return renamed


def _by_order(state: dict, reference: list[str], own: dict, head: set[str], path: Path, arch):
    """Pair the file's tensors with the network's in order: equal counts, equal shapes
    (a replaced head excepted), else an error naming the first pair that differs."""
    values = list(state.items())
    if len(values) != len(reference):
        raise ConfigError(
            f'weights_map = "order": {path} holds {len(values)} tensors and {arch} has'
            f" {len(reference)}: not the same network (or another version of it)"
        )
    mapped = {}
    for index, (name, (file_name, tensor)) in enumerate(zip(reference, values, strict=True)):
        if name in head and (name not in own or own[name].shape != tensor.shape):
            continue  # the replaced head: built for this project's classes
        if own[name].shape != tensor.shape:
            raise ConfigError(
                f'weights_map = "order": tensor {index} of {path} ({file_name},'
                f" {tuple(tensor.shape)}) does not fit {arch}'s {name}"
                f" ({tuple(own[name].shape)}): not the same network"
            )
        mapped[name] = tensor
    return mapped


def _head_keys(target: nn.Module, own: dict) -> tuple[list[str], bool]:
    """The classification head's parameter names, and whether the head was replaced by
    ``nn.Identity`` (an embedding backbone: the network lacks them, the file has them)."""
    replaced = getattr(target, "replaced_head", None)
    if replaced is not None:
        return [f"{replaced}.weight", f"{replaced}.bias"], True
    name = head_name(target)
    return [k for k in own if k.startswith(name + ".")], False


def _names(keys) -> str:
    keys = list(keys)
    more = f" and {len(keys) - SHOWN} more" if len(keys) > SHOWN else ""
    return ", ".join(keys[:SHOWN]) + more


def _likely_cause(state: dict, own: dict, backbone: list[str]) -> str:
    file_names = list(state)
    for name in file_names:
        if backbone and name.endswith("." + backbone[0]):
            prefix = name.removesuffix(backbone[0])
            renamed = [k.removeprefix(prefix) for k in file_names if k.startswith(prefix)]
            if len(renamed) >= 0.9 * len(file_names) and sum(k in own for k in renamed) >= (
                0.9 * len(renamed)
            ):
                return (
                    f"the file's names carry the prefix {prefix!r}: weights_map ="
                    f' {{ "{prefix}" = "" }} maps them'
                )
    shapes_in_order = [tuple(v.shape) for v in state.values()]
    own_shapes = [tuple(own[k].shape) for k in own]
    if len(shapes_in_order) == len(own_shapes) and shapes_in_order[:-2] == own_shapes[:-2]:
        return (
            "the same tensors in the same order under other names (another implementation"
            ' of this network): weights_map = "order" loads them, checking every shape'
        )
    return "weights of another architecture (or another variant of it)"


def load_backbone(
    network: nn.Module,
    path: Path,
    *,
    architecture: str,
    weights_map: str | Mapping[str, str] = "names",
) -> LoadedWeights:
    """Load ``path`` into ``network`` exactly (see the module's docstring)."""
    target = unwrapped(network)
    own = target.state_dict()
    head, replaced = _head_keys(target, own)
    head_set = set(head)
    backbone = [k for k in own if k not in head_set]
    reference = list(own) + [k for k in head if k not in own]
    state = _strip_prefixes(read_state_dict(path), list(own))
    if weights_map == "order":
        mapped = _by_order(state, reference, own, head_set, path, architecture)
    elif isinstance(weights_map, Mapping):
        mapped = _by_prefix_table(state, weights_map)
    elif weights_map == "names":
        mapped = state
    else:
        raise ConfigError(
            f'weights_map {weights_map!r}: use "names", "order" or a table of prefixes'
        )
    missing = [k for k in backbone if k not in mapped]
    other_shape = [
        f"{k} {tuple(mapped[k].shape)} vs {tuple(own[k].shape)}"
        for k in backbone
        if k in mapped and mapped[k].shape != own[k].shape
    ]
    unexpected = [k for k in mapped if k not in own and k not in head_set]
    if missing or other_shape or unexpected:
        parts = [
            f"{len(missing)} of the network's {len(backbone)} backbone tensors missing"
            + (f" ({_names(missing)})" if missing else ""),
            f"{len(unexpected)} unexpected" + (f" ({_names(unexpected)})" if unexpected else ""),
            f"{len(other_shape)} of another shape"
            + (f" ({_names(other_shape)})" if other_shape else ""),
        ]
        raise ConfigError(
            f"weights file {path} does not fit {architecture}: {'; '.join(parts)}."
            f" Likely cause: {_likely_cause(state, own, backbone)}. Nothing was trained"
        )
    take = {k: mapped[k] for k in backbone}
    head_fits = all(k in mapped and k in own and mapped[k].shape == own[k].shape for k in head)
    if head_fits:
        take.update({k: mapped[k] for k in head})
    target.load_state_dict(take, strict=False)
    if replaced:
        said = "not used (embeddings)"
    else:
        said = "from the file" if head_fits else f"new ({own[head[0]].shape[0]} classes)"
    return LoadedWeights(Path(path), file_sha256(Path(path)), len(backbone), len(backbone), said)
