"""Text projects (issue 48): `mllife init --text`, cleaning with reasons, TF-IDF and the
pretrained sentence encoder, behaviour tests as known problems, the report, serving and
text drift, on real movie reviews and real all-MiniLM-L6-v2 weights.

One text project is built and run once per session (``text_project``): a first run of a
text project is the behaviour under test. Every test that changes it works on a copy.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from mllife import ConfigError
from mllife.config.project import load_config
from mllife.data.stage import clean, read_raw
from mllife.models.sentence_encoder import SentenceEncoder, read_encoder_folder
from mllife.storage.store import Store
from tests.conftest import built_once, copy_project
from tests.test_init import _mllife
from tests.text_data import encoder_folder, reviews, write_reviews_csv

REPO = Path(__file__).resolve().parents[1]
PER_CLASS = 240
RTL = "فيلم رائع حقا ، أحببته كثيرا"
EMOJI = "loved it 😍🎬 such great fun , bring the kids"


def _sample() -> pl.DataFrame:
    rt = reviews().sample(fraction=1.0, shuffle=True, seed=0)
    return pl.concat(
        [rt.filter(pl.col("sentiment") == s).head(PER_CLASS) for s in ("positive", "negative")]
    )


def _build(folder: Path) -> None:
    sample = _sample()
    rows = list(sample.iter_rows())
    special = [
        ("a <b>great</b> film &amp; a fine cast<br /><br />the best of the year", "positive"),
        rows[0],  # an exact duplicate
        (rows[1][0].upper() + " !!", rows[1][1]),  # the same once case and punctuation go
        ("a film i will never forget", "positive"),
        ("A film I will never forget!", "negative"),  # the same text, another label
        ("   ", "negative"),
        ("<br /><br />", "positive"),
        ("word " * 5000, "negative"),  # 25,000 characters, over max_text_chars
        (RTL, "positive"),
        (EMOJI, "positive"),
    ]
    raw = [b'"bad bytes \xff\xfe in a latin-1 paste",negative\n', b'"a NUL \x00 byte",positive\n']
    csv = write_reviews_csv(folder / "reviews.csv", rows + special, raw)
    init = _mllife("init", "proj", "--text", str(csv), "--target", "sentiment", cwd=folder)
    assert init.returncode == 0, init.stdout + init.stderr
    shutil.copytree(REPO / "examples" / "reviews" / "problems", folder / "proj" / "problems",
                    dirs_exist_ok=True)  # fmt: skip
    run = _mllife("run", cwd=folder / "proj")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    (folder / "init.out").write_text(init.stdout)
    (folder / "run.out").write_text(run.stdout + run.stderr)


@pytest.fixture(scope="session")
def text_project(tmp_path_factory, worker_id) -> Path:
    """The folder holding ``proj`` (a text project after one run), ``init.out``, ``run.out``."""
    return built_once(tmp_path_factory, worker_id, "text_project", _build)


def test_a_text_project_from_a_csv_deploys_and_says_why_rows_were_dropped(text_project):
    said = (text_project / "init.out").read_text()
    assert re.search(r"4\d\d texts in column 'review' \(median \d+ characters, 2 with HTML", said)
    assert "unpacked the sentence encoder all-MiniLM-L6-v2 into encoders/" in said
    run = (text_project / "run.out").read_text()
    for reason in ("invalid UTF-8 in column 'review'", "NUL byte in column 'review'",
                   "text over 20,000 characters", "empty text in column 'review'",
                   "normalised duplicate", "conflicting labels", "exact duplicate"):  # fmt: skip
        assert reason in run, reason
    assert "cleaning: HTML tags and entities in 1 texts of 'review': removed by the text" in run
    config = load_config(text_project / "proj" / "mllife.toml")
    champion = Store(config.store_path).champion()
    assert champion is not None and champion.name in ("tfidf", "sentence", "sentence_ngrams")
    log = Path(re.search(r"^log: (.+)$", run, re.MULTILINE)[1]).read_text()
    assert (
        "backbone: 103 of 103 tensors from encoders/all-MiniLM-L6-v2 (sha256 53aa51172d14)" in log
    )
    # right-to-left and emoji texts are kept; markup is normalised away, not a reason
    data = clean(config, read_raw(config))
    kept = data.rows["review"].to_list()
    assert RTL in kept and EMOJI in kept
    assert not data.dropped["reason"].str.contains("HTML").any()
    reasons = data.dropped["reason"].to_list()
    assert sum("conflicting labels" in r for r in reasons) == 2  # both copies: nobody knows


def test_behaviour_tests_are_expanded_and_scored_on_every_model(text_project):
    config = load_config(text_project / "proj" / "mllife.toml")
    store = Store(config.store_path)
    patterns = store.query("SELECT problem, count(*) AS n FROM patterns GROUP BY ALL")
    counts = dict(patterns.iter_rows())
    # 2 templates of 4 x 4 + 1 plain pattern; 2 invariance texts with 6 name, 6 place
    # and up to 3 typo copies each; 3 directional pairs
    assert counts["negation"] == 33 and counts["strong_negative_words"] == 6
    assert 20 <= counts["names_and_places"] <= 32
    directional = store.query(
        "SELECT r.model_hash, r.correct FROM patterns p JOIN pattern_results r USING"
        " (pattern_hash) WHERE p.expected LIKE '<= positive @ %'"
    )
    models = store.models().height
    assert directional.height == 3 * models  # every model version, each directional pair
    scores = store.query(
        "SELECT problem, avg(correct::INT) AS accuracy FROM pattern_results r JOIN patterns p"
        " USING (pattern_hash) WHERE r.model_hash = ? GROUP BY ALL",
        [store.champion().model_hash],
    )
    assert set(scores["problem"]) == {"negation", "names_and_places", "strong_negative_words"}


def test_the_report_shows_accuracy_by_length_and_the_words_behind_errors(text_project):
    run = (text_project / "run.out").read_text()
    report = Path(re.search(r"^report: (.+)$", run, re.MULTILINE)[1]).read_text()
    assert "Texts: accuracy by length, and the words behind the errors" in report
    assert re.search(r"<td>50-100 characters</td><td>\d+</td><td>0\.\d{3}</td>", report)
    assert re.search(r'<mark class="w[123]">[^<]+</mark>', report)
    assert "the words that raised" in report


def _logged(server) -> None:
    """Wait until the server has written every answered prediction to a segment."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        metrics = server.request("GET", "/metrics")[1]
        metrics = metrics.decode() if isinstance(metrics, bytes) else str(metrics)
        if re.search(r"^mllife_log_buffered_rows 0$", metrics, re.MULTILINE):
            return
        time.sleep(0.1)
    raise AssertionError("the server did not write its prediction log within 30 s")


