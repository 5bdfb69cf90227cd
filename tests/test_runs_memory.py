"""The process memory policy of long numeric jobs (vlmkit.runs.memory)."""

import platform
import subprocess
import sys

import pytest


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc", reason="glibc's mallopt only")
def test_glibc_takes_the_policy_and_large_arrays_still_allocate_and_free():
    # in a child process: the policy is process-wide and must not leak into the test workers
    child = """
import numpy as np
from vlmkit.runs.memory import reuse_freed_memory
print(reuse_freed_memory())
for _ in range(3):  # 80 MB score matrices, as SITH allocates per batch, now from the heap
    scores = np.ones((1024, 20000), dtype=np.float32)
    assert float(scores.sum()) == 1024 * 20000
    del scores
"""
    done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "True"
