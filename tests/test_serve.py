"""`mllife serve` as a real HTTP server on 127.0.0.1: predictions, keys, bad input,
logging, feedback, champion switches and rollout."""

import base64
import hashlib
import io
import json
import threading
import time
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest

from mllife._errors import DataError, PromotionError
from mllife.monitoring.traffic import (
    ingest_segments,
    served_quality,
    shadow_comparison,
    traffic_summary,
)
from mllife.promotion.rollout import record_verdict, stage
from mllife.serve.keys import create_key, revoke_key
from tests.serving import ServerProcess, table_project


def _wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    project = table_project(tmp_path_factory.mktemp("serve") / "project")
    store = project["store"]
    project["key"] = create_key(store, "alice")
    project["feedback_only"] = create_key(store, "labeller", routes=("feedback",))
    project["other_model"] = create_key(store, "narrow", models=("some_other_model",))
    with ServerProcess(project["config"].path) as server:
        project["server"] = server
        yield project


def test_predicts_single_rows_and_batches_with_the_champion(served):
    server, rows = served["server"], served["rows"]
    status, body = server.request("POST", "/predict", {"row": rows[0]}, key=served["key"])
    assert status == 200
    assert body["model_hash"] == served["hashes"]["logreg"] and body["role"] == "champion"
    [only] = body["predictions"]
    assert only["label"] in ("malignant", "benign") and 0.5 <= only["confidence"] <= 1.0

    status, body = server.request("POST", "/predict", {"rows": rows[:64]}, key=served["key"])
    assert status == 200 and len(body["predictions"]) == 64
    labels = [p["label"] for p in body["predictions"]]
    # the same model, loaded here, predicts the same (the server uses its own preprocessing)
    from mllife.models.registry import ModelRef, load_model

    config, store = served["config"], served["store"]
    model = load_model(
        ModelRef.from_row(store.model_row(served["hashes"]["logreg"])),
        artifacts_dir=config.artifacts_dir,
        store=store,
    )
    assert labels == list(model.predict(pl.DataFrame(rows[:64])))
    assert len({p["id"] for p in body["predictions"]}) == 64


def test_model_and_health_describe_the_champion(served):
    server = served["server"]
    status, health = server.request("GET", "/health")
    assert status == 200 and health["status"] == "ok"
    assert "champion" not in health  # what is deployed is for key holders only
    status, health = server.request("GET", "/health", key=served["key"])
    assert health["champion"] == served["hashes"]["logreg"]
    status, model = server.request("GET", "/model", key=served["key"])
    assert status == 200
    assert model["name"] == "logreg" and model["data_version"] == "test-data"
    assert model["classes"] == ["benign", "malignant"] and model["rollout"]["mode"] == "off"


def test_keys_are_required_and_scoped(served):
    server, row = served["server"], {"row": served["rows"][0]}
    assert server.request("POST", "/predict", row)[0] == 401
    status, body = server.request("POST", "/predict", row, key="mll_not-a-real-key")
    assert status == 401 and "unknown" in body["error"]
    status, body = server.request("POST", "/predict", row, key=served["feedback_only"])
    assert status == 403 and "/predict" in body["error"]
    status, body = server.request("POST", "/predict", row, key=served["other_model"])
    assert status == 403 and "logreg" in body["error"]
    status, _ = server.request("POST", "/predict", row, headers={"X-API-Key": served["key"]})
    assert status == 200
    # keys are stored hashed: the token itself appears nowhere in the store
    dump = served["store"].query("SELECT * FROM api_keys")
    assert served["key"] not in str(dump.to_dicts())


@pytest.mark.parametrize(
    ("body", "headers", "status", "says"),
    [
        (b'{"row": {', {"Content-Type": "application/json"}, 400, "malformed JSON"),
        (b"[1, 2]", {"Content-Type": "application/json"}, 422, "JSON object"),
        ({"rows": []}, None, 422, "non-empty list"),
        ({"row": {"mean_radius": 1.0}}, None, 422, "missing column"),
        (b"x=1", {"Content-Type": "application/x-www-form-urlencoded"}, 415, "not accepted"),
        (b"{}", {"Content-Type": "application/json"}, 422, "rows"),
    ],
)
def test_bad_requests_get_a_clear_4xx(served, body, headers, status, says):
    got, answer = served["server"].request(
        "POST", "/predict", body, key=served["key"], headers=headers
    )
    assert got == status and says in answer["error"], answer


