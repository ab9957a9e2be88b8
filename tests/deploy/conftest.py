"""Session fixtures for the deployment tests (helpers live in `support`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.deploy.support import OVERLAY, Manifest, kustomize


@pytest.fixture(scope="session")
def kube_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A HOME with an offline kubeconfig, shared by the session's kubectl runs."""
    return tmp_path_factory.mktemp("kube-home")


@pytest.fixture(scope="session")
def overlay_objects(kube_home: Path) -> list[Manifest]:
    """The example overlay built once: what `kubectl apply -k` of it applies."""
    return kustomize(OVERLAY, kube_home)
