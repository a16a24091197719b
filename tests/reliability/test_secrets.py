"""Secrets never land on disk or in logs: API keys (valid, wrong or revoked) sent to a real
server appear nowhere in its output, the prediction log, the store, or any other file of
the project afterwards."""

from pathlib import Path

from mllife.monitoring.traffic import ingest_segments
from mllife.serve.keys import create_key, revoke_key
from tests.serving import ServerProcess, table_project


def files_containing(root: Path, secrets: list[str]) -> dict[str, list[str]]:
    found = {}
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            hits = [s for s in secrets if s.encode() in data]
            if hits:
                found[str(path)] = hits
    return found


def test_api_keys_never_reach_logs_store_or_files(tmp_path):
    project = table_project(tmp_path / "project")
    store, config, row = project["store"], project["config"], {"row": project["rows"][0]}
    good = create_key(store, "alice")
    revoked = create_key(store, "bob")
    revoke_key(store, "bob")
    wrong = "mll_" + "x" * 43  # shaped like a key, known to nobody
    with ServerProcess(config.path) as server:
        status, body = server.request("POST", "/predict", row, key=good)
        assert status == 200
        prediction = body["predictions"][0]["id"]
        assert server.request("POST", "/predict", row, key=wrong)[0] == 401
        assert server.request("POST", "/predict", row, key=revoked)[0] == 401
        headers = {"X-API-Key": wrong}
        assert server.request("POST", "/predict", row, headers=headers)[0] == 401
        feedback = {"prediction_id": prediction, "label": "benign"}
        assert server.request("POST", "/feedback", feedback, key=good)[0] == 202
        output = server.stop()
    assert ingest_segments(config, store).predictions == 1
    secrets = [good, revoked, wrong]
    assert not [s for s in secrets if s in output], output[-2000:]
    assert files_containing(config.root, secrets) == {}
    # ...while the key's name is what the log and the store do record
    assert store.query("SELECT key_name FROM predictions")["key_name"].to_list() == ["alice"]
