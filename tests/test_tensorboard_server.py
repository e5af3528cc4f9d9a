"""The real `tensorboard` server against a finished run: its HTTP data API lists the run's
scalar tags and serves its images."""

import json
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from litlab.train import train
from tests.helpers import compose_quiet


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


def wait_for(url: str, server: subprocess.Popen, seconds: float = 90) -> bytes:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert server.poll() is None, server.stderr.read().decode()
        try:
            return get(url)
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"tensorboard did not answer {url} within {seconds} s")


@pytest.mark.slow
def test_tensorboard_serves_the_runs_scalars_and_images(tmp_path: Path):
    run = tmp_path / "run"
    train(
        compose_quiet(
            ["data=synthetic_classification", "model=mlp", "trainer.max_epochs=2"], run, images=True
        )
    )
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "tensorboard.main",
        "--logdir",
        str(run),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--load_fast",
        "false",
    ]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}/data"
    try:
        wait_for(f"{base}/runs", server)
        deadline = time.monotonic() + 60
        while "tensorboard" not in json.loads(get(f"{base}/plugin/scalars/tags")):
            assert time.monotonic() < deadline, "the run's scalars were never loaded"
            time.sleep(0.5)
        scalars = json.loads(get(f"{base}/plugin/scalars/tags"))["tensorboard"]
        assert {"train/loss", "val/acc", "val/acc_best", "test/acc", "test/f1/2"} <= set(scalars)
        images = json.loads(get(f"{base}/plugin/images/tags"))["tensorboard"]
        assert {"val/confusion_matrix", "test/confusion_matrix"} <= set(images)

        query = urllib.parse.urlencode({"run": "tensorboard", "tag": "val/confusion_matrix"})
        entries = json.loads(get(f"{base}/plugin/images/images?{query}"))
        assert [entry["step"] for entry in entries] == [65, 131]
        png = get(f"{base}/plugin/images/individualImage?{entries[-1]['query']}")
        assert png.startswith(b"\x89PNG")
        points = json.loads(get(f"{base}/plugin/scalars/scalars?run=tensorboard&tag=val%2Facc"))
        assert [point[1] for point in points] == [65, 131]  # [wall time, step, value]
    finally:
        server.terminate()
        server.wait(timeout=30)
