"""The review desk (#44): served predictions to labels and known problems, by a person
at /review (driven in headless Chromium) or `mllife review`; users' ratings; the queue's
order and filters; who may see what; served inputs kept within limits."""

from __future__ import annotations

import base64
import http.client
import json
import re
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from mllife._errors import ReviewError
from mllife.config.project import load_config
from mllife.monitoring.kept_inputs import InputKeeper, kept_input, prune_kept_inputs
from mllife.monitoring.traffic import (
    ingest_segments,
    refresh_review_inputs,
    served_quality,
    served_ratings,
)
from mllife.review.queue import QueueFilter, review_queue
from mllife.serve.keys import create_key
from mllife.storage.store import Store
from tests.browser import Browser
from tests.conftest import copy_project
from tests.serving import ServerProcess, table_project

FAST_LOG = "\n[serving.log]\nflush_seconds = 0.2\n"


def _form_post(server, path: str, fields: dict, cookies: str = "") -> tuple[int, str]:
    from urllib.parse import urlencode

    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if cookies:
        headers["Cookie"] = cookies
    connection.request("POST", path, body=urlencode(fields), headers=headers)
    response = connection.getresponse()
    return response.status, response.read().decode()


def _get(server, path: str, *, key: str | None = None) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    connection.request("GET", path, headers={"Authorization": f"Bearer {key}"} if key else {})
    response = connection.getresponse()
    return response.status, response.read().decode(errors="replace")


def _wait_for(predicate, what: str, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.1)
    raise AssertionError(f"never happened: {what}")


def _sign_in(browser: Browser, url: str, key: str) -> None:
    browser.goto(url)
    assert browser.evaluate("document.title").endswith("sign in")
    browser.evaluate(f"document.getElementById('key').value = {json.dumps(key)}")
    browser.evaluate("document.getElementById('sign-in').click()")
    browser.wait_for("document.title.includes('waiting')")


def _click(browser: Browser, selector: str) -> None:
    """Press a button and wait for the page the redirect leads to."""
    browser.evaluate("window.__left = true")
    browser.evaluate(f"document.querySelector({json.dumps(selector)}).click()")

    def arrived() -> bool:
        try:
            return browser.evaluate("!window.__left && document.readyState === 'complete'")
        except RuntimeError:  # the old page went away while asked
            return False

    _wait_for(arrived, f"the page after clicking {selector}")


def _add_first_two_to_a_new_problem(browser, name: str, description: str, *, kind: str):
    """Check the queue's first two items, name a new problem, press "Add checked items"."""
    for pid in browser.evaluate(
        "[...document.querySelectorAll('article.item')].slice(0, 2).map(a => a.id.slice(5))"
    ):
        browser.evaluate(f"document.querySelector('#item-{pid} input[name=pid]').checked = true")
    for field, value in (("new_problem", name), ("description", description)):
        browser.evaluate(f"document.getElementById('{field}').value = {json.dumps(value)}")
    browser.evaluate(f"document.querySelector('input[name=kind][value={kind}]').checked = true")
    _click(browser, "#add-checked")


def _table_setup(tmp_path: Path):
    setup = table_project(tmp_path / "p", serving=FAST_LOG)
    store = setup["store"]
    user = create_key(store, "app", routes=("predict", "feedback"))
    other = create_key(store, "other", routes=("predict",))
    reviewer = create_key(store, "desk", routes=("review",))
    return setup, user, other, reviewer


# -- the page, in a browser ----------------------------------------------------------