def test_serving_texts_and_what_is_drift_for_them(tmp_path, text_project):
    """One server answers; its log is ingested while it runs (as a deployment's is), once
    after held-out sentences of the same site and once after reviews of another."""
    from concurrent.futures import ThreadPoolExecutor

    from mllife.data.stage import make_splits
    from mllife.monitoring.batch import served_drift
    from mllife.monitoring.traffic import ingest_segments
    from mllife.serve.keys import create_key
    from tests.serving import ServerProcess

    copy = copy_project(text_project / "proj" / "mllife.toml", tmp_path / "p")
    copy.write_text(copy.read_text() + "\n[serving.log]\nflush_seconds = 0.2\n")
    config = load_config(copy)
    store = Store(config.store_path)
    key = create_key(store, "alice")
    used = set(_sample()["review"])
    rest = reviews().filter(~pl.col("review").is_in(list(used)))
    held_out = pl.concat(
        [rest.filter(pl.col("sentiment") == s).sample(30, seed=2) for s in ("positive", "negative")]
    )["review"].to_list()
    long_review = "a slow film . " * 200  # 600 words: past the encoder's 256 tokens
    bodies = [
        {"review": "not bad at all , a charming film"},
        {"review": ["a dull , lifeless mess", "wonderful <br /> acting &amp; story", RTL, EMOJI]},
        {"review": "   "},
        {"review": 5},
        {"review": "x" * 20_001},
        {"review": long_review},
        {"review": held_out},
    ]
    together = [{"review": text} for text in held_out[:12]]
    with ServerProcess(copy) as server:
        answers = [server.request("POST", "/predict", body, key=key) for body in bodies]
        with ThreadPoolExecutor(len(together)) as pool:  # concurrent clients
            answers += pool.map(lambda b: server.request("POST", "/predict", b, key=key), together)
        metrics = server.request("GET", "/metrics")[1]
        metrics = metrics.decode() if isinstance(metrics, bytes) else str(metrics)
        statuses = [status for status, _ in answers]
        assert statuses == [200, 200, 422, 422, 413, 200, 200] + [200] * 12, answers
        assert len(answers[1][1]["predictions"]) == 4
        assert "is empty" in answers[2][1]["error"] and "must be text" in answers[3][1]["error"]
        assert "max_text_chars" in answers[4][1]["error"]
        # on this sample the sentence encoder wins; it counts what it cut, and batches
        assert answers[0][1]["model"] in ("sentence", "sentence_ngrams")
        assert re.search(r'mllife_text_truncated_total\{model="\w+"\} 1', metrics)
        batches = int(re.search(r"mllife_microbatches_total (\d+)", metrics)[1])
        batched = int(re.search(r"mllife_microbatched_requests_total (\d+)", metrics)[1])
        # 3 small requests one by one and 12 at once (the batch of 60 is a batch of its own)
        assert batched == 15 and batches < batched

        _logged(server)
        ingest_segments(config, store)
        splits, _ = make_splits(config, clean(config, read_raw(config)), store=store)
        calm = served_drift(config, store, splits)
        text_rows = [c for c in calm.report.columns if c.column.startswith("review:")]
        assert text_rows and not any(c.drifted for c in text_rows), calm.reason

        imdb = reviews("imdb").sample(80, seed=0)["review"].to_list()
        assert server.request("POST", "/predict", {"review": imdb}, key=key)[0] == 200
        _logged(server)
    ingest_segments(config, store)
    drifted = served_drift(config, store, splits).report
    # long reviews of another site: longer, and (read by the encoder) about other things;
    # on 387 reference texts most words of either kind are new, so that share moves less
    assert {"review:length", "review:meaning"} <= set(drifted.drifted_columns)
    assert drifted.dataset_drift


