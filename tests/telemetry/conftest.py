"""Fixtures for the telemetry tests: the real rotel collector in front of the shared OTLP sink.

`tests.support.otlp.OtlpSink` receives and decodes OTLP/HTTP. `Rotel` runs the `rotel-agent`
binary shipped in the `rotel` wheel as a child process: OTLP receivers on free loopback ports,
exporting OTLP/HTTP to the sink. `run_traced` plays scenario text with a `Telemetry` wired into
the runner.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import rotel

from nimbus_scenarios.language.errors import Source
from nimbus_scenarios.pipeline import compile_source
from nimbus_scenarios.plan.model import Plan
from nimbus_scenarios.replicas import ReplicaSource
from nimbus_scenarios.results.model import TelemetrySummary
from nimbus_scenarios.runner import RunOptions, RunOutcome, run_scenario
from nimbus_scenarios.telemetry import context as run_context
from nimbus_scenarios.telemetry.core import Telemetry
from tests.support.http import free_port
from tests.support.otlp import OtlpSink
from tests.support.wait import wait_until

ROTEL_AGENT = Path(rotel.__file__).resolve().parent / "rotel-agent"


class Rotel:
    """The rotel collector (the wheel's `rotel-agent`) receiving OTLP, forwarding to the sink."""

    def __init__(self, sink_url: str) -> None:
        self.sink_url = sink_url
        self.http_port = free_port()
        self.grpc_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        """The OTLP/HTTP base URL to export to."""
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_endpoint(self) -> str:
        """The OTLP/gRPC address to export to."""
        return f"http://127.0.0.1:{self.grpc_port}"

    def start(self) -> Rotel:
        """Start the agent in the foreground (a child we can kill) and wait for its ports."""
        argv = [
            str(ROTEL_AGENT),
            "start",
            "--otlp-http-endpoint",
            f"127.0.0.1:{self.http_port}",
            "--otlp-grpc-endpoint",
            f"127.0.0.1:{self.grpc_port}",
            "--exporter",
            "otlp",
            "--otlp-exporter-endpoint",
            self.sink_url,
            "--otlp-exporter-protocol",
            "http",
            "--otlp-exporter-compression",
            "none",
            "--batch-timeout",
            "50ms",
        ]
        self.process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        for port in (self.http_port, self.grpc_port):
            if not wait_until(lambda p=port: _listening(p), 10.0):
                self.stop()
                raise RuntimeError(f"rotel did not listen on 127.0.0.1:{port}")
        return self

    def kill(self) -> None:
        """SIGKILL: the collector vanishes mid-run."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)

    def stop(self) -> None:
        """SIGTERM and wait (rotel flushes what it holds on the way out)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self.process.stderr is not None:
            self.process.stderr.close()


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@pytest.fixture(autouse=True)
def fresh_run_context() -> Iterator[None]:
    """Each test starts and ends with an empty process-wide run context."""
    run_context.reset()
    yield
    run_context.reset()


@pytest.fixture(scope="module")
def sink() -> Iterator[OtlpSink]:
    """An OTLP sink shared by one module's tests (cleared before each use by `collector`)."""
    server = OtlpSink().start()
    yield server
    server.stop()


@pytest.fixture
def collector(sink: OtlpSink) -> Iterator[Rotel]:
    """A fresh rotel forwarding to the (cleared) sink."""
    sink.delay_s = 0.0
    wait_until(lambda: sink.in_flight == 0, 10.0)
    sink.clear()
    agent = Rotel(sink.url).start()
    yield agent
    agent.stop()


def compile_text(text: str) -> Plan:
    """A plan from scenario text."""
    return compile_source(Source("telemetry-test.scn", text))


@dataclass
class TracedRun:
    """A finished traced run: its outcome, telemetry, export summary and the shutdown's duration."""

    outcome: RunOutcome
    telemetry: Telemetry
    summary: TelemetrySummary
    shutdown_s: float


def run_traced(
    text: str,
    url: str,
    environ: Mapping[str, str],
    *,
    source: ReplicaSource | None = None,
    during: Callable[[], None] | None = None,
    during_at_s: float = 0.0,
    limit_s: float = 40.0,
    shutdown_timeout_s: float = 5.0,
    **options: Any,
) -> TracedRun:
    """Play `text` against `url`, telemetry from `environ`; `during()` runs at +`during_at_s`."""
    plan = compile_text(text)
    telemetry = Telemetry.start(plan, url=url, run_id="testrun00001", environ=environ)
    timer = threading.Timer(during_at_s, during) if during is not None else None
    if timer is not None:
        timer.start()
    try:
        outcome = asyncio.run(
            asyncio.wait_for(
                run_scenario(
                    plan,
                    RunOptions(url=url, install_signal_handlers=False, **options),
                    scenario_text=text,
                    source=source,
                    telemetry=telemetry,
                ),
                limit_s,
            )
        )
    finally:
        if timer is not None:
            timer.join()
    shutdown_at = time.monotonic()
    summary = telemetry.shutdown(timeout_s=shutdown_timeout_s)
    return TracedRun(outcome, telemetry, summary, time.monotonic() - shutdown_at)


def otel_env(endpoint: str, **extra: str) -> dict[str, str]:
    """A telemetry environment for tests: short delays and timeouts."""
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "200",
        "OTEL_METRIC_EXPORT_INTERVAL": "500",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "1000",
        "OTEL_SERVICE_NAME": "nimbus-test",
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test,team=load",
    }
    env.update(extra)
    return env