def test_review_desk_on_images_then_a_run_scores_the_new_problem(tmp_path, deployed_digits):
    """Signs in with a review key, corrects a label, adds two served images to a new
    problem, rates; then `mllife run` scores that problem for every model version and the
    report says the patterns came from production."""
    from assets.runtime.run import run_lifecycle
    from mllife.problems.registry import ProblemRegistry

    # mllife.toml unchanged: the run after the desk has only the new problem to score
    config_path = copy_project(deployed_digits[0], tmp_path / "p")
    config = load_config(config_path)
    store = Store(config.store_path)
    user = create_key(store, "app", routes=("predict", "feedback"))
    reviewer = create_key(store, "desk", routes=("review",))
    files = (
        sorted((config.data_path / "3").glob("*.png"))[:3]
        + sorted((config.data_path / "8").glob("*.png"))[:3]
    )
    images = [base64.b64encode(f.read_bytes()).decode() for f in files]
    with ServerProcess(config_path) as server:
        status, body = server.request("POST", "/predict", {"images": images}, key=user)
        assert status == 200, body
        ids = [p["id"] for p in body["predictions"]]
        comment = "<script>window.pwned = 1</script> wrong!"
        rated = {"prediction_id": ids[5], "rating": "down", "comment": comment}
        assert server.request("POST", "/rating", rated, key=user)[0] == 202
        status, page = _get(server, "/review/", key=user)
        assert status == 403  # a predict key never sees the desk or its inputs
        _wait_for(lambda: len(list(config.served_inputs_dir.glob("??/*"))) == 6, "inputs kept")
        _wait_for(lambda: list(config.predictions_dir.glob("pred-*")), "the log flushed")
        with Browser() as browser:
            _sign_in(browser, f"http://127.0.0.1:{server.port}/review/", reviewer)
            assert browser.evaluate("document.querySelectorAll('article.item').length") == 6
            # the images are shown at a readable size, loaded through the review session
            browser.wait_for("[...document.images].every(i => i.complete && i.naturalWidth > 0)")
            assert browser.evaluate("document.images[0].getBoundingClientRect().width") >= 200
            # the comment is text: shown as written, never run
            assert comment in browser.evaluate("document.body.innerText")
            assert browser.evaluate("window.pwned") is None
            first = browser.evaluate("document.querySelector('article.item').id")[5:]
            wrong = browser.evaluate(
                f"document.querySelector('#item-{first} .predicted').textContent"
            )
            right = "0" if wrong != "0" else "1"
            browser.evaluate(
                f"document.querySelector('select[name=\"label:{first}\"]').value = '{right}'"
            )
            _click(browser, f"#item-{first} button.label")
            assert "Labelled" in browser.evaluate("document.getElementById('flash').textContent")
            assert browser.evaluate(f"document.getElementById('item-{first}')") is None
            # two served images into a new known problem, in one click
            _add_first_two_to_a_new_problem(
                browser, "thin_strokes", "digits written <b>thin</b>", kind="positive"
            )
            flash = browser.evaluate("document.getElementById('flash').textContent")
            assert "Added 2 pattern(s) to 'thin_strokes'" in flash, flash
            assert browser.evaluate("document.querySelectorAll('article.item').length") == 3
            assert browser.console_errors == []
            cookies = browser.call("Network.getAllCookies")["cookies"]
            # an action on a prediction that does not exist: 404, nothing stored
            browser.evaluate(f"document.querySelector('button.skip').value = 'skip:{'f' * 32}-0'")
            _click(browser, "button.skip")
            assert browser.evaluate(
                "performance.getEntriesByType('navigation')[0].responseStatus"
            ) == 404  # fmt: skip
            assert "no served prediction" in browser.evaluate("document.body.innerText")
            session = next(c["value"] for c in cookies if c["name"] == "mllife_review")
        # a POST without the CSRF token is refused, even with a valid session cookie
        fields = {"do": f"skip:{ids[4]}"}
        status, _ = _form_post(server, "/review/act", fields, f"mllife_review={session}")
        assert status == 403
    problem_file = config.problems_dir / "thin_strokes" / "problem.toml"
    assert 'source = "production"' in problem_file.read_text()
    assert len(list(problem_file.parent.glob("*.png"))) == 2  # content-addressed copies

    outcome = run_lifecycle(config_path, log_level="WARNING")
    assert outcome.success, "\n".join(outcome.lines)
    assert "trial" not in "\n".join(outcome.lines)  # nothing retrained: only the scoring
    history = ProblemRegistry(config, store).history("thin_strokes")
    assert set(history["model_hash"]) == set(store.models()["model_hash"])  # every version
    assert history["patterns"].to_list() == [2] * history.height
    quality = served_quality(store)
    assert quality["labelled"].sum() == 1  # the corrected label counts as feedback, once
    assert served_ratings(store)["ratings"].sum() == 1
    report = (config.reports_dir / f"status-{outcome.run_id}.html").read_text()
    assert "thin_strokes" in report and "2 of 2" in report
    assert "came from production" in report and "ratings of served predictions" in report


