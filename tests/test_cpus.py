"""Pools are sized by the CPUs the process may use (taskset, a container's cpuset), not
by the machine's count: more workers than allowed CPUs only take turns."""

from __future__ import annotations

import os
import subprocess
import sys


def test_serving_threads_and_loader_workers_follow_the_cpus_the_process_may_use():
    code = (
        "import os\n"
        "from mllife.preprocess.pixels import loader_workers\n"
        "from mllife.serve._inference import inference_threads\n"
        "print(inference_threads(), loader_workers())\n"
        "os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})\n"
        "print(inference_threads(), loader_workers())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    unconfined, confined = ([int(v) for v in line.split()] for line in out.stdout.splitlines())
    allowed = len(os.sched_getaffinity(0))
    assert unconfined == [min(4, allowed), max(0, min(8, allowed - 2))]
    assert confined == [1, 0]