def test_wrong_types_and_ranges_name_the_row_and_column(served):
    server, rows = served["server"], served["rows"]
    bad = [dict(rows[0]), dict(rows[1])]
    bad[0]["mean_radius"] = "large"
    bad[1]["mean_area"] = -5.0
    status, body = server.request("POST", "/predict", {"rows": bad}, key=served["key"])
    assert status == 422
    text = " ".join(body["problems"])
    assert "row 0, column 'mean_radius' must be a number" in text
    assert "row 1, column 'mean_area' is -5.0, below the contract's minimum" in text


def test_a_value_the_widened_contract_allows_but_a_feature_cannot_hold_is_a_422(tmp_path):
    # A user who drops a maximum from the frozen contract lets 1e300 through; standardized
    # it is inf in float32, which the model would fail on (a 500) instead of saying why.
    project = table_project(tmp_path / "project")
    schema_path = project["config"].schema_path
    schema = json.loads(schema_path.read_text())
    del schema["columns"]["mean_area"]["max"]
    schema_path.write_text(json.dumps(schema))
    key, rows = create_key(project["store"], "alice"), project["rows"]
    far = [dict(rows[0]), {**rows[1], "mean_area": 1e300}]
    with ServerProcess(project["config"].path) as server:
        status, body = server.request("POST", "/predict", {"rows": far}, key=key)
        assert status == 422, body
        assert "row 1, column 'mean_area' is 1e+300, too far from the training" in body["error"]
        status, body = server.request("POST", "/predict", {"rows": far[:1]}, key=key)
        assert status == 200, body


def test_oversized_bodies_and_batches_are_refused(served):
    server, rows = served["server"], served["rows"]
    status, body = server.request("POST", "/predict", {"rows": rows * 2}, key=served["key"])
    assert status == 413 and "max_batch" in body["error"]
    huge = b'{"rows": [' + b" " * (9 * 1024 * 1024) + b"]}"
    status, body = server.request(
        "POST", "/predict", huge, key=served["key"], headers={"Content-Type": "application/json"}
    )
    assert status == 413 and "limit" in body["error"]
    assert server.request("GET", "/health")[0] == 200  # still serving


def test_feedback_is_validated_and_accuracy_on_served_data_is_measured(tmp_path):
    project = table_project(tmp_path / "p", serving="[serving.log]\nflush_seconds = 0.2")
    key = create_key(project["store"], "alice")
    rows, labels = project["rows"], project["labels"]
    with ServerProcess(project["config"].path) as server:
        status, body = server.request("POST", "/predict", {"rows": rows[:40]}, key=key)
        assert status == 200
        ids = [p["id"] for p in body["predictions"]]
        predicted = [p["label"] for p in body["predictions"]]
        feedback = [
            {"prediction_id": i, "label": str(y)} for i, y in zip(ids, labels[:40], strict=True)
        ]
        assert server.request("POST", "/feedback", {"feedback": feedback}, key=key)[0] == 202
        status, answer = server.request(
            "POST", "/feedback", {"prediction_id": "nope", "label": "benign"}, key=key
        )
        assert status == 422 and "prediction_id" in answer["error"]
        status, answer = server.request(
            "POST", "/feedback", {"prediction_id": ids[0], "label": "cat"}, key=key
        )
        assert status == 422 and "not one of" in answer["error"]
        # refused requests log nothing as a prediction
        assert server.request("POST", "/predict", {"row": rows[0]})[0] == 401
        assert server.request("POST", "/predict", {"row": {"x": 1}}, key=key)[0] == 422
    result = ingest_segments(project["config"], project["store"])
    assert (result.predictions, result.feedback) == (40, 40)
    quality = served_quality(project["store"])
    expected = float(np.mean(np.asarray(predicted) == labels[:40]))
    assert quality["labelled"].to_list() == [40]
    assert quality["accuracy"][0] == pytest.approx(expected)
    logged = project["store"].query("SELECT * FROM predictions")
    assert logged.height == 40 and set(logged["key_name"]) == {"alice"}
    assert logged["latency_ms"].min() > 0 and logged["input_hash"].str.len_chars().min() == 64
    # the logged features are the rows sent (canonical JSON, keys sorted), hashed as such
    for text, input_hash, position in logged.select("features", "input_hash", "position").rows():
        assert json.loads(text) == rows[position] and list(json.loads(text)) == sorted(rows[0])
        assert input_hash == hashlib.sha256(text.encode()).hexdigest()
    # a second ingestion finds nothing new: each segment once
    assert ingest_segments(project["config"], project["store"]).segments == 0


