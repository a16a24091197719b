"""The baseline of bench_serve: a bare Starlette endpoint calling the same champion's
predict, with no keys, no contract check and no logging.

    python -m benchmarks._bare_server CONFIG PORT
"""

from __future__ import annotations

import sys

import numpy as np
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from mllife.config.project import load_config
from mllife.models.registry import champion_ref, load_model
from mllife.storage.store import Store


def main() -> None:
    import os

    import torch

    # as many torch threads as CPUs this process may use (the benchmark pins it to one):
    # more make a sentence encoder's threads spin against each other
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    config = load_config(sys.argv[1])
    store = Store(config.store_path)
    model = load_model(champion_ref(store), artifacts_dir=config.artifacts_dir, store=store)
    classes = model.classes

    async def predict(request):
        rows = orjson.loads(await request.body())["rows"]
        proba = model.predict_proba(rows)
        best = proba.argmax(axis=1)
        out = [
            {"label": classes[i], "confidence": p}
            for i, p in zip(best, proba[np.arange(len(best)), best].tolist(), strict=True)
        ]
        return Response(orjson.dumps({"predictions": out}), media_type="application/json")

    async def health(request):
        return Response(b"{}", media_type="application/json")

    app = Starlette(
        routes=[
            Route("/predict", predict, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
        ]
    )
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[2]),
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
