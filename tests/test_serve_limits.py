"""The server under load: inference runs in bounded worker threads, a full queue
answers 503 with Retry-After, a request past its time limit answers 504 while others
(and /health) are answered, /metrics exposes it all, access logs are JSON lines."""

from __future__ import annotations

import json
import threading
import time

from mllife.serve.keys import create_key
from tests.serving import ServerProcess, table_project

LIMITS = "max_queue = 2\nrequest_timeout_seconds = 1.0\ninline_rows = 0\naccess_log = true"


def test_slow_inference_times_out_and_a_full_queue_pushes_back(tmp_path):
    project = table_project(tmp_path / "p", serving=LIMITS)
    key = create_key(project["store"], "alice")
    row = {"rows": project["rows"][:3]}
    env = {"MLLIFE_SLOW_AT": "serve:inference:2.5"}  # every inference takes 2.5 s
    with ServerProcess(project["config"].path, env=env) as server:
        results: list = []

        def call() -> None:
            results.append(server.request("POST", "/predict", row, key=key))

        slow = [threading.Thread(target=call) for _ in range(2)]
        for thread in slow:
            thread.start()
        time.sleep(0.3)
        # the queue holds 2: a third request is refused at once, with Retry-After
        connection_status, body = server.request("POST", "/predict", row, key=key)
        assert connection_status == 503 and "serving.max_queue" in body["error"]
        # /health is answered while both inferences still run (their clients wait)
        assert server.request("GET", "/health")[0] == 200
        assert any(thread.is_alive() for thread in slow)
        for thread in slow:
            thread.join()
        # each inference takes 2.5 s: a 504 can only come from the 1 s limit
        assert [status for status, _ in results] == [504, 504]
        assert "time limit of 1 s" in results[0][1]["error"]
        time.sleep(2.0)  # the abandoned threads finish: the queue is free again
        status, metrics = server.request("GET", "/metrics")
        assert status == 200
        text = metrics.decode() if isinstance(metrics, bytes) else str(metrics)
        assert "mllife_inference_timeouts_total 2" in text
        assert "mllife_inference_rejected_total 1" in text
        assert "mllife_inference_queue 0" in text
        assert 'mllife_requests_total{route="/predict",status="504"} 2' in text
        assert 'mllife_request_seconds_bucket{route="/health",le="+Inf"}' in text
        output = server.stop()
    access = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert {(a["path"], a["status"]) for a in access} >= {("/predict", 504), ("/predict", 503)}
    assert all({"time", "method", "ms", "client"} <= set(a) for a in access)


def test_retry_after_is_sent_with_a_503(tmp_path):
    import http.client

    project = table_project(
        tmp_path / "p", serving=LIMITS.replace("max_queue = 2", "max_queue = 1")
    )
    key = create_key(project["store"], "alice")
    body = json.dumps({"rows": project["rows"][:2]}).encode()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    env = {"MLLIFE_SLOW_AT": "serve:inference:1.5"}
    with ServerProcess(project["config"].path, env=env) as server:
        first = threading.Thread(
            target=server.request, args=("POST", "/predict", json.loads(body)), kwargs={"key": key}
        )
        first.start()
        time.sleep(0.3)
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        connection.request("POST", "/predict", body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        connection.close()
        first.join()
    assert response.status == 503 and int(response.getheader("Retry-After")) >= 1