def test_review_desk_on_a_table_project_shows_rows_as_fields(tmp_path):
    """The same desk for a table project: a row shown as labelled fields, rows added to a
    new problem as row patterns that every stored model version is then scored on."""
    from mllife.problems.registry import ProblemRegistry
    from mllife.problems.scoring import score_all

    setup, user, _, reviewer = _table_setup(tmp_path)
    config, store = setup["config"], setup["store"]
    with ServerProcess(config.path) as server:
        status, body = server.request("POST", "/predict", {"rows": setup["rows"][:8]}, key=user)
        assert status == 200, body
        _wait_for(lambda: list(config.predictions_dir.glob("pred-*")), "the log flushed")
        with Browser() as browser:
            _sign_in(browser, f"http://127.0.0.1:{server.port}/review/", reviewer)
            fields = browser.evaluate(
                "[...document.querySelectorAll('article.item')[0].querySelectorAll('.features th')]"
                ".map(th => th.textContent)"
            )
            assert "mean_radius" in fields and len(fields) == 30
            _add_first_two_to_a_new_problem(browser, "odd_rows", "rows we doubt", kind="negative")
            flash = browser.evaluate("document.getElementById('flash').textContent")
            assert "Added 2 pattern(s) to 'odd_rows'" in flash, flash
    classes = sorted({str(v) for v in setup["labels"]})
    result = score_all(config, store, new_models=[], classes=classes)
    assert result.patterns_added == 2
    history = ProblemRegistry(config, store).history("odd_rows")
    assert set(history["model_hash"]) == set(setup["hashes"].values())
    kinds = store.query("SELECT kind, source FROM patterns WHERE problem = 'odd_rows'")
    assert kinds.rows() == [("negative", "production")] * 2


# -- ratings -------------------------------------------------------------------------


def test_ratings_are_bound_to_the_key_that_got_the_prediction(tmp_path):
    setup, user, other, _ = _table_setup(tmp_path)
    config, store = setup["config"], setup["store"]
    with ServerProcess(config.path) as server:
        _, body = server.request("POST", "/predict", {"rows": setup["rows"][:2]}, key=user)
        mine = body["predictions"][0]["id"]
        _, body = server.request("POST", "/predict", {"rows": setup["rows"][:1]}, key=other)
        theirs = body["predictions"][0]["id"]
        absent = mine[:32] + "-7"  # past the request's count: never answered
        cases = [
            ({"prediction_id": theirs, "rating": 5}, 403),
            ({"prediction_id": absent, "rating": 5}, 404),
            ({"prediction_id": "nope", "rating": 5}, 404),
            ({"prediction_id": mine, "rating": 0}, 422),
            ({"prediction_id": mine, "rating": True}, 422),
            ({"prediction_id": mine, "rating": 3, "comment": "x" * 1001}, 422),
            ({"ratings": [{"prediction_id": mine, "rating": 4}, {"prediction_id": theirs,
                                                                 "rating": 1}]}, 403),
        ]  # fmt: skip
        for payload, expected in cases:
            status, answer = server.request("POST", "/rating", payload, key=user)
            assert status == expected, (payload, answer)
        rating = {"prediction_id": mine, "rating": "up", "comment": "مرحبا 👍"}
        assert server.request("POST", "/rating", rating, key=user) == (202, {"accepted": 1})
        assert server.request("POST", "/rating", rating, key=None)[0] == 401
    ingest_segments(config, store)
    stored = store.query("SELECT prediction_id, rating, comment, key_name FROM ratings")
    assert stored.rows() == [(mine, 5, "مرحبا 👍", "app")]  # the refused stored nothing


# -- the queue -----------------------------------------------------------------------


def _logged(store, rows, ratings=()) -> None:
    """Served predictions and ratings written straight into the store, as ingestion
    leaves them (the desk's per-input state rebuilt with them)."""
    with store.writing() as conn:
        for pid, received in ratings:
            conn.execute(
                "INSERT INTO ratings VALUES (?, 1, 'no', 'app', ?, 'test')", [pid, received]
            )
        for pid, input_hash, model, predicted, confidence, role, received in rows:
            conn.execute(
                "INSERT INTO predictions VALUES (?, ?, 0, ?, 'app', ?, ?, ?, ?, ?, '{}', ?, ?,"
                " 1.0, 'test')",
                [pid, pid[:32], received, model * 8, model, role, role != "shadow", input_hash,
                 predicted, confidence],
            )  # fmt: skip
        refresh_review_inputs(conn)


