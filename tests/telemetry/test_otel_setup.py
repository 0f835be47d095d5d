"""``stickyctx.telemetry.setup``: the examples and ``stickyctx demo`` set up the SDK only when the
standard ``OTEL_*`` variables ask for an export, and import nothing from it otherwise.

What the helper installs is global, so every test that installs it runs in a fresh interpreter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from stickyctx import ConfigError
from stickyctx.telemetry.setup import configure_from_env, wants_export
from tests.conftest import KEY_A, ROOT

# Load an example exactly as ``stickyctx demo`` does, serve one chat turn in-process through
# its framework's test client, flush, and report what was imported and installed.
SERVE_EXAMPLE = textwrap.dedent("""
    import json, sys

    from opentelemetry import trace

    from stickyctx.cli.demo import load_example
    from stickyctx.telemetry.setup import configure_from_env

    name = sys.argv[1]
    app = load_example(name)
    if name == "fastapi":
        from starlette.testclient import TestClient
        with TestClient(app) as client:
            reply = client.post("/chat", json={"message": "hello"})
    else:
        reply = app.test_client().post("/chat", json={"message": "hello"})
    assert reply.status_code == 200, reply
    setup = configure_from_env()  # the example's call installed it, or nothing
    if setup is not None:
        setup.tracer_provider.force_flush()
    print(json.dumps({
        "sdk": sorted(m for m in sys.modules if m.startswith("opentelemetry.sdk")),
        "provider": type(trace.get_tracer_provider()).__name__,
        "traces": list(setup.traces) if setup else None,
        "metrics": list(setup.metrics) if setup else None,
    }))
""")


def run_example(name: str, otel_env: dict[str, str]) -> tuple[dict[str, object], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "STICKYCTX_"))}
    env.update({"STICKYCTX_SECRET_KEYS": KEY_A, "STICKYCTX_NODE_ID": "n1",
                "STICKYCTX_COOKIE_SECURE": "0", **otel_env})
    done = subprocess.run([sys.executable, "-c", SERVE_EXAMPLE, name], env=env, cwd=str(ROOT),
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    *console, report = done.stdout.strip().splitlines()
    return json.loads(report), "\n".join(console)


@pytest.mark.parametrize("name", ["fastapi", "flask"])
def test_without_otel_variables_the_examples_import_nothing_from_the_sdk(name: str) -> None:
    report, _ = run_example(name, {})
    assert report == {"sdk": [], "provider": "ProxyTracerProvider", "traces": None,
                      "metrics": None}


@pytest.mark.parametrize("name", ["fastapi", "flask"])
def test_otel_variables_install_the_sdk_and_our_spans_reach_the_exporter(name: str) -> None:
    report, console = run_example(name, {
        "OTEL_SERVICE_NAME": "chat-under-test", "OTEL_TRACES_EXPORTER": "console",
        "OTEL_METRICS_EXPORTER": "none"})
    assert report["provider"] == "TracerProvider"
    assert (report["traces"], report["metrics"]) == (["console"], [])
    assert "opentelemetry.sdk.trace" in report["sdk"]  # type: ignore[operator]
    assert '"name": "stickyctx.affinity"' in console
    assert '"name": "stickyctx.session.lookup.save"' in console
    assert '"service.name": "chat-under-test"' in console


def test_the_default_service_name_is_the_callers() -> None:
    report, console = run_example("flask", {"OTEL_TRACES_EXPORTER": "console",
                                            "OTEL_METRICS_EXPORTER": "none"})
    assert report["traces"] == ["console"]
    assert '"service.name": "stickyctx-example"' in console


@pytest.mark.parametrize(("env", "wanted"), [
    pytest.param({}, False, id="nothing-set"),
    pytest.param({"OTEL_RESOURCE_ATTRIBUTES": "a=b"}, False, id="resource-only"),
    pytest.param({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, True, id="endpoint"),
    pytest.param({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://h/v1/traces"}, True,
                 id="traces-endpoint"),
    pytest.param({"OTEL_TRACES_EXPORTER": "otlp"}, True, id="traces-exporter"),
    pytest.param({"OTEL_METRICS_EXPORTER": "console"}, True, id="metrics-exporter"),
    pytest.param({"OTEL_SERVICE_NAME": "chat"}, True, id="service-name"),
    pytest.param({"OTEL_SERVICE_NAME": "chat", "OTEL_SDK_DISABLED": "true"}, False,
                 id="sdk-disabled"),
    pytest.param({"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none"}, False,
                 id="both-none"),
    pytest.param({"OTEL_TRACES_EXPORTER": "none"}, True, id="metrics-still-otlp"),
    pytest.param({"OTEL_EXPORTER_OTLP_ENDPOINT": " "}, False, id="blank"),
    pytest.param({"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none",
                  "OTEL_LOGS_EXPORTER": "console"}, True, id="logs-only"),
    pytest.param({"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none",
                  "OTEL_LOGS_EXPORTER": "none"}, False, id="all-none"),
    pytest.param({"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none",
                  "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "http://h/v1/logs"}, True,
                 id="logs-endpoint"),
])
def test_which_variables_ask_for_an_export(env: dict[str, str], wanted: bool) -> None:
    assert wants_export(env) is wanted


@pytest.mark.parametrize(("env", "variable"), [
    pytest.param({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER", id="exporter"),
    pytest.param({"OTEL_METRICS_EXPORTER": "otlp,prometheus"}, "OTEL_METRICS_EXPORTER",
                 id="one-of-several"),
    pytest.param({"OTEL_SERVICE_NAME": "x", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
                 "OTEL_EXPORTER_OTLP_PROTOCOL", id="protocol"),
    pytest.param({"OTEL_SERVICE_NAME": "x", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "udp"},
                 "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", id="traces-protocol"),
    pytest.param({"OTEL_LOGS_EXPORTER": "syslog"}, "OTEL_LOGS_EXPORTER", id="logs-exporter"),
    pytest.param({"OTEL_LOGS_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL": "udp"},
                 "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", id="logs-protocol"),
])
def test_a_value_it_cannot_honour_is_a_config_error_naming_the_variable(
    env: dict[str, str], variable: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        configure_from_env()  # raises before anything is installed
    assert caught.value.variable == variable
