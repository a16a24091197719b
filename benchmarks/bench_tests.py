"""The test suite's wall time and its slowest tests, so a slow new test is seen the day
it lands.

    python benchmarks/bench_tests.py [--top 10] [--serial-baseline] [-- PYTEST ARGS]

Runs the README's test command (`pytest`: one worker per CPU, see tests/README.md) and
prints its wall time, its share of the 15-minute budget (2 cores), and the ten slowest
test phases (setup, call or teardown) from pytest's own report. With
``--serial-baseline`` the same tests also run on one worker (``-n 0``) in the same
invocation, and the ratio says what the workers buy on this machine. Extra arguments
after ``--`` go to pytest (e.g. ``-- tests/test_memo.py`` to time one file).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUDGET_S = 15 * 60


def run_suite(pytest_args: list[str]) -> tuple[float, int, list[tuple[float, str]]]:
    """(wall seconds, pytest's exit code, (seconds, test) of every test case)."""
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "report.xml"
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             f"--junitxml={report}", "-o", "junit_duration_report=total", *pytest_args],
            cwd=REPO,
        )  # fmt: skip
        wall = time.perf_counter() - started
        cases = [
            (float(case.get("time", 0)), f"{case.get('classname')}::{case.get('name')}")
            for case in ET.parse(report).iter("testcase")
        ]
    return wall, done.returncode, cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--serial-baseline", action="store_true")
    parser.add_argument("pytest_args", nargs="*")
    args = parser.parse_args()

    wall, code, cases = run_suite(args.pytest_args)
    print(f"\nsuite: {len(cases)} tests, wall {wall:.0f} s ({wall / 60:.1f} min), exit {code}")
    print(f"budget: {wall / BUDGET_S:.2f} of 15 minutes")
    print(f"the {args.top} slowest tests (setup + call + teardown):")
    for seconds, name in sorted(cases, reverse=True)[: args.top]:
        print(f"  {seconds:7.1f} s  {name}")
    if args.serial_baseline:
        serial, _, _ = run_suite(["-n", "0", *args.pytest_args])
        print(f"baseline one worker: {serial:.0f} s; workers are {serial / wall:.2f}x faster")
    sys.exit(code)


if __name__ == "__main__":
    main()
