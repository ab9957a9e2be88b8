"""Safety rails: the rate cap stated in `plan`, http/https targets only, secrets that never leave
the request they belong to, `kill` only with `--allow-chaos`, and a pre-flight line naming the
cluster context and namespace the run will act on."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from tests.faults.conftest import CONTEXT, KubeApi
from tests.support.cli import assert_no_traceback, assert_outcome, run_cli, write_scenario
from tests.support.http import HttpServer, free_port
from tests.support.otlp import OtlpSink

SIMPLE = """
scenario "simple" {
  request h = GET "/h"
  phase "load" 1s {
    rate 10/s
    send h
  }
}
"""


def test_plan_states_the_default_rate_cap(tmp_path: Path) -> None:
    """`plan` states the per-process cap: 20,000/s by default, or what `--max-rate` says."""
    scenario = write_scenario(tmp_path, SIMPLE)
    table = run_cli("plan", str(scenario))
    assert table.code == 0, table.stderr
    assert "rate cap 20000/s per process (--max-rate)" in table.stdout
    as_json = run_cli("plan", str(scenario), "--json")
    assert json.loads(as_json.stdout)["max_rate"] == 20_000
    raised = run_cli("plan", str(scenario), "--json", "--max-rate", "25000")
    assert json.loads(raised.stdout)["max_rate"] == 25_000
    over = write_scenario(tmp_path, SIMPLE.replace("10/s", "20001/s"), "over.scn")
    refused = run_cli("run", str(over), "--url", f"http://127.0.0.1:{free_port()}")
    assert refused.code == 2
    assert "above the limit of 20000/s per process" in refused.stderr
    assert_no_traceback(refused.stderr)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://127.0.0.1/",
        "file:///etc/passwd",
        "gopher://127.0.0.1:70/",
        "javascript:alert(1)",
        "unix:///var/run/docker.sock",
        "127.0.0.1:8000",
        "http://",
        "http://[::1",
        "http://127.0.0.1:99999/",
        "http://127.0.0.1:8000/?debug=1",
    ],
)
def test_only_http_and_https_targets(server: HttpServer, tmp_path: Path, url: str) -> None:
    """A --url or `target` that is not a usable http(s) base URL: exit 2, nothing sent."""
    scenario = write_scenario(tmp_path, SIMPLE)
    by_option = run_cli("run", str(scenario), "--url", url, "--results", str(tmp_path / "r.json"))
    assert by_option.code == 2, by_option.stderr
    assert "--url " in by_option.stderr
    assert_no_traceback(by_option.stderr)
    in_file = write_scenario(
        tmp_path, SIMPLE.replace("{\n", f'{{\n  target "{url}"\n', 1), "target.scn"
    )
    for command in (["validate"], ["run", "--results", str(tmp_path / "r.json")]):
        finished = run_cli(command[0], str(in_file), *command[1:])
        assert finished.code == 2, finished.stderr
        assert "`target` " in finished.stderr
        assert_no_traceback(finished.stderr)
    assert server.hits == []
    assert not (tmp_path / "r.json").exists()


SECRETS = """
scenario "secrets" {
  settings {
    header "Proxy-Authorization" = "Basic PROXY_SECRET"
  }
  request api = GET "/api" {
    header "Authorization" = env("NIMBUS_FAULTS_TOKEN")
    header "Cookie" = "session=COOKIE_SECRET"
  }
  before {
    expect api succeeds within 5s
  }
  phase "load" 1s {
    rate 10/s
    send api
    expect errors < 1%
  }
  expect p95 < 2s
  cleanup {
    send api
  }
}
"""


def test_secrets_never_leave_their_requests(server: HttpServer, tmp_path: Path) -> None:
    """An env() token and literal credential headers appear in no output, report, results file or
    exported telemetry, while the server receives them intact."""
    token, cookie, proxy = (f"{kind}-{uuid.uuid4().hex}" for kind in ("tok", "ck", "px"))
    text = SECRETS.replace("COOKIE_SECRET", cookie).replace("PROXY_SECRET", proxy)
    scenario = write_scenario(tmp_path, text)
    env = {"NIMBUS_FAULTS_TOKEN": f"Bearer {token}"}
    outputs: dict[str, str] = {}
    for name, args in {
        "validate": ["validate", str(scenario)],
        "plan": ["plan", str(scenario)],
        "plan --json": ["plan", str(scenario), "--json"],
    }.items():
        finished = run_cli(*args, env=env)
        assert finished.code == 0, finished.stderr
        outputs[name] = finished.stdout + finished.stderr

    results, html, junit = tmp_path / "r.json", tmp_path / "r.html", tmp_path / "r.xml"
    sink = OtlpSink().start()
    try:
        finished = run_cli(
            "run",
            str(scenario),
            "--url",
            server.url,
            "--results",
            str(results),
            "--monitor",
            "--html",
            str(html),
            "--junit",
            str(junit),
            env={**env, "OTEL_EXPORTER_OTLP_ENDPOINT": sink.url},
        )
    finally:
        sink.stop()
    document = assert_outcome(finished, results, code=0, verdict="passed")
    outputs["run stdout"] = finished.stdout
    outputs["run stderr"] = finished.stderr
    for path in (results, html, junit):
        outputs[path.name] = path.read_text(encoding="utf-8")
    exported = b"".join(sink.received())
    # An unreachable target: the secrets must not reach error messages either.
    down = run_cli(
        "run",
        str(scenario),
        "--url",
        f"http://127.0.0.1:{free_port()}",
        "--results",
        str(tmp_path / "down.json"),
        env=env,
    )
    assert down.code == 4, down.stderr
    outputs["run (target down)"] = down.stdout + down.stderr
    outputs["down.json"] = (tmp_path / "down.json").read_text(encoding="utf-8")

    for secret in (token, cookie, proxy):
        for name, output in outputs.items():
            assert secret not in output, f"{secret} leaked into {name}"
        assert secret.encode() not in exported, f"{secret} leaked into the exported telemetry"
    assert "***" in outputs["plan --json"]
    assert "***" in document["scenario_source"]
    assert document["trace_id"] is not None
    assert sink.received("/v1/traces")  # telemetry did export: the check above saw real spans
    api_requests = [h.headers for h in server.hits if h.headers.get("Cookie") is not None]
    assert len(api_requests) >= 12  # before, 10 in the phase, cleanup
    for headers in api_requests:
        assert headers["Authorization"] == f"Bearer {token}"
        assert headers["Cookie"] == f"session={cookie}"
        assert headers["Proxy-Authorization"] == f"Basic {proxy}"


def test_credential_values_are_masked_in_syntax_errors(tmp_path: Path) -> None:
    """A syntax error on a line holding a literal Cookie value shows the line with `"***"`."""
    secret = f"ck-{uuid.uuid4().hex}"
    broken = SECRETS.replace("COOKIE_SECRET", secret).replace(
        f'"session={secret}"', f'"session={secret}" oops'
    )
    unterminated = SECRETS.replace('"session=COOKIE_SECRET"', f'"session={secret}')
    for text in (broken, unterminated):
        scenario = write_scenario(tmp_path, text)
        for command in ("validate", "plan", "run"):
            finished = run_cli(command, str(scenario))
            assert finished.code == 2, finished.stderr
            assert 'header "Cookie" = "***"' in finished.stderr
            assert secret not in finished.stdout + finished.stderr
            assert_no_traceback(finished.stderr)


def test_a_target_from_env_is_masked(server: HttpServer, tmp_path: Path) -> None:
    """`target env("...")` is used but shown as `***` in plan, results, reports and errors."""
    scenario = write_scenario(
        tmp_path, SIMPLE.replace("{\n", '{\n  target env("NIMBUS_FAULTS_TARGET")\n', 1)
    )
    results, html = tmp_path / "r.json", tmp_path / "r.html"
    env = {"NIMBUS_FAULTS_TARGET": server.url}
    plan = run_cli("plan", str(scenario), "--json", env=env)
    assert json.loads(plan.stdout)["target"] == "***"
    finished = run_cli(
        "run", str(scenario), "--results", str(results), "--html", str(html), env=env
    )
    document = assert_outcome(finished, results, code=0, verdict="passed")
    assert document["target"] == "***"
    assert len(server.paths("/h")) == 10
    down_url = f"http://127.0.0.1:{free_port()}/secret-path"
    down = run_cli(
        "run", str(scenario), "--results", str(tmp_path / "d.json"),
        env={"NIMBUS_FAULTS_TARGET": down_url},
    )  # fmt: skip
    assert down.code == 4, down.stderr
    bad = run_cli("run", str(scenario), env={"NIMBUS_FAULTS_TARGET": "ftp://secret-host/"})
    assert bad.code == 2, bad.stderr
    assert 'the target (env("NIMBUS_FAULTS_TARGET")) must be an http:// or https:// URL' in (
        bad.stderr
    )
    texts = [
        finished.stdout,
        finished.stderr,
        results.read_text(encoding="utf-8"),
        html.read_text(encoding="utf-8"),
        down.stdout + down.stderr,
        (tmp_path / "d.json").read_text(encoding="utf-8"),
        bad.stdout + bad.stderr,
    ]
    for text in texts:
        assert server.url not in text
        assert "secret-path" not in text
        assert "secret-host" not in text


KILLS = """
scenario "chaos" {
  watch deployment "consumer" namespace "default"
  request h = GET "/h"
  phase "load" 2s {
    rate 5/s
    send h
    at 1s kill 1 pods
  }
}
"""


def test_kill_needs_allow_chaos(server: HttpServer, kube: KubeApi, tmp_path: Path) -> None:
    """A scenario with `kill` exits 2 before any request unless `--allow-chaos` is given."""
    scenario = write_scenario(tmp_path, KILLS)
    results = tmp_path / "r.json"
    kubeconfig = str(kube.kubeconfig(tmp_path))
    args = ["run", str(scenario), "--url", server.url, "--results", str(results)]
    refused = run_cli(*args, "--kubeconfig", kubeconfig)
    assert refused.code == 2
    assert "--allow-chaos" in refused.stderr
    assert_no_traceback(refused.stderr)
    assert server.hits == []
    assert not results.exists()
    allowed = run_cli(*args, "--kubeconfig", kubeconfig, "--allow-chaos")
    document = assert_outcome(allowed, results, code=0, verdict="passed")
    assert [k["count"] for k in document["kills"]] == [1]
    assert document["kills"][0]["pods"] == []  # the emulator runs no pods: nothing to delete


def test_preflight_names_the_context_and_namespace(
    server: HttpServer, kube: KubeApi, tmp_path: Path
) -> None:
    """Before any load, stderr says which Deployment, kubeconfig, context and namespace."""
    scenario = write_scenario(
        tmp_path,
        SIMPLE.replace("{\n", '{\n  watch deployment "consumer" namespace "default"\n', 1).replace(
            "send h\n", "send h\n    expect replicas >= 1 within 1s\n"
        ),
    )
    kubeconfig = kube.kubeconfig(tmp_path)
    results = tmp_path / "r.json"
    finished = run_cli(
        "run",
        str(scenario),
        "--url",
        server.url,
        "--results",
        str(results),
        "--kubeconfig",
        str(kubeconfig),
        "--context",
        CONTEXT,
    )
    assert_outcome(finished, results, code=0, verdict="passed")
    assert replica_source_line(finished.stderr) == (
        f"replica source: deployment default/consumer via kubeconfig {kubeconfig}, "
        f"context {CONTEXT}"
    )
    elsewhere = run_cli(
        "run", str(scenario), "--url", server.url, "--results", str(results),
        "--kubeconfig", str(kubeconfig), "--namespace", "staging",
    )  # fmt: skip
    assert replica_source_line(elsewhere.stderr) == (
        f"replica source: deployment staging/consumer via kubeconfig {kubeconfig}, "
        f"context {CONTEXT}"
    )
    assert elsewhere.code == 4  # no such Deployment in `staging`: pre-flight says so
    assert "staging/consumer not found" in elsewhere.stderr


def replica_source_line(stderr: str) -> str:
    """The pre-flight's `replica source:` line."""
    lines = [line for line in stderr.splitlines() if line.startswith("replica source:")]
    assert len(lines) == 1, stderr
    return lines[0]


