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
