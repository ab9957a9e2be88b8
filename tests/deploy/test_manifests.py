"""The kustomize component and examples: they build, validate against Kubernetes, ship scenarios."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.deploy.support import (
    CHAOS,
    COMPONENT,
    JOBS_COMPONENT,
    MANIFESTS,
    NAMESPACE,
    REFRESH,
    REPO,
    SCENARIOS_CONFIGMAP,
    SEED_JOBS,
    SERVICE_ACCOUNT,
    SUBMITTER,
    Manifest,
    direct_manifests,
    kustomize,
    load_documents,
    pod_templates,
    validate,
)

SCENARIOS = REPO / "scenarios"
COPIES = COMPONENT / "scenarios"


def test_example_overlay_builds_and_validates(overlay_objects: list[Manifest]) -> None:
    """`kubectl kustomize manifests/examples/overlay` yields valid objects, all in nimbusguard."""
    validate(overlay_objects, "examples/overlay")
    kinds = sorted(f"{o['kind']}/{o['metadata']['name']}" for o in overlay_objects)
    assert f"ServiceAccount/{SERVICE_ACCOUNT}" in kinds
    assert f"ConfigMap/{SCENARIOS_CONFIGMAP}" in kinds
    assert f"Role/{SERVICE_ACCOUNT}" in kinds
    assert f"RoleBinding/{SERVICE_ACCOUNT}" in kinds
    assert not [o for o in overlay_objects if o["kind"] == "Job"], (
        "applying the overlay must not start a load test (the seed's default)"
    )
    cronjobs = [o for o in overlay_objects if o["kind"] == "CronJob"]
    assert sorted(c["metadata"]["name"] for c in cronjobs) == sorted(
        f"load-test-{t}" for t in SEED_JOBS
    )
    assert all(c["spec"]["suspend"] is True for c in cronjobs), "a template must not run"
    for obj in overlay_objects:
        assert obj["metadata"]["namespace"] == NAMESPACE
        assert not obj["kind"].startswith("Cluster"), "the component is namespaced only"


@pytest.mark.parametrize("path", direct_manifests(), ids=lambda p: str(p.relative_to(MANIFESTS)))
def test_files_applied_directly_validate(path: Path) -> None:
    """Each file the docs `kubectl apply -f` is valid on its own and targets nimbusguard."""
    objects = load_documents(path)
    validate(objects, str(path.relative_to(REPO)))
    for obj in objects:
        assert obj["metadata"]["namespace"] == NAMESPACE


def test_every_job_enabled_with_chaos_in_another_namespace(tmp_path: Path) -> None:
    """Uncommenting every job-*.yaml and adding the chaos component builds valid objects.

    It also proves the namespace transformer moves the Jobs, CronJobs, the RoleBindings'
    subjects and the ConfigMap together, so an overlay may use a namespace other than nimbusguard.
    """
    copy = tmp_path / "manifests"
    shutil.copytree(MANIFESTS, copy)
    kustomization = copy / "components" / "load-generator-jobs" / "kustomization.yaml"
    text = kustomization.read_text(encoding="utf-8")
    enabled = re.sub(r"^  # - (job-\S+\.yaml)", r"  - \1", text, flags=re.MULTILINE)
    assert enabled.count("- job-") == len(SEED_JOBS), "every job file should be listed, commented"
    kustomization.write_text(enabled, encoding="utf-8")
    overlay = copy / "test-overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        "namespace: load-tests\ncomponents:\n"
        "  - ../components/load-generator\n  - ../components/load-generator-jobs\n"
        "  - ../components/load-generator-chaos\n  - ../components/load-generator-submitter\n",
        encoding="utf-8",
    )
    objects = kustomize(overlay, tmp_path / "home")
    validate(objects, "all jobs + chaos + submitter")
    for kind in ("Job", "CronJob"):
        assert sorted(o["metadata"]["name"] for o in objects if o["kind"] == kind) == sorted(
            f"load-test-{t}" for t in SEED_JOBS
        )
    names = {(o["kind"], o["metadata"]["name"]) for o in objects}
    for obj in objects:
        assert obj["metadata"]["namespace"] == "load-tests"
        for subject in obj.get("subjects", []):
            assert subject["namespace"] == "load-tests"
            assert ("ServiceAccount", subject["name"]) in names
    for job in objects:
        for _, template in pod_templates(job):
            pod = template["spec"]
            assert ("ServiceAccount", pod["serviceAccountName"]) in names
            for volume in pod["volumes"]:
                if "configMap" in volume:
                    assert ("ConfigMap", volume["configMap"]["name"]) in names


def test_overlay_images_reach_every_job_and_cronjob(tmp_path: Path) -> None:
    """The example overlay's `images:` rewrites the image of every container of the Jobs and
    CronJobs of the jobs component (init containers included), and of nothing else."""
    copy = tmp_path / "manifests"
    shutil.copytree(MANIFESTS, copy)
    kustomization = copy / "examples" / "overlay" / "kustomization.yaml"
    text = kustomization.read_text(encoding="utf-8")
    assert "# newName:" in text, "the example overlay should show newName"
    rewritten = re.sub(r"# newName: \S+", "newName: registry.test/team/generator", text)
    rewritten = rewritten.replace("newTag: latest", 'newTag: "9.9"')
    enabled = copy / "components" / "load-generator-jobs" / "kustomization.yaml"
    enabled.write_text(
        re.sub(r"^  # - (job-heavy\.yaml)", r"  - \1", enabled.read_text(), flags=re.MULTILINE),
        encoding="utf-8",
    )
    kustomization.write_text(rewritten, encoding="utf-8")
    objects = kustomize(copy / "examples" / "overlay", tmp_path / "home")
    templates = [t for o in objects for _, t in pod_templates(o)]
    assert {o["kind"] for o in objects if list(pod_templates(o))} == {"Job", "CronJob"}
    assert len(templates) == len(SEED_JOBS) + 1
    for template in templates:
        pod = template["spec"]
        images = {c["image"] for c in [*pod["initContainers"], *pod["containers"]]}
        assert images == {"registry.test/team/generator:9.9"}


def test_configmap_holds_every_scenario_byte_identical(overlay_objects: list[Manifest]) -> None:
    """The built ConfigMap carries every scenarios/*.scn, byte for byte."""
    (configmap,) = [
        o
        for o in overlay_objects
        if o["kind"] == "ConfigMap" and o["metadata"]["name"] == SCENARIOS_CONFIGMAP
    ]
    files = sorted(SCENARIOS.glob("*.scn"))
    assert files
    for path in files:
        assert path.name in configmap["data"], f"{path.name} missing from the ConfigMap"
        assert configmap["data"][path.name].encode("utf-8") == path.read_bytes(), (
            f"{path.name} differs in the ConfigMap; refresh the copies: {REFRESH}"
        )


def test_component_copies_match_the_scenarios_directory() -> None:
    """The component's scenarios/ copies are exactly scenarios/*.scn, and all are generated."""
    originals = {p.name: p.read_bytes() for p in SCENARIOS.glob("*.scn")}
    copies = {p.name: p.read_bytes() for p in COPIES.iterdir()}
    assert sorted(copies) == sorted(originals), f"copies out of date; refresh them: {REFRESH}"
    stale = sorted(name for name in originals if copies[name] != originals[name])
    assert not stale, f"{stale} differ from scenarios/; refresh them: {REFRESH}"
    (kustomization,) = load_documents(COMPONENT / "kustomization.yaml")
    (generator,) = [
        g for g in kustomization["configMapGenerator"] if g["name"] == SCENARIOS_CONFIGMAP
    ]
    assert sorted(generator["files"]) == sorted(f"scenarios/{name}" for name in originals)


def test_components_are_components() -> None:
    """Every load-generator directory is a kustomize Component (kind: Component)."""
    for directory in (COMPONENT, JOBS_COMPONENT, CHAOS, SUBMITTER):
        (kustomization,) = load_documents(directory / "kustomization.yaml")
        assert kustomization["kind"] == "Component"