def test_the_encoder_equals_sentence_transformers_and_loads_exactly(tmp_path):
    from sentence_transformers import SentenceTransformer

    folder = encoder_folder(tmp_path / "minilm")
    encoder = SentenceEncoder(read_encoder_folder(folder), source=str(folder))
    texts = reviews()["review"].head(24).to_list() + [RTL, EMOJI]
    ours = encoder.encode(texts, batch_size=8)
    theirs = SentenceTransformer(str(folder), device="cpu").encode(texts, batch_size=8)
    assert np.abs(ours - theirs).max() < 1e-4
    assert encoder.loaded == 103
    # a weights file lacking a tensor is refused, naming it
    from safetensors.torch import load_file, save_file

    state = load_file(str(folder / "model.safetensors"))
    del state["encoder.layer.5.output.dense.weight"]
    save_file(state, str(folder / "model.safetensors"))
    with pytest.raises(ConfigError, match=r"missing \['encoder\.layer\.5\.output\.dense\.weight'"):
        SentenceEncoder(read_encoder_folder(folder), source=str(folder))


def test_fine_tuning_trains_the_encoder_and_the_artifact_keeps_it(tmp_path):
    from mllife.config.project import ColumnConfig
    from mllife.models.text_encoder_model import TextEncoderModel
    from mllife.preprocess.tables import TablePreprocessor

    data = _sample().sample(64, seed=1)
    pre = TablePreprocessor(columns={"review": ColumnConfig(dtype="text")})
    x = pre.fit_transform(data.select("review"))
    y = (data["sentiment"] == "positive").cast(pl.Int64).to_numpy()
    model = TextEncoderModel.from_folder(
        encoder_folder(tmp_path / "minilm"), name="tuned", classes=["negative", "positive"],
        preprocessor=pre, params={"fine_tune_epochs": 1, "batch_size": 16, "max_iter": 500},
    )  # fmt: skip
    before = model.encoder.encode(x.texts[:4])
    result = model.fit(x, y, x, y, log=lambda line: None)
    assert result.history[0]["epoch"] == 1 and result.history[0]["train_loss"] > 0
    assert "-tuned-" in model.encoder_label
    after = model.encoder.encode(x.texts[:4])
    assert np.abs(after - before).max() > 1e-3  # the encoder itself changed
    again = TextEncoderModel.from_trusted_bytes(model.to_bytes())
    frame = data.select("review").head(8)
    assert np.allclose(again.predict_proba(frame), model.predict_proba(frame), atol=1e-6)