def test_champion_switches_without_dropping_requests(tmp_path):
    from mllife.promotion.deploy import promote_model, rollback

    project = table_project(tmp_path / "p")
    config, store, hashes = project["config"], project["store"], project["hashes"]
    key = create_key(store, "alice")
    seen, failures, stop = [], [], threading.Event()
    with ServerProcess(config.path) as server:

        def client():
            while not stop.is_set():
                status, body = server.request(
                    "POST", "/predict", {"row": project["rows"][0]}, key=key
                )
                if status == 200:
                    seen.append(body["model_hash"])
                else:
                    failures.append((status, body))

        worker = threading.Thread(target=client)
        worker.start()
        time.sleep(0.5)
        promote_model(hashes["logreg_small"], config=config, store=store, reason="switch test")
        assert _wait_for(lambda: seen and seen[-1] == hashes["logreg_small"])
        rollback(config=config, store=store, reason="switch back")
        assert _wait_for(lambda: seen[-1] == hashes["logreg"])
        # a key revoked while serving stops working soon after
        revoke_key(store, "alice")
        assert _wait_for(lambda: failures)
        stop.set()
        worker.join()
    assert [s for s, _ in failures] and {s for s, _ in failures} == {401}
    switches = [a for a, b in zip(seen, seen[1:], strict=False) if a != b]
    assert len(switches) == 2 and len(seen) > 20


def test_shadow_rollout_logs_the_challenger_without_returning_it(tmp_path):
    project = table_project(tmp_path / "p")
    challenger = project["hashes"]["logreg_small"]
    config_path = project["config"].path
    text = config_path.read_text().replace(
        "[serving]", '[serving.rollout]\nmode = "shadow"\n[serving]'
    )
    config_path.write_text(text)
    record_verdict(project["store"], model_hash=challenger, name="logreg_small", passed=True,
                   summary="passed every gate", run_id="run")  # fmt: skip
    stage(project["store"], model_hash=challenger, name="logreg_small", reason="test")
    key = create_key(project["store"], "alice")
    with ServerProcess(config_path) as server:
        status, health = server.request("GET", "/health", key=key)
        assert health["challenger"] == challenger and health["rollout"] == "shadow"
        status, body = server.request("POST", "/predict", {"rows": project["rows"][:50]}, key=key)
        assert status == 200 and body["model"] == "logreg"  # the champion answers
    from mllife.config.project import load_config

    config = load_config(config_path)
    ingest_segments(config, project["store"])
    roles = traffic_summary(project["store"])
    assert dict(zip(roles["role"], roles["predictions"], strict=True)) == {
        "champion": 50,
        "shadow": 50,
    }
    comparison = shadow_comparison(project["store"])
    assert comparison["rows"].to_list() == [50] and comparison["shadow"][0] == "logreg_small"
    assert 0.5 <= comparison["agreement"][0] <= 1.0


def _canary_project(tmp_path, *, passed: bool) -> dict:
    project = table_project(
        tmp_path / "p", serving='[serving.rollout]\nmode = "canary"\nshare = 0.5'
    )
    record_verdict(  # as the lifecycle's challenger asset does
        project["store"], model_hash=project["hashes"]["logreg_small"], name="logreg_small",
        passed=passed, summary="test", run_id="run",
    )  # fmt: skip
    return project


