"""Hostile files: fuzzed config files, CSV tables and image bytes, and path traversal in
known-problem files. Every case ends in a result or in mllife's own clear error
(ConfigError, DataError, ProblemError) -- never a stray exception from a library."""

import io
import json
import math
import shutil
import tomllib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from mllife import ConfigError, DataError, ProblemError
from mllife.config.project import load_config
from mllife.data.defaults import encode_gray_png
from mllife.data.images import scan_image_folder
from mllife.data.stage import clean, clean_contract, raw_contract, read_raw
from mllife.problems.registry import ProblemRegistry
from mllife.serve._images import decode_image
from mllife.serve._inputs import InputError
from mllife.storage.store import Store
from tests.conftest import SMALL_CONFIG, make_project

FUZZ = settings(
    max_examples=400,
    deadline=None,
    derandomize=True,  # the same cases on every machine: a failure reproduces
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# -- config files ----------------------------------------------------------------------

VALID = tomllib.loads(SMALL_CONFIG.format(epochs=2, extra=""))

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["", "../../etc", "sklearn.os.system", "torch", "images", "table"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)


def render(value) -> str:
    """A TOML value (a tiny writer: the standard library only reads TOML)."""
    if value is None:
        return '""'  # TOML has no null
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return (
            "nan"
            if math.isnan(value)
            else ("inf" if value > 0 else "-inf")
            if math.isinf(value)
            else repr(value)
        )
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(render(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {render(v)}" for k, v in value.items()) + "}"


def render_document(doc: dict) -> str:
    lines = []
    for section, body in doc.items():
        if isinstance(body, list) and body and all(isinstance(b, dict) for b in body):
            for table in body:
                lines.append(f"[[{json.dumps(section)}]]")
                lines += [f"{json.dumps(k)} = {render(v)}" for k, v in table.items()]
        elif isinstance(body, dict):
            lines.append(f"[{json.dumps(section)}]")
            lines += [f"{json.dumps(k)} = {render(v)}" for k, v in body.items()]
        else:
            lines.insert(0, f"{json.dumps(section)} = {render(body)}")
    return "\n".join(lines) + "\n"


@st.composite
def mutated_configs(draw) -> str:
    doc = json.loads(json.dumps(VALID))
    for _ in range(draw(st.integers(1, 4))):
        section = draw(st.sampled_from(sorted(doc) + ["unknown_section"]))
        body = doc.get(section)
        target = draw(st.sampled_from(body)) if isinstance(body, list) and body else body
        action = draw(st.sampled_from(["set", "delete", "add", "replace_section"]))
        if action == "replace_section" or not isinstance(target, dict):
            doc[section] = draw(values)
        elif action == "delete" and target:
            target.pop(draw(st.sampled_from(sorted(target))))
        elif action == "set" and target:
            target[draw(st.sampled_from(sorted(target)))] = draw(values)
        else:
            target[draw(st.text(min_size=1, max_size=10))] = draw(values)
    text = render_document(doc)
    if draw(st.booleans()):  # and sometimes a few raw character edits on top
        for _ in range(draw(st.integers(1, 3))):
            at = draw(st.integers(0, len(text)))
            text = text[:at] + draw(st.text(max_size=3)) + text[at + draw(st.integers(0, 3)) :]
    return text


@FUZZ
@given(text=mutated_configs())
def test_fuzzed_config_files_load_or_raise_a_config_error(tmp_path, text):
    path = tmp_path / "mllife.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        config = load_config(path)
    except ConfigError as exc:
        assert str(path) in str(exc)  # the error names the file
        return
    # A config that loads is usable: everything derived from it works.
    assert config.models_to_train and config.data_path and config.store_path
    assert config.serving.port and config.monitoring and config.promotion


@FUZZ
@given(payload=st.binary(max_size=300))
def test_random_bytes_as_a_config_file_raise_a_config_error(tmp_path, payload):
    path = tmp_path / "mllife.toml"
    path.write_bytes(payload)
    try:
        load_config(path)
    except ConfigError as exc:
        assert str(path) in str(exc)


# -- CSV tables ------------------------------------------------------------------------

TABLE_CONFIG = """
[data]
kind = "table"
path = "data/table.csv"
target = "target"

[[candidates]]
name = "logreg"
kind = "sklearn"
estimator = "sklearn.linear_model.LogisticRegression"
"""

cells = st.one_of(
    st.integers(-(10**20), 10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", "NA", "nan", "inf", "-", '"', '""', "a,b", "\n", "1e400", " 3 "]),
    st.text(max_size=12),
)


@st.composite
def csv_texts(draw) -> str:
    header = ["x", "y", "target"]
    if draw(st.booleans()):
        header = draw(st.lists(st.sampled_from(["x", "y", "target", "", "x ", "é"]), max_size=5))
    n_rows = draw(st.integers(0, 12))
    rows = [
        [
            draw(cells)
            if draw(st.integers(0, 3)) == 0
            else draw(st.sampled_from(["1", "2.5", "a"]))
            for _ in header
        ]
        for _ in range(n_rows)
    ]
    if header[-1:] == ["target"]:
        for row in rows:
            if draw(st.booleans()) and row:
                row[-1] = draw(st.sampled_from(["yes", "no"]))
    text = "\n".join(",".join(r) for r in [header, *rows])
    return text + draw(st.sampled_from(["", "\n", "\r\n", "\n\n,,\n"]))


def _load_table(root: Path):
    """What the data stage does with a table: read, contract, clean, contract."""
    config = load_config(root / "mllife.toml")
    raw = read_raw(config)
    raw_contract(config, raw)
    data = clean(config, raw)
    return clean_contract(config, data)


@FUZZ
@given(text=csv_texts())
def test_fuzzed_csv_tables_are_read_or_refused_with_a_data_error(tmp_path, text):
    root = tmp_path / "t"
    shutil.rmtree(root, ignore_errors=True)
    (root / "data").mkdir(parents=True)
    (root / "mllife.toml").write_text(TABLE_CONFIG)
    (root / "data" / "table.csv").write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        _load_table(root)
    except DataError as exc:
        assert "table" in str(exc) or "column" in str(exc) or "row" in str(exc), str(exc)


@FUZZ
@given(payload=st.binary(max_size=400))
def test_random_bytes_as_a_csv_table_are_refused_with_a_data_error(tmp_path, payload):
    root = tmp_path / "t"
    shutil.rmtree(root, ignore_errors=True)
    (root / "data").mkdir(parents=True)
    (root / "mllife.toml").write_text(TABLE_CONFIG)
    (root / "data" / "table.csv").write_bytes(payload)
    try:
        _load_table(root)
    except DataError:
        pass


# -- image bytes -----------------------------------------------------------------------

PNG = encode_gray_png(np.arange(64, dtype=np.uint8).reshape(8, 8) * 4)


@st.composite
def image_bytes(draw) -> bytes:
    kind = draw(st.sampled_from(["flip", "truncate", "splice", "random", "other_format"]))
    data = bytearray(PNG)
    if kind == "flip":
        for _ in range(draw(st.integers(1, 8))):
            data[draw(st.integers(0, len(data) - 1))] ^= 1 << draw(st.integers(0, 7))
    elif kind == "truncate":
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif kind == "splice":
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(max_size=40)) + data[at:]
    elif kind == "random":
        data = bytearray(draw(st.binary(max_size=200)))
    else:
        buffer = io.BytesIO()
        fmt = draw(st.sampled_from(["GIF", "BMP", "JPEG", "TIFF"]))
        Image.new("L", (draw(st.integers(1, 40)), draw(st.integers(1, 40)))).save(buffer, fmt)
        data = bytearray(buffer.getvalue())
    return bytes(data)


@FUZZ
@given(payload=image_bytes())
def test_fuzzed_image_bytes_are_decoded_or_refused_by_the_server(payload):
    try:
        image = decode_image(payload, position=0, max_pixels=4096**2)
    except InputError as exc:
        assert "image" in str(exc).lower()
        return
    assert image.width >= 1 and image.height >= 1


@settings(max_examples=60, deadline=None, derandomize=True)
@given(payloads=st.lists(image_bytes(), min_size=1, max_size=6))
def test_fuzzed_image_files_in_the_data_folder_are_reported_never_raised(payloads):
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "data"
        (data / "3").mkdir(parents=True)
        for i, payload in enumerate(payloads):
            (data / "3" / f"{i}.png").write_bytes(payload)
        manifest = scan_image_folder(data, root=Path(folder))
    assert manifest.height == len(payloads)
    broken = manifest.filter(manifest["error"].is_not_null())
    assert all(e.startswith(("unreadable image", "empty file")) for e in broken["error"])


# -- path traversal in known-problem files ---------------------------------------------


@pytest.mark.parametrize(
    "file",
    ["../../secret.png", "/etc/passwd", "ok/../../../secret.png", "link.png"],
)
def test_problem_files_cannot_read_outside_their_folder(tmp_path, digits_folder, file):
    config_path = make_project(tmp_path / "p", digits_folder)
    config = load_config(config_path)
    secret = tmp_path / "secret.png"
    secret.write_bytes(PNG)
    folder = tmp_path / "p" / "problems" / "sneaky"
    folder.mkdir()
    (folder / "link.png").symlink_to(secret)
    (folder / "problem.toml").write_text(
        f'description = "x"\n[[patterns]]\nfile = "{file}"\nexpected = "3"\nkind = "positive"\n'
    )
    registry = ProblemRegistry(config, Store(config.store_path))
    before = list((config.state_dir).rglob("*")) if config.state_dir.exists() else []
    with pytest.raises(ProblemError, match="lies outside"):
        registry.sync_from_files(config.problems_dir, classes=[str(i) for i in range(10)])
    patterns = Store(config.store_path).query("SELECT * FROM patterns WHERE problem = 'sneaky'")
    assert patterns.height == 0
    kept = [p for p in config.state_dir.rglob("*") if p not in before and p.suffix == ".png"]
    assert all(p.read_bytes() != PNG for p in kept)  # the outside file was never copied in


def test_problem_csv_rows_cannot_name_files_outside_the_csv_folder(tmp_path, digits_folder):
    config_path = make_project(tmp_path / "p", digits_folder)
    config = load_config(config_path)
    (tmp_path / "secret.png").write_bytes(PNG)
    registry = ProblemRegistry(config, Store(config.store_path))
    registry.add_problem("sneaky", description="x")
    csv = tmp_path / "p" / "import" / "patterns.csv"
    csv.parent.mkdir()
    csv.write_text("file,expected,kind,source\n../../secret.png,3,positive,contrived\n")
    with pytest.raises(ProblemError, match="lies outside"):
        registry.import_csv("sneaky", csv, classes=[str(i) for i in range(10)])
    assert registry.patterns("sneaky").height == 0


# -- symbolic links in the data folder ---------------------------------------------------


@pytest.mark.parametrize("kind", ["file", "folder", "loop"])
def test_links_in_the_data_folder_are_refused_by_name_never_followed(tmp_path, digits_folder, kind):
    from mllife.data.images import infer_classes
    from mllife.data.stage import current_data_version, read_raw

    config = load_config(make_project(tmp_path / "p", digits_folder))
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.png").write_bytes(PNG)
    link = {
        "file": config.data_path / "3" / "secret.png",
        "folder": config.data_path / "secrets",
        "loop": config.data_path / "3" / "loop",
    }[kind]
    target = {"file": outside / "secret.png", "folder": outside, "loop": link}[kind]
    link.symlink_to(target)
    for read in (read_raw, current_data_version):  # the data stage and `mllife run`'s planner
        with pytest.raises(DataError, match="symbolic link") as caught:
            read(config)
        assert str(link) in str(caught.value) and "replace each with a copy" in str(caught.value)
    assert "secrets" not in infer_classes(config.data_path)  # a linked folder is no class


def test_a_run_on_data_with_a_link_loop_fails_clearly_and_keeps_the_champion(
    deployed_digits, tmp_path, capfd
):
    from mllife.cli import main as cli
    from tests.conftest import copy_project

    config_path = copy_project(deployed_digits[0], tmp_path / "p")
    config = load_config(config_path)
    before = Store(config.store_path).champion()
    (config.data_path / "3" / "loop.png").symlink_to(config.data_path / "3" / "loop.png")
    assert cli(["--config", str(config_path), "run"]) != 0  # `mllife run`
    said = capfd.readouterr()  # `mllife run` runs its run in a child process
    text = said.out + said.err
    assert "symbolic link" in text and "loop.png" in text, text
    assert "Traceback" not in text and "Too many levels" not in text
    assert Store(config.store_path).champion() == before
