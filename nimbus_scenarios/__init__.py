"""nimbus-scenarios: a scenario language and runner for testing autoscaling on Kubernetes."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
