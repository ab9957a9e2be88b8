"""Every error this tool raises on purpose, under one root. `cli.main` maps them to exit codes
once, by the class's `exit_code`; anything else that escapes is a crash: one line, the traceback
in a log file, and exit 4, never 1.

    NimbusError
    ├── UsageError                 exit 2: the command line or an input cannot be used; nothing
    │   │                          was sent
    │   ├── ScenarioError          an invalid scenario or `--set` value, with every diagnostic
    │   │                          (defined in `language.errors`, where sources are rendered)
    │   ├── MissingEnvironment     `env("NAME")` is not set when the run starts
    │   └── ResultsError           a results file that cannot be read, or results that cannot
    │                              be merged
    ├── Stopped                    exit 3: SIGINT or SIGTERM before the run could keep results
    │                              (defined in `stops`)
    └── InfrastructureError        exit 4: what the run needs is not there
        ├── ClusterError           the Kubernetes API
        │   ├── ClusterConfigError      no usable kubeconfig or in-cluster configuration
        │   ├── ClusterUnreachable      the API server does not answer
        │   ├── ClusterForbidden        the ServiceAccount may not do something it must
        │   └── DeploymentNotFound      the watched Deployment does not exist
        └── LocalFleetError        a local consumer or fleet did not start (defined in
                                   `local.errors`)

Foreign exceptions are mapped at the boundary where they occur, most specific first, with
`raise ... from exc`.
"""

from __future__ import annotations

from typing import ClassVar

from nimbus_scenarios.exit_codes import ExitCode

__all__ = [
    "ClusterConfigError",
    "ClusterError",
    "ClusterForbidden",
    "ClusterUnreachable",
    "DeploymentNotFound",
    "InfrastructureError",
    "MissingEnvironment",
    "NimbusError",
    "ResultsError",
    "UsageError",
]


class NimbusError(Exception):
    """The root of every error the tool raises on purpose."""

    exit_code: ClassVar[ExitCode] = ExitCode.INFRASTRUCTURE


class UsageError(NimbusError):
    """The command line or an input cannot be used (exit 2)."""

    exit_code = ExitCode.USAGE


class MissingEnvironment(UsageError):
    """An `env("NAME")` value whose variable is not set when the run starts."""

    def __init__(self, variable: str) -> None:
        self.variable = variable
        super().__init__(
            f'environment variable `{variable}` is not set (used by env("{variable}"))'
        )


class ResultsError(UsageError):
    """A results file that cannot be read or written, or results that cannot be merged."""


class InfrastructureError(NimbusError):
    """Something the run needs is not there (exit 4)."""

    exit_code = ExitCode.INFRASTRUCTURE


class ClusterError(InfrastructureError):
    """A problem talking to the Kubernetes API."""


class ClusterConfigError(ClusterError):
    """No usable kubeconfig or in-cluster configuration."""


class ClusterUnreachable(ClusterError):
    """The API server does not answer."""


class ClusterForbidden(ClusterError):
    """The ServiceAccount lacks a permission."""


class DeploymentNotFound(ClusterError):
    """The watched Deployment does not exist."""
