"""numpy's OpenBLAS runs on one thread once voiceclone is imported, unless the user chose otherwise."""

from __future__ import annotations

import json
import os
import subprocess
import sys

PROBE = """
import json, sys
{first}
import voiceclone, numpy, threadpoolctl
print(json.dumps([i["num_threads"] for i in threadpoolctl.threadpool_info() if i["internal_api"] == "openblas"]))
"""


def openblas_threads(first: str, **env: str) -> list[int]:
    environ = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"} | env
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(first=first)], env=environ, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_openblas_is_limited_whether_numpy_loads_before_or_after_voiceclone():
    assert openblas_threads("") == [1]  # voiceclone first: the variable does it
    assert openblas_threads("import numpy") == [1]  # numpy first: threadpoolctl does it


def test_a_users_own_setting_is_kept():
    assert openblas_threads("import numpy", OPENBLAS_NUM_THREADS="2") == [2]
