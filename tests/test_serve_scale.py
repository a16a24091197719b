"""The server past one request at a time: concurrent image requests share forward passes
(each still gets exactly its own answer, and a broken image fails only its own request),
inference threads share one network safely, and `mllife serve --workers N` answers from
N processes on one port, logging every prediction."""

from __future__ import annotations

import base64
import re
import threading
import time

import numpy as np
import torch

from mllife.config.project import CandidateConfig, load_config
from mllife.models import build_model
from mllife.monitoring.traffic import ingest_segments
from mllife.preprocess.images import ImagePreprocessor
from mllife.promotion.deploy import promote_model
from mllife.serve.keys import create_key
from mllife.storage.store import Store
from tests.conftest import RecordedModels, make_project
from tests.serving import ServerProcess, table_project

BATCHING = "\n[serving.batching]\nwindow_ms = 100.0\nmax_images = 8\n"


def _counter(text: str, name: str) -> int:
    return int(re.search(rf"^{name} (\d+)$", text, re.MULTILINE)[1])


def _metrics(server) -> str:
    status, body = server.request("GET", "/metrics")
    assert status == 200
    return body.decode() if isinstance(body, bytes) else str(body)


def test_concurrent_images_share_forward_passes_and_each_gets_its_own_answer(
    tmp_path, digits_folder
):
    config = load_config(make_project(tmp_path / "img", digits_folder, extra=""))
    config.path.write_text(config.path.read_text() + BATCHING)
    config = load_config(config.path)
    store = Store(config.store_path)
    ref = RecordedModels(config, store, digits_folder).new(1.0)
    promote_model(ref.model_hash, config=config, store=store, reason="test")
    key = create_key(store, "alice")
    files = sorted(digits_folder.rglob("*.png"))[::61][:16]
    broken = files[0].read_bytes()[:60]  # a valid header, then the pixels cut off
    payloads = [f.read_bytes() for f in files] + [broken]
    with ServerProcess(config.path) as server:
        start = threading.Barrier(len(payloads))
        answers: dict[int, tuple] = {}

        def send(i: int) -> None:
            body = {"image": base64.b64encode(payloads[i]).decode()}
            start.wait()
            answers[i] = server.request("POST", "/predict", body, key=key)

        threads = [threading.Thread(target=send, args=(i,)) for i in range(len(payloads))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        together = _metrics(server)
        # the same images one at a time: each concurrent answer must be the image's own
        alone = {
            i: server.request("POST", "/predict", {"image": base64.b64encode(p).decode()},
                              key=key)
            for i, p in enumerate(payloads[:-1])
        }  # fmt: skip
    batches = _counter(together, "mllife_microbatches_total")
    batched = _counter(together, "mllife_microbatched_requests_total")
    assert batched >= len(payloads) and batches < batched  # passes were shared
    status, body = answers[len(payloads) - 1]
    assert status == 422 and "image" in body["error"]  # only the broken one fails
    for i in range(len(files)):
        status, body = answers[i]
        assert status == 200, body
        ours, reference = body["predictions"][0], alone[i][1]["predictions"][0]
        assert ours["label"] == reference["label"]
        assert abs(ours["confidence"] - reference["confidence"]) < 1e-5


def test_inference_threads_share_a_network_converted_once():
    # The server runs a model's forward in several threads at once. Converting the
    # network (device, eval, channels_last) at every call reassigned the parameters
    # while other threads ran the forward: a ResNet-18 server crashed with a
    # segmentation fault on its first concurrent requests.
    spec = CandidateConfig(name="resnet", kind="torch", architecture="resnet18")
    model = build_model(spec, classes=["a", "b", "c"],
                        preprocessor=ImagePreprocessor(size=32, channels=3))  # fmt: skip
    network, conversions = model.network, []
    convert = network.to
    network.to = lambda *args, **kwargs: conversions.append(kwargs) or convert(*args, **kwargs)
    images = torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    start, answers = threading.Barrier(8), {}

    def predict(i: int) -> None:
        start.wait()
        answers[i] = model.predict_proba_features(images[i : i + 1])

    threads = [threading.Thread(target=predict, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert conversions == [{"memory_format": torch.channels_last}]
    assert not network.training
    together = np.concatenate([answers[i] for i in range(8)])
    np.testing.assert_allclose(together, model.predict_proba_features(images), atol=1e-5)
    assert len(conversions) == 1  # the batched prediction found it prepared too
    network.train()  # trained again: the next prediction prepares it again
    model.predict_proba_features(images[:1])
    assert len(conversions) == 2 and not network.training


def test_workers_answer_from_several_processes_on_one_port_and_log_everything(tmp_path):
    project = table_project(tmp_path / "p")
    key = create_key(project["store"], "alice")
    rows = project["rows"]
    with ServerProcess(project["config"].path, workers=2) as server:
        # The server is up once one worker answers; the other may still be loading its
        # models: keep sending (fresh connections) until both answered, or 60 s.
        pids, sent, i = set(), 0, 0
        deadline = time.monotonic() + 60
        while (len(pids) < 2 or i < 20) and time.monotonic() < deadline:
            status, _ = server.request("POST", "/predict", {"rows": rows[i % 50 : i % 50 + 2]},
                                       key=key)  # fmt: skip
            assert status == 200
            sent, i = sent + 2, i + 1
            pids |= set(re.findall(r'mllife_process_info\{pid="(\d+)"\}', _metrics(server)))
        assert len(pids) == 2, pids  # both processes answered
        output = server.stop()
    assert "2 worker processes" in output
    store = Store(project["config"].store_path)
    ingest_segments(project["config"], store)
    assert store.query("SELECT count(*) AS n FROM predictions")["n"][0] == sent
