"""HTTP serving of the champion: access control, prediction logging, staged rollout.

>>> from mllife.serve import create_app  # doctest: +SKIP
>>> app = create_app(load_config("mllife.toml"))  # any ASGI server can run it
"""

from __future__ import annotations

import importlib

# Imported on first use (PEP 562): `mllife keys` needs mllife.serve.keys, not the
# server and its models (torch).
_LAZY = {
    "ModelServer": "mllife.serve._app",
    "create_app": "mllife.serve._app",
    "decode_image": "mllife.serve._images",
    "InputError": "mllife.serve._inputs",
    "RowContract": "mllife.serve._inputs",
    "feature_contract": "mllife.serve._inputs",
    "Lineup": "mllife.serve._lineup",
    "ServedModel": "mllife.serve._lineup",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mllife.serve' has no attribute {name!r}")


__all__ = [
    "InputError",
    "Lineup",
    "ModelServer",
    "RowContract",
    "ServedModel",
    "create_app",
    "decode_image",
    "feature_contract",
    "run_server",
]


def run_server(config, *, host: str | None = None, port: int | None = None) -> None:
    """Serve ``config``'s champion with uvicorn until SIGINT/SIGTERM (then flush logs)."""
    import uvicorn

    from mllife.serve._app import create_app
    from mllife.serve._protocol import deadline_protocol

    app = create_app(config)
    server = app.state.server
    host = host or config.serving.host
    port = config.serving.port if port is None else port
    champion = server.lineup.champion
    what = (
        "no champion yet (503 until one is promoted)"
        if champion is None
        else f"champion {champion.ref.name} {champion.ref.model_hash[:12]}"
    )
    print(f"mllife serve: {what} on http://{host}:{port}", flush=True)
    settings = config.serving
    uvicorn.run(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http=deadline_protocol(
            header_timeout=settings.header_timeout_seconds,
            body_timeout=settings.body_timeout_seconds,
        ),
        timeout_keep_alive=settings.keep_alive_seconds,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=10,
    )
