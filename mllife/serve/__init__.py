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


def run_server(
    config, *, host: str | None = None, port: int | None = None, workers: int | None = None
) -> None:
    """Serve ``config``'s champion with uvicorn until SIGINT/SIGTERM (then flush logs),
    in ``workers`` processes (default ``serving.workers``) on one port."""
    import os

    import uvicorn

    settings = config.serving
    host = host or settings.host
    port = settings.port if port is None else port
    workers = workers or settings.workers
    common = {
        "host": host,
        "port": port,
        "loop": "uvloop",
        "timeout_keep_alive": settings.keep_alive_seconds,
        "log_level": "warning",
        "access_log": False,
        "timeout_graceful_shutdown": 10,
    }
    if workers > 1:
        from mllife.serve._factory import CONFIG_ENV

        # each process builds its own app from the config file (see _factory)
        os.environ[CONFIG_ENV] = str(config.path)
        print(f"mllife serve: {workers} worker processes on http://{host}:{port}", flush=True)
        uvicorn.run(
            "mllife.serve._factory:app_from_environment",
            factory=True,
            workers=workers,
            http="mllife.serve._factory:WorkerProtocol",
            **common,
        )
        return

    from mllife.serve._app import create_app
    from mllife.serve._protocol import deadline_protocol

    app = create_app(config)
    champion = app.state.server.lineup.champion
    what = (
        "no champion yet (503 until one is promoted)"
        if champion is None
        else f"champion {champion.ref.name} {champion.ref.model_hash[:12]}"
    )
    print(f"mllife serve: {what} on http://{host}:{port}", flush=True)
    protocol = deadline_protocol(
        header_timeout=settings.header_timeout_seconds, body_timeout=settings.body_timeout_seconds
    )
    uvicorn.run(app, http=protocol, **common)
