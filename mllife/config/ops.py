"""Operations sections of mllife.toml: [serving], [monitoring], [versioning] and [team]."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "AlertsConfig",
    "LogConfig",
    "MonitoringConfig",
    "ReviewConfig",
    "RolloutConfig",
    "ServingConfig",
    "TeamConfig",
    "VersioningConfig",
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RolloutConfig(_Section):
    """How a challenger earns trust before it takes over.

    ``shadow``: the staged challenger predicts on every request too; logged, never
    returned. ``canary``: a ``share`` of requests (chosen by a stable hash of the request
    id, so every key's traffic is split) is answered by the staged challenger. Only a
    challenger that passed every gate is ever staged (or one staged by hand with
    ``mllife stage``): a refused one never receives traffic.
    """

    mode: Literal["off", "shadow", "canary"] = "off"
    share: float = Field(0.1, gt=0.0, lt=1.0)
    #: true: a challenger that passes every gate is *staged* (served as shadow or canary)
    #: instead of promoted at once, and promoted or withdrawn by the rule below (or by
    #: `mllife promote` / `mllife withdraw`); false: promoted at once
    stage: bool = False
    #: the rule, judged by the staged_rollout asset from the logged predictions and
    #: feedback since staging: at least this many predictions by the challenger...
    min_predictions: int = Field(200, ge=1)
    #: ...and this many of them labelled by feedback (the champion's too, to compare)...
    min_feedback: int = Field(30, ge=1)
    #: ...then the 95% interval of (challenger - champion) accuracy on that feedback
    #: decides: its lower bound at or above -max_accuracy_drop promotes (no worse than
    #: this, beyond chance), its upper bound below it withdraws, otherwise it waits
    max_accuracy_drop: float = Field(0.02, ge=0.0, le=1.0)
    #: withdrawn at once (after min_predictions) when its 5xx rate exceeds the
    #: champion's by more than this, or its p95 latency the champion's by more than
    #: this fraction (0.5: 50% slower)
    max_error_increase: float = Field(0.01, ge=0.0, le=1.0)
    max_latency_increase: float = Field(0.5, ge=0.0)
    #: a challenger the traffic has not settled after this many days is withdrawn, with
    #: a verdict that says so (it never waits forever)
    max_days: float = Field(14.0, gt=0.0)
    #: kept for old configurations: only "latest" (the staged challenger) is accepted;
    #: stage a model by hand with `mllife stage HASH --reason ...`
    challenger: str = "latest"

    @field_validator("challenger")
    @classmethod
    def _only_latest(cls, value: str) -> str:
        if value != "latest":
            raise ValueError(
                "serving.rollout.challenger only takes 'latest' now: the staged challenger"
                f" is served; to serve {value!r}, run `mllife stage {value} --reason ...`"
            )
        return value

    @model_validator(mode="after")
    def _staging_needs_traffic(self) -> RolloutConfig:
        if self.stage and self.mode == "off":
            raise ValueError(
                "serving.rollout.stage = true needs serving.rollout.mode = 'shadow' or"
                " 'canary': a staged challenger must receive traffic to be judged"
            )
        return self


class LogConfig(_Section):
    """Served predictions go to Parquet segments under ``.mllife/predictions/``.

    A SIGKILL loses what is not yet in a segment: ``flush_seconds`` of traffic, at most
    ``flush_rows`` rows (up to twice that while a segment is being written). A normal
    shutdown (SIGTERM, Ctrl-C) flushes.
    """

    enabled: bool = True
    #: caps a segment (and the buffer's memory); under load segments follow the clock:
    #: writing a segment has a fixed cost of milliseconds, so few large ones are cheaper
    #: for the server than many small ones (measured: a 4,096-row segment cost 105 us per
    #: 64-row request, a 16,384-row one 40 us)
    flush_rows: int = Field(50_000, ge=1, le=1_000_000)
    flush_seconds: float = Field(1.0, gt=0.0, le=600.0)


class BatchingConfig(_Section):
    """Micro-batching of image requests (and of texts for a sentence-encoder model):
    requests for the same model that arrive within ``window_ms`` of the first share one
    forward pass of up to ``max_images`` images (or texts)."""

    enabled: bool = True
    #: how long the first request of a batch waits for others (its added latency). At
    #: 32 clients on one CPU, 5 ms fills batches of ~32 where 2 ms gave ~18: more
    #: requests/s and a lower p99 (benchmarks/bench_serve_images.py)
    window_ms: float = Field(5.0, ge=0.0, le=1000.0)
    max_images: int = Field(32, ge=1, le=4096)


class ServingConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    #: largest request body accepted (413 above it)
    max_body_bytes: int = Field(8 * 1024 * 1024, ge=1024)
    #: most rows or images in one /predict request (413 above it); a prediction id holds
    #: the input's position in at most 6 digits
    max_batch: int = Field(1024, ge=1, le=1_000_000)
    #: largest decoded image (width x height), against decompression bombs
    max_image_pixels: int = Field(4096 * 4096, ge=1)
    #: largest total of decoded pixels in one request, all its images together, checked
    #: from the image headers before any pixel is decoded (a 700-byte WebP can declare
    #: 16 M pixels, so the body size alone bounds nothing)
    max_request_pixels: int = Field(32 * 1024 * 1024, ge=1)
    #: a client must send a request's headers within this many seconds of its first byte,
    #: and its body within body_timeout_seconds of the headers (else: connection closed);
    #: an idle keep-alive connection is closed after keep_alive_seconds
    header_timeout_seconds: float = Field(5.0, gt=0.0, le=300.0)
    body_timeout_seconds: float = Field(20.0, gt=0.0, le=3600.0)
    keep_alive_seconds: float = Field(5.0, gt=0.0, le=300.0)
    #: how often the server looks for a new champion, challenger or API key
    watch_seconds: float = Field(1.0, gt=0.0, le=3600.0)
    #: inference jobs queued or running in worker threads; one more answers 503 with
    #: Retry-After (back-pressure instead of an ever-growing queue)
    max_queue: int = Field(64, ge=1, le=100_000)
    #: a request whose inference takes longer answers 504; the server keeps answering
    request_timeout_seconds: float = Field(30.0, gt=0.0, le=3600.0)
    #: table batches up to this many rows are predicted inline on the event loop
    #: (microseconds; a thread hop would cost more); larger ones and images in threads
    inline_rows: int = Field(64, ge=0)
    #: one JSON line per request on stdout (time, method, path, status, ms, client);
    #: off by default: a blocked stdout (a full pipe) would stall the server
    access_log: bool = False
    #: server processes (`mllife serve --workers N` overrides); each loads the models
    #: and logs on its own, all on one port
    workers: int = Field(1, ge=1, le=64)
    batching: BatchingConfig = BatchingConfig()
    log: LogConfig = LogConfig()
    rollout: RolloutConfig = RolloutConfig()


class MonitoringConfig(_Section):
    """Drift alarms, drift-triggered retraining, and how old a champion may get."""

    #: how often monitoring_schedule runs the monitor job (when the schedule is on): a
    #: whole fraction of an hour or of a day
    drift_check_minutes: int = Field(60, ge=1, le=1440)
    #: when a monitor run finds dataset drift, the retrain_on_drift sensor requests a
    #: retrain (when the sensor is on)
    retrain_on_drift: bool = False
    #: the champion_freshness check fails past these ages
    max_champion_age_days: float = Field(30.0, gt=0)
    max_data_age_days: float = Field(90.0, gt=0)
    #: served predictions, feedback and failures older than this many days are deleted
    #: from the store at every ingestion (None: kept)
    keep_days: float | None = Field(None, gt=0)


class ReviewConfig(_Section):
    """The review desk (``/review`` on ``mllife serve``, ``mllife review``): served images
    kept so a person can see them, within a size and an age limit. Kept inputs live only
    in the project's ``.mllife/served_inputs/``, named by their SHA-256."""

    #: keep served images for review (table rows are reviewed from the prediction log)
    keep_inputs: bool = True
    #: a served image larger than this is not kept (its item shows "not kept")
    max_input_kb: int = Field(2048, ge=1)
    #: at most this much is kept; past it, new inputs are not kept until old ones expire
    max_total_mb: float = Field(512.0, gt=0)
    #: kept inputs older than this are deleted (by the server, hourly, and at every
    #: ingestion of served traffic)
    keep_days: float = Field(30.0, gt=0)
    #: items per queue page
    page_size: int = Field(25, ge=1, le=200)
    #: longest rating comment accepted (422 above it)
    max_comment_chars: int = Field(1000, ge=1, le=100_000)


class AlertsConfig(_Section):
    """Where alerts go (any of them, all of them): a webhook URL (Slack's and Teams'
    incoming webhooks accept the JSON ``{"text": ...}`` posted), an email through an
    SMTP server, a command (the alert as JSON on its standard input). Each alert says
    what happened, which model, the figure and the next step, and is sent once (the
    store remembers it). An unreachable channel is retried with backoff, then the alert
    is recorded as undelivered (``mllife status`` lists it); a run never fails for it."""

    webhook: str | None = None
    email: str | None = None
    smtp_host: str = "localhost"
    smtp_port: int = Field(25, ge=1, le=65535)
    smtp_from: str = "mllife@localhost"
    #: run with the alert as JSON on stdin, e.g. ["notify-send", "mllife"]
    command: tuple[str, ...] = ()
    #: seconds per delivery attempt, and attempts per alert and channel
    timeout_seconds: float = Field(5.0, gt=0, le=120)
    attempts: int = Field(3, ge=1, le=10)
    #: a new champion's served p95 latency more than this fraction above the previous
    #: champion's is an alert (0.5: 50% slower)
    max_latency_increase: float = Field(0.5, ge=0)
    #: served predictions (and labelled ones) each figure needs before it can alert
    min_served: int = Field(100, ge=1)
    min_labelled: int = Field(30, ge=1)

    @field_validator("webhook")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        from urllib.parse import urlsplit

        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"{value!r} is not an http(s) URL with a host; Slack and Teams give one"
                " (https://hooks.slack.com/services/...)"
            )
        return value

    @field_validator("email")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None and ("@" not in value or value.startswith("@") or " " in value):
            raise ValueError(f"{value!r} is not an email address")
        return value

    @property
    def configured(self) -> bool:
        return bool(self.webhook or self.email or self.command)