def _answers(project, keys) -> dict[str, set]:
    answered: dict[str, set] = {}
    with ServerProcess(project["config"].path) as server:
        assert server.request("GET", "/health")[1]["rollout"] == "canary"
        for _ in range(3):
            for name, key in keys.items():
                status, body = server.request(
                    "POST", "/predict", {"row": project["rows"][0]}, key=key
                )
                assert status == 200
                answered.setdefault(name, set()).add((body["role"], body["model"]))
    return answered


def test_a_refused_challenger_never_receives_canary_traffic(tmp_path):
    project = _canary_project(tmp_path, passed=False)
    store = project["store"]
    with pytest.raises(PromotionError, match="refused by the promotion policy"):
        stage(store, model_hash=project["hashes"]["logreg_small"], name="logreg_small",
              reason="try anyway")  # fmt: skip
    keys = {f"client{i}": create_key(store, f"client{i}") for i in range(16)}
    answered = _answers(project, keys)
    assert {pair for v in answered.values() for pair in v} == {("champion", "logreg")}


def test_canary_traffic_is_split_per_request_at_the_share(tmp_path):
    from mllife.serve._ids import RequestIds
    from mllife.serve._lineup import Lineup

    def served(name: str, digit: str):
        return SimpleNamespace(ref=SimpleNamespace(name=name, model_hash=digit * 64))

    lineup = Lineup(served("champion", "c"), served("challenger", "d"), "canary", 0.1, [])
    ids = RequestIds(tmp_path / "serving.key")
    for i in range(3):  # three keys: each one's traffic is split, none is all-or-nothing
        key = SimpleNamespace(name=f"client{i}", may_use=lambda name: True)
        roles = [lineup.answering(key, ids.new(key.name, 1))[1] for _ in range(10_000)]
        assert abs(roles.count("canary") / 10_000 - 0.1) <= 0.02
    request_id = ids.new("client0", 1)
    assert len({lineup.answering(key, request_id)[1] for _ in range(5)}) == 1  # stable


def test_a_failing_canary_is_logged_per_request_and_withdrawn(tmp_path):
    from mllife.config.ops import RolloutConfig
    from mllife.config.project import load_config
    from mllife.promotion.rollout import staged_challenger
    from mllife.promotion.rollout_rule import judge, rollout_evidence

    project = _canary_project(tmp_path, passed=True)  # share 0.5
    store = project["store"]
    stage(store, model_hash=project["hashes"]["logreg_small"], name="logreg_small",
          reason="passed every gate")  # fmt: skip
    keys = {f"client{i}": create_key(store, f"client{i}") for i in range(3)}
    statuses: dict[str, list[int]] = {}
    failing = {"MLLIFE_FAIL_AT": "serve:predict:logreg_small"}
    with ServerProcess(project["config"].path, env=failing) as server:
        for _ in range(20):
            for name, key in keys.items():
                status, body = server.request(
                    "POST", "/predict", {"row": project["rows"][0]}, key=key
                )
                assert status in (200, 500)
                assert status == 500 or body["role"] == "champion"
                statuses.setdefault(name, []).append(status)
    # per request, not per key: every key saw both the champion and the failing canary
    assert all(200 in seen and 500 in seen for seen in statuses.values()), statuses
    failed = sum(seen.count(500) for seen in statuses.values())
    assert ingest_segments(load_config(project["config"].path), store).failures == failed
    logged = store.query("SELECT role, model_name, error FROM served_failures")
    assert set(logged["role"]) == {"canary"} and set(logged["model_name"]) == {"logreg_small"}
    assert "injected failure" in logged["error"][0]
    evidence = rollout_evidence(store, staged_challenger(store), store.champion().model_hash)
    assert (evidence.failures, evidence.champion_failures) == (failed, 0)
    assert evidence.champion_requests == 60 - failed
    rule = RolloutConfig(mode="canary", stage=True, min_predictions=10, min_feedback=10)
    verdict, why = judge(evidence, rule)
    assert verdict == "withdraw" and why.startswith("5xx rate 100.0%"), why


