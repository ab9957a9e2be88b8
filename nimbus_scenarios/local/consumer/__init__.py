"""The local reference consumer: a loopback stand-in for the NimbusGuard consumer service.

Its place: the `local` stage. `run --local`, the tests and `make demo` start it (in process
through `ReferenceConsumer`, or as `python -m nimbus_scenarios.local.consumer`) so that the load
runner, the judge and the local autoscaler have a real service to work against without a cluster.
It follows design/consumer-api.md: the same paths, parameters, ranges, 422 answers, sync/async
work shapes and Prometheus metric names. It only ever binds a loopback address.

One job per module:

- `api`: the route table, POST /process's parameters and their validation;
- `work`: CPU busy work, the memory store and the task book (`threads`: the worker threads);
- `metrics`: the Prometheus metrics, kept and written by `prometheus_client`;
- `config`: `ConsumerConfig`;
- `server`: the aiohttp application, its connection-counting site, `ReferenceConsumer` and the
  command-line entry point (`__main__`).
"""

from __future__ import annotations

from nimbus_scenarios.local.consumer.api import (
    CPU_INTENSITY,
    DURATION_S,
    MEMORY_SIZE_MB,
    IntRange,
    ProcessRequest,
    ValidationIssue,
    parse_process_query,
)
from nimbus_scenarios.local.consumer.config import ConsumerConfig
from nimbus_scenarios.local.consumer.server import ReferenceConsumer, main
from nimbus_scenarios.local.consumer.work import (
    CpuResult,
    MemoryResult,
    allocate_strings,
    burn_cpu,
    cpu_work,
)
from nimbus_scenarios.local.loopback import check_loopback_host

__all__ = [
    "CPU_INTENSITY",
    "DURATION_S",
    "MEMORY_SIZE_MB",
    "ConsumerConfig",
    "CpuResult",
    "IntRange",
    "MemoryResult",
    "ProcessRequest",
    "ReferenceConsumer",
    "ValidationIssue",
    "allocate_strings",
    "burn_cpu",
    "check_loopback_host",
    "cpu_work",
    "main",
    "parse_process_query",
]
