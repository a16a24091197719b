import os
import subprocess
import sys

from mllife.cli import main
from tests.conftest import REPO


def test_data_init_writes_the_digits_once(tmp_path, capsys):
    config = tmp_path / "mllife.toml"
    config.write_text((REPO / "mllife.toml").read_text())
    assert main(["--config", str(config), "data", "init"]) == 0
    assert len(list((tmp_path / "data" / "digits").rglob("*.png"))) == 1797
    assert "wrote 1797 digit images" in capsys.readouterr().out
    assert main(["--config", str(config), "data", "init"]) == 0
    assert "already exists" in capsys.readouterr().out


def test_status_before_any_run(tmp_path, capsys):
    config = tmp_path / "mllife.toml"
    config.write_text((REPO / "mllife.toml").read_text())
    assert main(["--config", str(config), "status"]) == 0
    assert "run `mllife run` first" in capsys.readouterr().out


def test_bad_config_is_a_clean_error_with_exit_code_2(tmp_path):
    config = tmp_path / "mllife.toml"
    config.write_text("[[candidates]]\nname = 'x'\nkind = 'sklearn'\nestimator = 'a.B'\nfoo = 1\n")
    done = subprocess.run(
        [sys.executable, "-m", "mllife.cli", "--config", str(config), "status"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "unknown key 'candidates.0.foo'" in done.stderr and "Traceback" not in done.stderr


def test_a_reader_that_stops_reading_gets_no_traceback(tmp_path):
    # `mllife status | head -1`: the pipe's reader is gone before the output is written
    config = tmp_path / "mllife.toml"
    config.write_text((REPO / "mllife.toml").read_text())
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "mllife.cli", "--config", str(config), "status"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
        )
    finally:
        os.close(write_end)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr, done.stderr


def _walk(parser):
    """Every (command path, action) of the parser and its subcommands."""
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                for path, inner in _walk(sub):
                    yield [name, *path], inner
        else:
            yield [], action


def test_every_command_and_option_says_what_it_is_for():
    import argparse

    from mllife.cli import build_parser

    parser = build_parser()
    assert "``" not in parser.description
    missing = [
        " ".join([*path, action.dest])
        for path, action in _walk(parser)
        if not isinstance(action, argparse._HelpAction) and not action.help
    ]
    assert not missing, missing


def test_commands_that_train_nothing_do_not_import_torch(tmp_path):
    config = tmp_path / "mllife.toml"
    config.write_text((REPO / "mllife.toml").read_text())
    code = (
        "import sys\n"
        "from mllife.cli import main\n"
        f"assert main(['--config', {str(config)!r}, 'problems', 'add', 'hats',"
        " '--description', 'misreads\\nhats']) == 0\n"
        f"assert main(['--config', {str(config)!r}, 'problems', 'list']) == 0\n"
        f"assert main(['--config', {str(config)!r}, 'keys', 'list']) == 0\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("name"))
    assert lines[header].split() == [
        "name", "description", "min", "score", "patterns", "positive", "negative"
    ]  # fmt: skip
    assert set(lines[header + 1]) <= {"-", " "}
    assert lines[header + 2].split()[:3] == ["hats", "misreads", "hats"]  # no raw newline
    assert "shape:" not in done.stdout and "│" not in done.stdout  # not a frame dump
    assert "no active keys: create one with `mllife keys create --name NAME`" in done.stdout


def test_problems_list_without_problems_says_how_to_add_one(tmp_path, capsys):
    config = tmp_path / "mllife.toml"
    config.write_text((REPO / "mllife.toml").read_text())
    assert main(["--config", str(config), "problems", "list"]) == 0
    assert "no known problems yet: `mllife problems add" in capsys.readouterr().out


def test_user_errors_are_one_clear_line(tmp_path, capsys):
    config = tmp_path / "mllife.toml"
    config.write_text((REPO / "mllife.toml").read_text())
    args = ["--config", str(config)]
    assert main([*args, "data", "init"]) == 0
    assert main([*args, "problems", "add", "hats", "--description", "x"]) == 0
    assert main([*args, "problems", "import", "hats", str(tmp_path / "nothere")]) == 2
    err = capsys.readouterr().err
    assert "nothere is neither a folder of <label>/<image> nor a CSV file" in err
    assert "Traceback" not in err
    for port in ("99999", "0", "http"):
        try:
            main([*args, "serve", "--port", port])
        except SystemExit as exc:
            assert exc.code == 2
        assert "port" in capsys.readouterr().err


def test_report_says_when_the_latest_run_failed(tmp_path, capsys):
    import json

    config = tmp_path / "mllife.toml"
    config.write_text((REPO / "mllife.toml").read_text())
    reports = tmp_path / ".mllife" / "reports"
    reports.mkdir(parents=True)
    (reports / "status-aaaa.html").write_text("<html></html>")
    last = tmp_path / ".mllife" / "last_run.json"
    last.write_text(json.dumps({"run_id": "aaaa", "status": "success", "finished_at": 1e9}))
    assert main(["--config", str(config), "report"]) == 0
    assert "failed" not in capsys.readouterr().err
    last.write_text(json.dumps({"run_id": "bbbb", "status": "failed", "finished_at": 2e9}))
    assert main(["--config", str(config), "report"]) == 0
    err = capsys.readouterr().err
    assert "the latest run, bbbb" in err and "failed and wrote no report" in err


def test_newcomers_mistakes_get_one_line_naming_the_wrong_thing_and_the_fix(
    tmp_path, monkeypatch, capsys
):
    import argparse

    from mllife.cli import build_parser

    monkeypatch.chdir(tmp_path)  # no project here
    cases = [
        (["init", "--tabel", "x.csv"], "init: unknown option --tabel; did you mean --table?"),
        (["run", "--forse"], "mllife run: unknown option --forse; did you mean --force?"),
        (["keys", "create", "--nmae", "x"], "unknown option --nmae; did you mean --name?"),
        (["init", "--table", "missing.csv", "--target", "y"],
         f"mllife init --table: {tmp_path / 'missing.csv'} does not exist"),
        (["status"], "or create a project for your data: `mllife init --images FOLDER`"),
    ]  # fmt: skip
    for argv, said in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert said in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())  # nothing written
    # an abbreviation argparse accepts is not a mistake
    assert main(["init", "--tab", "missing.csv", "--target", "y"]) == 2
    assert "does not exist" in capsys.readouterr().err
    # every command's --help opens with what it is for
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, command in commands.choices.items():
        assert command.description, f"mllife {name} --help has no description"