def test_queue_order_filters_and_one_item_per_input(tmp_path):
    setup = table_project(tmp_path / "p")
    config, store = setup["config"], setup["store"]
    now = datetime.now(UTC).replace(tzinfo=None)
    old = now - timedelta(days=3)
    rid = "0" * 31
    _logged(store, [
        (f"{rid}a-0", "h_sure", "m1", "benign", 0.99, "champion", now),
        (f"{rid}b-0", "h_unsure", "m1", "benign", 0.55, "champion", now),
        (f"{rid}c-0", "h_split", "m1", "benign", 0.80, "champion", now),
        (f"{rid}c-0-shadow", "h_split", "m2", "malignant", 0.70, "shadow", now),
        (f"{rid}d-0", "h_rated", "m1", "malignant", 0.95, "champion", old),
        (f"{rid}e-0", "h_twice", "m1", "benign", 0.90, "champion", now),
        (f"{rid}f-0", "h_twice", "m2", "benign", 0.85, "canary", now),
    ], ratings=[(f"{rid}d-0", now)])  # fmt: skip
    page = review_queue(config, store)
    order = [i.input_hash for i in page.items]
    # disagreement (0.2 + 0.5) > low confidence (0.45) > a 1-star rating (0.05 + 0.25)
    assert order == ["h_split", "h_unsure", "h_rated", "h_twice", "h_sure"]
    assert page.total == 5
    twice = next(i for i in page.items if i.input_hash == "h_twice")
    assert twice.served == 2 and twice.prediction_id == f"{rid}f-0"  # the least confident
    assert [o["model_name"] for o in twice.others] == ["m1"]
    assert page.items[0].disagreement and "models disagree" in page.items[0].reasons[1]
    assert page.items[2].rating == 1
    assert [i.input_hash for i in review_queue(
        config, store, filters=QueueFilter(label="malignant")).items] == ["h_rated"]  # fmt: skip
    assert {i.input_hash for i in review_queue(
        config, store, filters=QueueFilter(model="m2")).items} == {"h_twice"}  # fmt: skip
    recent = review_queue(config, store, filters=QueueFilter(since=date.today()))
    assert "h_rated" not in {i.input_hash for i in recent.items} and recent.total == 4
    hidden = review_queue(config, store, filters=QueueFilter(allowed_models=frozenset({"m2"})))
    assert {i.input_hash for i in hidden.items} == {"h_twice"}
    assert review_queue(config, store, page=2, page_size=2).items[0].input_hash == "h_rated"


