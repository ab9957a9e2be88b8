"""Run events: what the runner tells its listeners (console, `--monitor`, telemetry).

Handlers subclass `RunHandler` and override what they need; every method is a no-op by default
and must not raise (the runner guards them anyway, so a broken listener never breaks a run).
Per-request events do not go through here: they are the dispatcher's `RequestObserver`s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nimbus_scenarios.judge.expectations import Judgement
    from nimbus_scenarios.plan.model import PhasePlan, Plan
    from nimbus_scenarios.replicas import ReplicaSample

__all__ = ["RunHandler"]


class RunHandler:
    """A listener to a run's events; all methods default to doing nothing."""

    def run_started(self, plan: Plan, run_id: str) -> None:
        """Pre-flight passed; the `before` stage starts."""

    def stage_started(self, stage: str) -> None:
        """`before`, `phases`, `pending`, `after` or `cleanup` begins."""

    def phase_started(self, phase: PhasePlan, at_s: float) -> None:
        """A phase begins at run offset `at_s`."""

    def phase_ended(self, phase: PhasePlan, at_s: float) -> None:
        """A phase stops scheduling at run offset `at_s`."""

    def replica_sample(self, sample: ReplicaSample, at_s: float) -> None:
        """The replica source recorded a change."""

    def pods_killed(self, names: list[str], at_s: float) -> None:
        """`at T kill N pods` deleted these pods."""

    def expectation_decided(self, judgement: Judgement, at_s: float | None) -> None:
        """An expectation got its verdict."""

    def aborted(self, reason: str, at_s: float) -> None:
        """The run stops early: a guard fired, a signal came, or the deadline passed."""

    def progress(self, status: dict[str, Any]) -> None:
        """Live progress, every `progress_interval_s` while the run goes on."""

    def run_ended(self, document: dict[str, Any]) -> None:
        """The results document is complete."""