def test_a_target_from_env_is_masked_in_spans(server: HttpServer, tmp_path: Path) -> None:
    """`target env("...")` does not reach the exported spans either."""
    scenario = write_scenario(
        tmp_path, SIMPLE.replace("{\n", '{\n  target env("NIMBUS_FAULTS_TARGET")\n', 1)
    )
    sink = OtlpSink().start()
    try:
        finished = run_cli(
            "run",
            str(scenario),
            "--results",
            str(tmp_path / "r.json"),
            env={"NIMBUS_FAULTS_TARGET": server.url, "OTEL_EXPORTER_OTLP_ENDPOINT": sink.url},
        )
    finally:
        sink.stop()
    assert finished.code == 0, finished.stderr
    exported = b"".join(sink.received())
    assert sink.received("/v1/traces")
    port = server.url.rsplit(":", 1)[1]
    assert server.url.encode() not in exported
    assert f"127.0.0.1:{port}".encode() not in exported


HUGE_MEMORY = """
scenario "huge-memory" {
  request work = stress cpu 1 memory 500MB for 60s async
  phase "p" 10s {
    rate 1000/s
    send work
  }
}
"""


def test_a_plan_of_terabytes_in_flight_is_refused_unless_meant(tmp_path: Path) -> None:
    """28.6 TiB of stress memory in flight at peak: `run` refuses it (exit 2, nothing sent)
    above the 64 GiB ceiling, saying how to mean it; `--i-know` or a `memory_in_flight`
    setting at least that large lets it through (here to a target that is down: exit 4)."""
    scenario = write_scenario(tmp_path, HUGE_MEMORY)
    down = f"http://127.0.0.1:{free_port()}"
    refused = run_cli("run", str(scenario), "--url", down)
    assert refused.code == 2
    assert "28.6 TiB of memory in flight" in refused.stderr
    assert "--i-know" in refused.stderr
    assert "memory_in_flight 29297GB" in refused.stderr
    assert_no_traceback(refused.stderr)
    forced = run_cli("run", str(scenario), "--url", down, "--i-know")
    assert forced.code == 4, forced.stderr
    setting = "settings { memory_in_flight 30000GB }\n  request work"
    declared = write_scenario(
        tmp_path, HUGE_MEMORY.replace("request work", setting), "declared.scn"
    )
    meant = run_cli("run", str(declared), "--url", down)
    assert meant.code == 4, meant.stderr
    short = write_scenario(
        tmp_path,
        HUGE_MEMORY.replace("request work", "settings { memory_in_flight 1000GB }\n  request work"),
        "short.scn",
    )
    assert run_cli("run", str(short), "--url", down).code == 2
