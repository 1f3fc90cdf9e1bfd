"""Running `voiceclone` as a user does (a subprocess) and checking its one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Variables a developer's shell may carry that would change what a test sees.
_ISOLATE = ("VOICECLONE_", "OPENAI_", "DEEPGRAM_", "DAILY_", "HF_HUB_OFFLINE")


def run_cli(
    *args: str, env: dict | None = None, stdin=None, binary: bool = False, cwd: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    """`python -m voiceclone ARGS` with a clean environment plus `env`."""
    full = {k: v for k, v in os.environ.items() if not k.startswith(_ISOLATE)}
    full["COLUMNS"] = "200"
    full.update({k: str(v) for k, v in (env or {}).items()})
    if binary and isinstance(stdin, str):
        stdin = stdin.encode()
    return subprocess.run(
        [sys.executable, "-m", "voiceclone", *args],
        capture_output=True,
        text=not binary,
        env=full,
        cwd=cwd,
        timeout=timeout,
        input=stdin,
    )


def error_line(result: subprocess.CompletedProcess) -> str:
    """The run failed with exactly one `error:` line and no traceback; that line."""
    stderr = result.stderr.decode() if isinstance(result.stderr, bytes) else result.stderr
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, stderr
    assert stderr.rstrip().splitlines()[-1] == lines[0], f"the error goes on after its line:\n{stderr}"
    return lines[0]