def test_images_as_base64_or_upload_and_hostile_images(tmp_path, digits_folder):
    from mllife.config.project import load_config
    from mllife.promotion.deploy import promote_model
    from mllife.storage.store import Store
    from tests.conftest import RecordedModels, make_project

    config = load_config(make_project(tmp_path / "img", digits_folder))
    store = Store(config.store_path)
    ref = RecordedModels(config, store, digits_folder).new(1.0)
    promote_model(ref.model_hash, config=config, store=store, reason="test")
    key = create_key(store, "alice")
    files = sorted(digits_folder.rglob("*.png"))[::97][:8]
    with ServerProcess(config.path) as server:
        encoded = [base64.b64encode(f.read_bytes()).decode() for f in files]
        status, body = server.request("POST", "/predict", {"images": encoded}, key=key)
        assert status == 200
        answered = body["predictions"]
        right = sum(
            p["label"] == f.parent.name for p, f in zip(body["predictions"], files, strict=True)
        )
        assert right >= 6
        status, body = server.request(
            "POST",
            "/predict",
            files[0].read_bytes(),
            key=key,
            headers={"Content-Type": "image/png"},
        )
        assert status == 200 and len(body["predictions"]) == 1
        status, body = server.request(
            "POST", "/predict", b"not an image", key=key, headers={"Content-Type": "image/png"}
        )
        assert status == 422 and "not a readable image" in body["error"]
        status, body = server.request("POST", "/predict", {"image": "%%%"}, key=key)
        assert status == 422 and "base64" in body["error"]
        for width, says in ((5000, "5000x5000 pixels"), (60_000, "decompression bomb")):
            bomb = _png_header_only(width, width)
            status, body = server.request(
                "POST", "/predict", bomb, key=key, headers={"Content-Type": "image/png"}
            )
            assert status == 422 and says in body["error"], body
        assert server.request("GET", "/health")[0] == 200
    ingest_segments(config, store)
    logged = store.query("SELECT * FROM predictions")
    assert logged.height == 9 and '"brightness"' in logged["features"][0]
    # each logged image row is the answer returned for it, hashed from the bytes sent
    by_id = {row["prediction_id"]: row for row in logged.iter_rows(named=True)}
    for answer, file in zip(answered, files, strict=True):
        row = by_id[answer["id"]]
        assert (row["predicted"], row["confidence"]) == (answer["label"], answer["confidence"])
        assert row["input_hash"] == hashlib.sha256(file.read_bytes()).hexdigest()


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims a huge size: a decompression bomb's first bytes."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    out = io.BytesIO()
    out.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header))
    out.write(chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + chunk(b"IEND", b""))
    return out.getvalue()


def test_segments_of_the_earlier_per_input_layout_still_ingest(tmp_path):
    """A server upgraded with segments not yet ingested: the old layout (every column
    per input, features as JSON) is still read, and hashed as before."""
    from datetime import datetime

    from mllife.monitoring.log_format import PREDICTION_SCHEMA

    project = table_project(tmp_path / "p")
    config, store = project["config"], project["store"]
    features = ['{"a":1.0}', '{"a":2.0}']
    row = {
        "request_id": "0" * 32,
        "received_at": datetime(2026, 1, 1),
        "key_name": "alice",
        "model_hash": "h" * 64,
        "model_name": "logreg",
        "role": "champion",
        "answered": True,
        "input_hash": None,
        "predicted": "benign",
        "confidence": 0.9,
        "latency_ms": 1.5,
    }
    old = pl.DataFrame(
        [
            {**row, "prediction_id": f"{'0' * 32}-{i}", "position": i, "features": f}
            for i, f in enumerate(features)
        ],
        schema=PREDICTION_SCHEMA,
    )
    config.predictions_dir.mkdir(parents=True, exist_ok=True)
    old.write_parquet(config.predictions_dir / "pred-20260101T000000000000-00000000.parquet")
    assert ingest_segments(config, store).predictions == 2
    logged = store.query("SELECT * FROM predictions ORDER BY position")
    assert logged["prediction_id"].to_list() == [f"{'0' * 32}-0", f"{'0' * 32}-1"]
    assert logged["input_hash"].to_list() == [
        hashlib.sha256(f.encode()).hexdigest() for f in features
    ]


