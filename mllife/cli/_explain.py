"""`mllife explain`: why the champion (or another model) predicted what it did for one
row or one image."""

from __future__ import annotations

import argparse
from pathlib import Path

from mllife.config.project import load_config


def register(sub) -> None:
    """Add this command to the ``mllife`` parser's subcommands."""
    explain = sub.add_parser(
        "explain",
        help="one prediction explained: SHAP values per column, or a saliency map",
    )
    explain.add_argument(
        "input", help="an image file, or a table row as JSON ('{\"age\": 61, ...}' or a .json file)"
    )
    explain.add_argument(
        "--output",
        default=None,
        help="images: where the PNG goes (default: <image name>.saliency.png here)",
    )
    explain.set_defaults(func=cmd_explain)


def cmd_explain(args: argparse.Namespace) -> int:
    from mllife._errors import MllifeError
    from mllife.evaluation.explain import explain_image, explain_row, read_input
    from mllife.models.registry import champion_ref, load_model
    from mllife.storage.store import Store

    config = load_config(args.config)
    kind, value = read_input(args.input)
    if (kind == "row") != (config.data.kind == "table"):
        expected = "a table row as JSON" if config.data.kind == "table" else "an image file"
        raise MllifeError(f"this is {config.data.kind} project: explain takes {expected}")
    store = Store(config.store_path)
    ref = champion_ref(store)
    if ref is None:
        raise MllifeError("no champion is deployed yet: `mllife run` deploys one")
    model = load_model(ref, artifacts_dir=config.artifacts_dir, store=store)
    print(f"model: {ref.name} {ref.model_hash[:12]} (the champion)")
    if kind == "row":
        from mllife.data.stage import read_raw

        background = read_raw(config).manifest
        for line in explain_row(model, value, background).lines():
            print(line)
        return 0
    found = explain_image(model, value, what=args.input)
    output = Path(args.output or Path(args.input).with_suffix(".saliency.png").name)
    output.write_bytes(found.png)
    print(f"prediction: {found.predicted} ({found.confidence:.3f})")
    print(f"saliency ({found.method}; red: what the prediction leans on): {output}")
    return 0