class VersioningConfig(_Section):
    """Pipeline artifacts are DVC-tracked after every run (``artifacts.dvc``)."""

    #: push data and artifacts to this DVC remote after each run (a failed push warns)
    remote: str | None = None
    push: bool = False


class TeamConfig(_Section):
    """The team profile (``mllife run --profile team``): the Dagster instance's runs,
    events and schedules in a shared PostgreSQL database instead of the project's local
    SQLite files, so every member and ``mllife ui`` see the same runs.

    ``postgres_url`` is a ``postgresql://user:password@host:port/database`` URL, or
    ``env:NAME`` to read it from the environment variable NAME (keeps the password out
    of a committed file). It is handed to Dagster through the environment, never written
    into the instance settings.
    """

    postgres_url: str | None = None
    #: the Celery broker of ``--executor celery`` (Redis): redis://host:port/db or env:NAME
    broker_url: str | None = None
    #: the Celery queue of the training steps (point GPU workers at it); every other
    #: step goes to the default queue, "dagster"
    training_queue: str = Field("training", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    #: a folder every worker reaches (a shared or network file system), relative to the
    #: project or absolute: the metrics store, model artifacts, step outputs, reports and
    #: known-problem patterns of the team profile live there, not in each checkout
    storage: str | None = None
    #: where step outputs (the values passed between steps) live, when not on
    #: ``storage``: a folder or an fsspec URL (``s3://bucket/prefix``, ``gs://...``,
    #: ``memory://`` in tests); the filesystem's package (s3fs, gcsfs) must be installed
    step_outputs: str | None = None

    @field_validator("step_outputs")
    @classmethod
    def _step_outputs(cls, value: str | None) -> str | None:
        if value is not None and "://" in value:
            import fsspec

            protocol = value.split("://", 1)[0]
            if protocol not in fsspec.available_protocols():
                raise ValueError(
                    f"{value!r}: {protocol!r} is not a filesystem fsspec knows; use a folder"
                    " or a URL such as s3://bucket/prefix"
                )
        return value

    @field_validator("storage")
    @classmethod
    def _folder(cls, value: str | None) -> str | None:
        if value is not None and "://" in value:
            raise ValueError(
                f"{value!r}: object storage URLs are not supported yet; mount it, or use a"
                " shared file system path"
            )
        return value

    @field_validator("postgres_url")
    @classmethod
    def _database(cls, value: str | None) -> str | None:
        return _url_or_variable(value, ("postgresql", "postgres"), "user:password@host:port/db")

    @field_validator("broker_url")
    @classmethod
    def _broker(cls, value: str | None) -> str | None:
        return _url_or_variable(value, ("redis", "rediss"), "host:port/db")


def _url_or_variable(value: str | None, schemes: tuple[str, ...], shape: str) -> str | None:
    """A URL of one of ``schemes``, or ``env:NAME`` (resolved when used)."""
    if value is None:
        return None
    if value.startswith("env:"):
        if not value[4:].isidentifier():
            raise ValueError(f"env:{value[4:]!r} does not name an environment variable")
        return value
    if not value.startswith(tuple(f"{scheme}://" for scheme in schemes)):
        raise ValueError(
            f"expected {schemes[0]}://{shape} or env:NAME, got a value starting"
            f" {value.split(':')[0][:20]!r}"
        )
    return value
