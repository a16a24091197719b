"""A pretrained sentence encoder (a sentence-transformers folder: ``config.json``,
``model.safetensors``, ``tokenizer.json``, pooling settings), loaded exactly or not at all,
and run in length-sorted batches.

Built from its parts with well-kept libraries rather than through ``SentenceTransformer``:
the tokenizer is Hugging Face ``tokenizers`` (Rust) and the network ``transformers``'
``AutoModel`` built from the folder's config, so that every tensor of the weights file is
checked into the network by name (``from_pretrained`` only warns about missing ones), the
tokenizer travels inside the model artifact as its JSON, and the count of texts truncated
at the token limit is known. ``tests/test_text.py`` checks the vectors equal
``SentenceTransformer.encode``'s.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mllife._errors import ConfigError

__all__ = ["EncoderFiles", "SentenceEncoder", "read_encoder_folder"]

#: buffers transformers rebuilds itself; older files carry them as tensors
_REBUILT = ("embeddings.position_ids",)


@dataclass(frozen=True)
class EncoderFiles:
    """What a sentence-transformers folder holds, read into memory (plain data)."""

    config: dict[str, Any]
    tokenizer_json: str
    state: dict[str, np.ndarray]
    pooling: str  #: "mean" or "cls"
    normalize: bool
    max_tokens: int
    sha256: str  #: of the weights file

    def label(self) -> str:
        """The encoder's identity for caches: its architecture and weights' digest."""
        return f"{self.config.get('model_type', 'encoder')}-{self.sha256[:16]}"


def read_encoder_folder(folder: Path) -> EncoderFiles:
    """The encoder in ``folder``; a :class:`ConfigError` naming what is missing."""
    folder = Path(folder)
    needed = ["config.json", "tokenizer.json"]
    weights = folder / "model.safetensors"
    missing = [n for n in needed if not (folder / n).is_file()]
    if not weights.is_file():
        missing.append("model.safetensors")
    if missing:
        raise ConfigError(
            f"sentence encoder folder {folder} lacks {missing}: point the candidate's"
            " 'weights' at a sentence-transformers folder (config.json, model.safetensors,"
            " tokenizer.json; `mllife init --text` unpacks all-MiniLM-L6-v2 into"
            " encoders/)"
        )
    from mllife.models.weights import read_state_dict

    data = weights.read_bytes()
    state = {k: v.numpy() for k, v in read_state_dict(weights).items()}
    pooling, normalize = "mean", False
    pooling_file = folder / "1_Pooling" / "config.json"
    if pooling_file.is_file():
        settings = json.loads(pooling_file.read_text())
        if settings.get("pooling_mode_cls_token"):
            pooling = "cls"
        elif not settings.get("pooling_mode_mean_tokens", True):
            raise ConfigError(
                f"{pooling_file}: only mean and CLS pooling are supported, not {settings}"
            )
    modules = folder / "modules.json"
    if modules.is_file():
        normalize = any(m.get("type", "").endswith("Normalize") for m in json.loads(
            modules.read_text()))  # fmt: skip
    config = json.loads((folder / "config.json").read_text())
    max_tokens = int(config.get("max_position_embeddings", 512))
    st_config = folder / "sentence_bert_config.json"
    if st_config.is_file():
        max_tokens = int(json.loads(st_config.read_text()).get("max_seq_length", max_tokens))
    return EncoderFiles(
        config=config,
        tokenizer_json=(folder / "tokenizer.json").read_text(encoding="utf-8"),
        state=state,
        pooling=pooling,
        normalize=normalize,
        max_tokens=max_tokens,
        sha256=hashlib.sha256(data).hexdigest(),
    )


class SentenceEncoder:
    """Texts in, one vector each out (pooled token states, optionally unit length)."""

    def __init__(self, files: EncoderFiles, *, source: str | None = None) -> None:
        from tokenizers import Tokenizer
        from transformers import AutoConfig, AutoModel

        self.files = files
        self.tokenizer = Tokenizer.from_str(files.tokenizer_json)
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(files.max_tokens)
        settings = dict(files.config)
        model_type = settings.pop("model_type", None)
        if model_type is None:
            raise ConfigError(f"encoder config {source or ''} names no model_type")
        config = AutoConfig.for_model(model_type, **settings)
        self.network = AutoModel.from_config(config).eval()
        self.loaded = self._load(files.state, source or "the artifact")
        self.pad_id = self.tokenizer.token_to_id("[PAD]") or 0
        #: texts cut at the token limit by this encoder's calls so far (serving reads it
        #: for /metrics; several inference threads may add at once)
        self.truncated = 0
        self._counting = threading.Lock()

    def _load(self, state: dict[str, np.ndarray], source: str) -> int:
        expected = self.network.state_dict()
        tensors = {k: torch.from_numpy(np.array(v)) for k, v in state.items() if k not in _REBUILT}
        missing = sorted(set(expected) - set(tensors) - set(_REBUILT))
        unexpected = sorted(set(tensors) - set(expected))
        shapes = [k for k in set(tensors) & set(expected) if tensors[k].shape != expected[k].shape]
        if missing or unexpected or shapes:
            raise ConfigError(
                f"encoder weights {source} do not fit a {self.files.config.get('model_type')}"
                f" network built from its config.json: missing {missing[:5]} ({len(missing)}),"
                f" unexpected {unexpected[:5]} ({len(unexpected)}), other shapes"
                f" {sorted(shapes)[:5]}: is config.json the one these weights came with?"
            )
        self.network.load_state_dict(tensors, strict=False)  # buffers in _REBUILT stay
        return len(tensors)

    @property
    def dimension(self) -> int:
        return int(self.files.config["hidden_size"])

    def tokens(self, texts: list[str]) -> list[list[int]]:
        encodings = self.tokenizer.encode_batch(texts)
        cut = sum(bool(e.overflowing) for e in encodings)
        if cut:
            with self._counting:
                self.truncated += cut
        return [e.ids for e in encodings]

    def _batch(self, ids: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(i) for i in ids)
        tokens = torch.full((len(ids), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(ids), width), dtype=torch.long)
        for row, sequence in enumerate(ids):
            tokens[row, : len(sequence)] = torch.tensor(sequence)
            mask[row, : len(sequence)] = 1
        return tokens, mask

    def pooled(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The sentence vectors of one padded batch (with gradients when enabled)."""
        states = self.network(
            input_ids=tokens, attention_mask=mask, token_type_ids=torch.zeros_like(tokens)
        ).last_hidden_state
        if self.files.pooling == "cls":
            vectors = states[:, 0]
        else:
            weights = mask.unsqueeze(-1).to(states.dtype)
            vectors = (states * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
        if self.files.normalize:
            vectors = torch.nn.functional.normalize(vectors, dim=1)
        return vectors

    def batches(self, texts: list[str], batch_size: int):
        """(positions, tokens, mask) per batch, texts of similar length together (padding
        is paid per batch, so sorting by length saves most of it)."""
        ids = self.tokens(texts)
        order = np.argsort([len(i) for i in ids], kind="stable")
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            yield chunk, *self._batch([ids[i] for i in chunk])

    def encode(self, texts: list[str], *, batch_size: int = 64) -> np.ndarray:
        """(N, D) float32 vectors, in the order of ``texts``."""
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        self.network.eval()
        with torch.inference_mode():
            for chunk, tokens, mask in self.batches(texts, batch_size):
                out[chunk] = self.pooled(tokens, mask).float().numpy()
        return out

    def state(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy() for k, v in self.network.state_dict().items()
                if k not in _REBUILT}  # fmt: skip
