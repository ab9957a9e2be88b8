"""The shipped Job and CronJob files are exactly what the Job template gives (`make manifests`)."""

from __future__ import annotations

import shutil
from pathlib import Path

from nimbus_scenarios.kube.shipped import (
    JOBS_COMPONENT,
    main,
    render,
    shipped_files,
    stale_files,
)
from tests.deploy.support import MANIFESTS, load_documents, validate


def test_every_shipped_file_matches_the_template() -> None:
    """No generated file drifts: a hand edit or a template change fails here until regenerated."""
    stale = stale_files(MANIFESTS)
    assert not stale, f"{stale} differ from the Job template; run `make manifests`"


def test_every_job_file_in_the_jobs_component_is_generated() -> None:
    """Nothing hand-written sits beside the generated files (it would escape the drift test)."""
    generated = {f.path for f in shipped_files(MANIFESTS)}
    present = {str(p.relative_to(MANIFESTS)) for p in (MANIFESTS / JOBS_COMPONENT).glob("*.yaml")}
    assert present == {p for p in generated if p.startswith(JOBS_COMPONENT)}
    for name in ("job-indexed.yaml", "job-custom.yaml", "cronjob-nightly.yaml"):
        assert f"examples/{name}" in generated


def test_write_regenerates_an_edited_file_and_the_check_then_passes(tmp_path: Path) -> None:
    """`--write` restores a drifted copy; unchanged files are left alone."""
    copy = tmp_path / "manifests"
    shutil.copytree(MANIFESTS, copy)
    target = copy / JOBS_COMPONENT / "job-heavy.yaml"
    target.write_text(
        target.read_text(encoding="utf-8").replace("backoffLimit: 0", "backoffLimit: 6"),
        encoding="utf-8",
    )
    assert stale_files(copy) == [f"{JOBS_COMPONENT}/job-heavy.yaml"]
    assert main(["--write", str(copy)]) == 0
    assert stale_files(copy) == []
    assert "backoffLimit: 0" in target.read_text(encoding="utf-8")


def test_rendered_files_parse_back_to_the_template_objects() -> None:
    """The YAML text reads back as the very dicts the template built, and they validate."""
    for shipped in shipped_files(MANIFESTS):
        if not shipped.documents:
            continue
        path = MANIFESTS / shipped.path
        assert render(shipped).startswith("# ")
        objects = load_documents(path)
        assert objects == list(shipped.documents)
        validate(objects, shipped.path)