def test_cli_review_and_concurrent_reviewers_count_once(tmp_path, capsys):
    """`mllife review` lists, labels and adds rows as the page does; two reviewers
    labelling one prediction at once leave one label in served quality."""
    from mllife.cli import main
    from mllife.cli._review import _desk

    setup, user, _, _ = _table_setup(tmp_path)
    config, store = setup["config"], setup["store"]
    with ServerProcess(config.path) as server:
        _, body = server.request("POST", "/predict", {"rows": setup["rows"][:4]}, key=user)
    ids = [p["id"] for p in body["predictions"]]
    argv = ["--config", str(config.path), "review"]
    assert main([*argv, "list"]) == 0
    assert "4 waiting" in capsys.readouterr().out
    desks = [_desk(config), _desk(config)]
    item = desks[0].items([ids[0]])[0]
    threads = [
        threading.Thread(target=d.label, args=(item, "benign"), kwargs={"reviewer": f"r{i}"})
        for i, d in enumerate(desks)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert main([*argv, "add", ids[1], ids[2], "--problem", "cli_rows", "--description",
                 "from a terminal", "--expected", "malignant"]) == 0  # fmt: skip
    assert "added 2 pattern(s)" in capsys.readouterr().out
    assert main([*argv, "add", ids[1], "--problem", "cli_rows"]) == 0
    assert "1 already in it" in capsys.readouterr().out
    assert main([*argv, "label", ids[3], "sideways"]) == 2
    assert "is not one of" in capsys.readouterr().err
    assert main([*argv, "add", ids[3], "--problem", "brand_new"]) == 2
    assert "give it a description" in capsys.readouterr().err
    assert main([*argv, "list"]) == 0
    assert "1 waiting" in capsys.readouterr().out
    _same_as_a_full_scan(config, store)  # the state merged with segments not yet ingested
    ingest_segments(config, store)
    _same_as_a_full_scan(config, store)
    assert served_quality(store)["labelled"].sum() == 1  # two reviewers, one label counted
    assert store.query("SELECT count(*) AS n FROM reviews")["n"][0] == 5


def _same_as_a_full_scan(config, store) -> None:
    """The unfiltered queue (the store's per-input state plus pending segments) is what
    aggregating every served prediction gives (a filter that keeps everything)."""
    everything = QueueFilter(since=date(2000, 1, 1))
    fast, scanned = review_queue(config, store), review_queue(config, store, filters=everything)
    assert fast == scanned and fast.total == scanned.total


# -- served inputs kept for review ----------------------------------------------------


def test_kept_inputs_obey_size_and_age_limits(tmp_path):
    config = load_config(
        _write(tmp_path, "[review]\nmax_input_kb = 1\nmax_total_mb = 0.002\nkeep_days = 1\n")
    )
    folder = config.served_inputs_dir
    keeper = InputKeeper(folder, config.review).start()
    small, large = b"a" * 900, b"b" * 2000
    import hashlib

    digests = [hashlib.sha256(p).hexdigest() for p in (small, large, small + b"c", b"d" * 900)]
    keeper.keep([small, large, small + b"c", b"d" * 900], digests)
    keeper.close()
    assert kept_input(folder, digests[0]) == small
    assert kept_input(folder, digests[1]) is None  # over max_input_kb
    assert kept_input(folder, digests[3]) is None  # past max_total_mb (2 KB)
    assert keeper.kept == 2 and keeper.not_kept == 2
    assert all(p.resolve().is_relative_to(config.state_dir) for p in folder.rglob("*"))
    with pytest.raises(ValueError, match="not a SHA-256"):
        kept_input(folder, "../../mllife.toml")
    stale = folder / digests[0][:2] / digests[0]
    two_days_ago = time.time() - 2 * 86400
    import os

    os.utime(stale, (two_days_ago, two_days_ago))
    assert prune_kept_inputs(folder, keep_days=1)[0] == 1
    assert kept_input(folder, digests[0]) is None


def test_bad_review_actions_store_nothing(tmp_path):
    from mllife.cli._review import _desk

    setup, user, _, _ = _table_setup(tmp_path)
    config = setup["config"]
    with ServerProcess(config.path) as server:
        _, body = server.request("POST", "/predict", {"rows": setup["rows"][:1]}, key=user)
    desk = _desk(config)
    (item,) = desk.items([body["predictions"][0]["id"]])
    with pytest.raises(ReviewError, match="no served prediction") as missing:
        desk.items(["f" * 32 + "-0"])
    assert missing.value.status == 404
    with pytest.raises(ReviewError, match="may not use") as hidden:
        desk.items([item.prediction_id], allowed_models=frozenset({"other"}))
    assert hidden.value.status == 403
    for bad in ("bad name!", "x" * 65):
        with pytest.raises(ReviewError, match="problem name"):
            desk.add_to_problem([item], problem=bad, labels={}, kind="positive",
                                reviewer="r", description="d")  # fmt: skip
    with pytest.raises(ReviewError, match="kind must be"):
        desk.add_to_problem([item], problem="p", labels={}, kind="sideways", reviewer="r",
                            description="d")  # fmt: skip
    assert not (config.problems_dir / "p").exists()
    assert not list(config.predictions_dir.glob("review-*"))


def _write(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "mllife.toml"
    path.write_text(
        '[data]\npath = "data"\n[[candidates]]\nname = "m"\nkind = "sklearn"\n'
        'estimator = "sklearn.linear_model.LogisticRegression"\n' + extra
    )
    return path


def test_review_pages_refuse_without_a_review_key(tmp_path):
    setup, user, _, reviewer = _table_setup(tmp_path)
    with ServerProcess(setup["config"].path) as server:
        status, page = _get(server, "/review/")
        assert status == 200 and "Sign in" in page
        assert _get(server, "/review/", key=user)[0] == 403
        assert _get(server, "/review/input/" + "0" * 32 + "-0", key=user)[0] == 403
        status, page = _get(server, "/review/", key=reviewer)
        assert status == 200 and "Nothing waits for review" in page
        status, page = _get(server, "/review/?since=yesterday", key=reviewer)
        assert status == 422 and "is not a date" in page
        # signing in is a POST: without the CSRF cookie and token it is refused
        assert _form_post(server, "/review/login", {"key": reviewer})[0] == 403
        assert re.search(r"csrftoken", _get(server, "/review/")[1])
