"""Start ``transformers serve`` on a local model directory, wait until it answers, always stop it.

The test suite and ``benchmarks/chat_bench.py`` use this to put a real OpenAI-compatible server in
front of a directory written by ``vlmkit export`` (or :func:`vlmkit.models.chat_random.build_directory`);
users can do the same from a shell (``transformers serve DIR --host 127.0.0.1 --port 8000``) and
point ``--model openai:DIR --base-url http://127.0.0.1:8000/v1`` at it. Needs the
``transformers[serving]`` extra (FastAPI, uvicorn).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from vlmkit.errors import UserError

#: runs transformers' CLI with this interpreter (no reliance on a ``transformers`` script on PATH),
#: and exits when its parent dies (a killed test run leaves no server behind)
_LAUNCH = """
import os, sys, threading, time
parent = os.getppid()
def watch():
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)
threading.Thread(target=watch, daemon=True).start()
from transformers.cli.transformers import main
sys.argv[0] = "transformers"
sys.exit(main())
"""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on at the moment of the call."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _healthy(url: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through an HTTP proxy
    try:
        with opener.open(url, timeout=2.0) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


@contextmanager
def transformers_serve(
    directory: Path,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    device: str = "cpu",
    startup_timeout: float = 180.0,
    threads: int | None = 1,
) -> Iterator[str]:
    """Serve ``directory`` with ``transformers serve`` and yield its API root (``http://host:port/v1``).

    The model is preloaded (the server is pinned to it, so its served name is ``str(directory)``),
    offline (``HF_HUB_OFFLINE=1``). Readiness is ``GET /health`` answering 200 within
    ``startup_timeout`` seconds; the process is terminated (then killed) on exit, whatever happens.

    Raises:
        UserError: the server exited or did not get ready in time (the message ends with its log).
    """
    port = port or free_port(host)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    command = [sys.executable, "-c", _LAUNCH, "serve", str(directory), "--host", host, "--port", str(port), "--device", device]
    with tempfile.TemporaryFile(mode="w+b") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + startup_timeout
            while not _healthy(f"http://{host}:{port}/health"):
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    tail = " | ".join(log.read().decode(errors="replace").strip().splitlines()[-3:])
                    state = (
                        f"exited with code {process.returncode}"
                        if process.poll() is not None
                        else f"was not ready after {startup_timeout:g} s"
                    )
                    raise UserError(f"transformers serve {directory} {state}; is the transformers[serving] extra installed? log: {tail}")
                time.sleep(0.25)
            yield f"http://{host}:{port}/v1"
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)