def test_a_segment_whose_inputs_name_a_missing_request_is_refused_whole(tmp_path):
    """Ingestion joins input rows to their request rows; an input naming no request is
    not dropped quietly: the segment is refused and nothing of it is stored."""
    from datetime import datetime

    project = table_project(tmp_path / "p")
    config, store = project["config"], project["store"]
    segment = pl.DataFrame(
        {
            "request_id": ["0" * 32, None],
            "received_at": [datetime(2026, 1, 1), None],
            "key_name": ["alice", None],
            "model_hash": ["h" * 64, None],
            "model_name": ["logreg", None],
            "role": ["champion", None],
            "answered": [True, None],
            "latency_ms": [1.0, None],
            "request_index": pl.Series([0, 5], dtype=pl.Int32),  # request 5 does not exist
            "position": pl.Series([0, 1], dtype=pl.Int32),
            "predicted": ["benign", "benign"],
            "confidence": [0.9, 0.8],
            "features": [{"a": 1.0}, {"a": 2.0}],
        }
    )
    config.predictions_dir.mkdir(parents=True, exist_ok=True)
    path = config.predictions_dir / "pred-20260101T000000000000-00000000.parquet"
    segment.write_parquet(path)
    with pytest.raises(DataError, match="2 rows in the file but 1 readable"):
        ingest_segments(config, store)
    assert store.query("SELECT count(*) AS n FROM predictions")["n"][0] == 0
    assert path.exists()


def test_the_log_writer_counts_its_rows_segments_and_cpu(tmp_path):
    from datetime import datetime

    from mllife.serve._log import FEEDBACK_SCHEMA, SegmentLog

    log = SegmentLog(
        tmp_path, prefix="feedback", schema=FEEDBACK_SCHEMA, flush_rows=1000, flush_seconds=600
    ).start()
    rows = [(f"{i:032x}-0", "benign", "alice", datetime(2026, 1, 1)) for i in range(20_000)]
    log.extend(rows)  # past flush_rows: the writer thread is woken and writes
    deadline = time.monotonic() + 30
    while log.rows_written < len(rows) and time.monotonic() < deadline:
        time.sleep(0.05)
    log.close()
    written = pl.concat([pl.read_parquet(p) for p in tmp_path.glob("feedback-*.parquet")])
    assert log.rows_written == written.height == len(rows)
    assert log.segments_written == len(list(tmp_path.glob("feedback-*.parquet"))) >= 1
    assert 0 < log.cpu_seconds < 30  # the writer's own thread time, measured per flush


def test_request_ids_keep_their_hmac_and_the_newest_answers_are_remembered(tmp_path):
    import hmac

    from mllife.serve._ids import AnsweredRequests, RequestIds
    from mllife.storage.signing import project_key

    ids = RequestIds(tmp_path / "serving.key")
    request_id = ids.new("alice", 3)
    # the tag is HMAC-SHA256 as before: ids answered by an older server still verify
    nonce, counted = request_id[:13], request_id[13:18]
    secret = project_key(tmp_path / "serving.key")
    expected = hmac.new(secret, f"{nonce}\0{counted}\0alice".encode(), hashlib.sha256)
    assert request_id[18:] == expected.hexdigest()[:14]
    assert ids.issued_to(request_id + "-2", "alice")
    assert not ids.issued_to(request_id + "-3", "alice")  # past its count
    assert not ids.issued_to(request_id + "-0", "bob")

    answered = AnsweredRequests(limit=4)
    for number in range(7):
        answered.add(f"r{number}", "logreg", 1)
    store = SimpleNamespace(query=lambda *a: pl.DataFrame({"model_name": []}))
    assert [answered.model_of(f"r{n}-0", store) for n in range(7)] == [None] * 4 + ["logreg"] * 3


def test_a_model_answering_not_finite_probabilities_is_a_model_failure():
    import numpy as np

    from mllife.serve._inference import predict_rows

    model = SimpleNamespace(predict_proba=lambda rows: np.array([[np.nan, 1.0]]))
    served = SimpleNamespace(model=model, ref=SimpleNamespace(name="broken"))
    with pytest.raises(ValueError, match="model 'broken' returned probabilities that are not"):
        predict_rows(served, [{"x": 1.0}])