@pytest.mark.parametrize(
    "case",
    ["empty", "one class", "numbers", "folder", "jsonl", "offered by --table"],
)
def test_init_text_reads_what_users_have_and_refuses_what_cannot_be_a_text_project(tmp_path, case):
    sample = _sample()
    if case == "empty":
        source = tmp_path / "e.csv"
        source.write_text("review,sentiment\n")
    elif case == "one class":
        source = tmp_path / "one.csv"
        write_reviews_csv(source, [(r, "positive") for r in sample["review"].head(40)])
    elif case == "numbers":
        source = tmp_path / "n.csv"
        source.write_text("review,sentiment\n" + "".join(f"{i},{'ab'[i % 2]}\n" for i in range(60)))
    elif case == "folder":
        source = tmp_path / "texts"
        for i, (text, label) in enumerate(sample.head(20).vstack(sample.tail(20)).iter_rows()):
            (source / label).mkdir(parents=True, exist_ok=True)
            (source / label / f"{i:03d}.txt").write_text(text)
    elif case == "jsonl":
        source = tmp_path / "r.jsonl"
        sample.head(30).vstack(sample.tail(30)).write_ndjson(source)
    else:
        rows = list(sample.head(30).vstack(sample.tail(30)).iter_rows())
        source = write_reviews_csv(tmp_path / "t.csv", rows)
        done = _mllife("init", "proj", "--table", str(source), "--target", "sentiment",
                       cwd=tmp_path)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "the only feature, 'review', is free text: `mllife init --text" in done.stdout
        return
    target = [] if case == "folder" else ["--target", "sentiment"]
    done = _mllife("init", "proj", "--text", str(source), *target, cwd=tmp_path)
    expected = {
        "empty": "has no rows",
        "one class": "holds only 'positive'",
        "numbers": "no column holds free text",
    }
    if case in expected:
        assert done.returncode != 0 and expected[case] in done.stderr, done.stderr
        assert not (tmp_path / "proj").exists()  # nothing half-made
        return
    assert done.returncode == 0, done.stderr
    config = load_config(tmp_path / "proj" / "mllife.toml")
    assert config.data.columns["review" if case == "jsonl" else "text"].dtype == "text"
    if case == "folder":
        assert "read 40 .txt files" in done.stdout and config.data.id == "file"
        assert config.data.target == "class"


def test_beside_other_features_a_repeated_or_blank_text_is_not_a_reason_to_drop(tmp_path):
    """Only a text project's rows are the same when their texts are: in a table with
    other features two rows may share a comment, and a blank comment is a missing value."""
    from mllife.config.project import DataConfig
    from mllife.data.tables import clean_table, table_manifest

    frame = pl.DataFrame(
        {
            "comment": ["late again", "late again", "", "Late again!", "ok \x00"],
            "minutes": [5.0, 50.0, 7.0, 5.0, 1.0],
            "target": ["a", "b", "a", "b", "a"],
        }
    )
    data = DataConfig(kind="table", path="t.csv", target="target")
    raw = table_manifest(frame, data, source="t.csv")
    rows, dropped = clean_table(raw, data, text_columns=["comment"])
    assert rows["row"].to_list() == [1, 2, 3, 4]
    assert dropped["reason"].to_list() == ["NUL byte in column 'comment' (binary data, not text)"]


def test_models_that_take_no_sparse_input_get_dense_text_features_within_a_limit():
    from mllife import DataError
    from mllife.config.project import ColumnConfig
    from mllife.models.sklearn_model import SklearnModel
    from mllife.preprocess.tables import TablePreprocessor

    data = _sample().sample(80, seed=3)
    pre = TablePreprocessor(columns={"review": ColumnConfig(dtype="text")})
    x = pre.fit_transform(data.select("review"))
    y = (data["sentiment"] == "positive").cast(pl.Int64).to_numpy()
    boosting = SklearnModel(
        estimator_path="sklearn.ensemble.HistGradientBoostingClassifier", name="boosting",
        classes=["negative", "positive"], preprocessor=pre, params={"max_iter": 5},
    )  # fmt: skip
    boosting.fit(x, y, x, y, log=lambda line: None)
    assert boosting.predict_proba(data.select("review").head(3)).shape == (3, 2)
    with pytest.raises(DataError, match=r"boosting needs dense input, .* 80 x [\d,]+ features"):
        x.dense(model="boosting", limit=1000)
