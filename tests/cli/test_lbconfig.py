"""``stickyctx lb-config`` and ``stickyctx simulate``.

The HAProxy and nginx configurations are checked by the real binaries (``haproxy -c``,
``nginx -t``); the Envoy one (not run here) is checked as data: valid JSON with a route and a
cluster per node whose cookie match picks exactly that node. ``simulate`` is run in-process:
its rows, its JSON, and the placement targets on small runs. Routing itself is tested end to
end in ``tests/e2e``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from stickyctx.cli import main
from stickyctx.core.ids import new_session_id
from stickyctx.core.nodes import NodeSpec, parse_nodes
from stickyctx.core.tokens import TokenCodec
from stickyctx.tools import simulation
from stickyctx.tools.balancers import LBOptions, envoy
from stickyctx.tools.simulation import SimulationResult

from ..conftest import KEY_A, require_binary
from ..e2e.loadbalancers import nginx_runnable

THREE = "n1=127.0.0.1:18001,n2=127.0.0.1:18002,n3=127.0.0.1:18003"
# Ids with every character a node id may hold besides letters and digits.
ODD = "app-0.web=127.0.0.1:18001,app_1=127.0.0.1:18002,app-2.web_x=[::1]:18003"
NODE_LISTS = [pytest.param(THREE, id="plain-ids"), pytest.param(ODD, id="dotted-ids")]


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """A clean ``STICKYCTX_*`` environment; ``use_nodes`` sets the node list."""
    for name in list(os.environ):
        if name.startswith(("STICKYCTX_", "OPENAI_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("STICKYCTX_SECRET_KEYS", KEY_A)
    return monkeypatch


def use_nodes(env: pytest.MonkeyPatch, nodes: str) -> list[tuple[str, str]]:
    specs = parse_nodes(nodes)
    env.setenv("STICKYCTX_NODES", nodes)
    env.setenv("STICKYCTX_NODE_ID", specs[0].id)
    return [(n.id, n.address or "") for n in specs]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def generate(capsys: pytest.CaptureFixture[str], kind: str, path: Path) -> str:
    status, out, err = run(capsys, "lb-config", kind, "--listen", "127.0.0.1:18000",
                           "-o", str(path))
    assert (status, out, err) == (0, "", "")
    return path.read_text()


def check(argv: list[str], cwd: Path) -> str:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=30,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


# HAProxy ------------------------------------------------------------------------------------


@pytest.mark.parametrize("nodes", NODE_LISTS)
def test_haproxy_accepts_the_generated_config(
    capsys: pytest.CaptureFixture[str], env: pytest.MonkeyPatch, tmp_path: Path, nodes: str
) -> None:
    haproxy = require_binary("haproxy")
    listed = use_nodes(env, nodes)
    text = generate(capsys, "haproxy", tmp_path / "haproxy.cfg")
    assert "Configuration file is valid" in check(
        [haproxy, "-c", "-f", str(tmp_path / "haproxy.cfg")], tmp_path)
    assert "    cookie stickyctx_node" in text
    assert "    option httpchk GET /healthz\n" in text
    for node_id, address in listed:
        assert f"    server {node_id} {address} cookie {node_id} check " in text
        assert f"    use-server {node_id} if {{ req.hdr(x-stickyctx-node) -m str {node_id} }}" \
            in text


# nginx --------------------------------------------------------------------------------------


@pytest.mark.parametrize("nodes", NODE_LISTS)
def test_nginx_accepts_the_generated_config(
    capsys: pytest.CaptureFixture[str], env: pytest.MonkeyPatch, tmp_path: Path, nodes: str
) -> None:
    nginx = require_binary("nginx")
    listed = use_nodes(env, nodes)
    text = generate(capsys, "nginx", tmp_path / "generated.conf")
    (tmp_path / "nginx.conf").write_text(nginx_runnable(text))
    (tmp_path / "tmp").mkdir()
    assert "test is successful" in check(
        [nginx, "-t", "-p", f"{tmp_path}/", "-c", str(tmp_path / "nginx.conf"), "-e", "stderr",
         "-g", "pid nginx.pid;"], tmp_path)
    for node_id, address in listed:
        upstream = "stickyctx_" + re.sub(r"[^A-Za-z0-9_]", "_", node_id)
        assert f"        {node_id} {upstream};" in text  # in both maps
        block = text.split(f"    upstream {upstream} {{\n", 1)[1].split("    }", 1)[0]
        assert block.startswith(f"        server {address} max_fails=1")
        others = [a for i, a in listed if i != node_id]
        assert all(f"        server {a} backup;" in block for a in others)


def test_the_runnable_nginx_config_only_adds_local_paths(
    capsys: pytest.CaptureFixture[str], env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    use_nodes(env, THREE)
    text = generate(capsys, "nginx", tmp_path / "generated.conf")
    runnable = nginx_runnable(text).splitlines()
    added = [line for line in runnable if line not in text.splitlines()]
    assert [line for line in runnable if line not in added] == text.splitlines()
    assert all(re.fullmatch(r"    (# .*|access_log off;|\w+_temp_path tmp/\w+;)", line)
               for line in added), added


# Envoy (not run here: checked as data) -------------------------------------------------------


def test_envoy_config_is_json_with_a_route_and_a_cluster_per_node(
    capsys: pytest.CaptureFixture[str], env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    listed = use_nodes(env, ODD)
    config = json.loads(generate(capsys, "envoy", tmp_path / "envoy.json"))
    listener = config["static_resources"]["listeners"][0]
    assert listener["address"]["socket_address"] == {"address": "127.0.0.1",
                                                     "port_value": 18000}
    manager = listener["filter_chains"][0]["filters"][0]["typed_config"]
    routes = manager["route_config"]["virtual_hosts"][0]["routes"]
    clusters = {c["name"]: c for c in config["static_resources"]["clusters"]}
    for node_id, address in listed:
        name = "stickyctx_" + re.sub(r"[^A-Za-z0-9_]", "_", node_id)
        mine = [r for r in routes if r["route"]["cluster"] == name]
        matches = {h["name"]: h["string_match"] for r in mine for h in r["match"]["headers"]}
        assert matches["x-stickyctx-node"] == {"exact": node_id}
        cookie = re.compile(matches["cookie"]["safe_regex"]["regex"])
        for header, picked in [(f"stickyctx_node={node_id}", True),
                               (f"a=1; stickyctx_node={node_id}; b=2", True),
                               (f"stickyctx_node={node_id}0", False),
                               (f"xstickyctx_node={node_id}", False),
                               ("stickyctx_node=other", False)]:
            assert (cookie.fullmatch(header) is not None) == picked, header
        token = re.compile(matches["x-stickyctx-session"]["safe_regex"]["regex"])
        codec = TokenCodec([KEY_A], max_age=60)
        for owner in {node_id, *(other for other, _ in listed)}:
            signed = codec.sign(new_session_id(), owner, 1_800_000_000)
            # A payload itsdangerous compressed names nobody (spread): see test_token_routes.
            routed = owner == node_id and not signed.startswith(".")
            assert (token.fullmatch(signed) is not None) == routed, (owner, signed)
        endpoints = clusters[name]["load_assignment"]["endpoints"]
        primary = endpoints[0]["lb_endpoints"]
        assert [_address(e) for e in primary] == [address]
        backups = endpoints[1]
        assert backups["priority"] == 1
        assert sorted(_address(e) for e in backups["lb_endpoints"]) == sorted(
            a for i, a in listed if i != node_id)
    fallback = routes[-1]
    assert "headers" not in fallback["match"]
    assert fallback["route"]["cluster"] == "stickyctx_pool"
    assert fallback["route"]["hash_policy"] == [{"cookie": {"name": "stickyctx"}}]
    assert len(routes) == 3 * len(listed) + 1


def _address(endpoint: dict[str, Any]) -> str:
    socket = endpoint["endpoint"]["address"]["socket_address"]
    host = socket["address"]
    return f"[{host}]:{socket['port_value']}" if ":" in host else f"{host}:{socket['port_value']}"


def test_envoy_reads_ipv6_hosts_without_brackets() -> None:
    text = envoy(parse_nodes("a=[::1]:8000,b=127.0.0.1:8001"), LBOptions(listen="[::]:8080"))
    config = json.loads(text)
    hosts = {c["name"]: c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
             ["address"]["socket_address"]["address"]
             for c in config["static_resources"]["clusters"] if c["name"] != "stickyctx_pool"}
    assert hosts == {"stickyctx_a": "::1", "stickyctx_b": "127.0.0.1"}
    listen = config["static_resources"]["listeners"][0]["address"]["socket_address"]
    assert listen == {"address": "::", "port_value": 8080}


# Options and errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "expected", "default"), [
    pytest.param("haproxy", "    cookie route_to ", "cookie stickyctx_node", id="haproxy"),
    pytest.param("nginx", "    map $cookie_route_to $stickyctx_by_cookie {",
                 "$cookie_stickyctx_node", id="nginx"),
    pytest.param("envoy", "route_to=", "stickyctx_node=", id="envoy"),
])
def test_cookie_names_follow_the_settings_and_stdout_is_the_default(
    capsys: pytest.CaptureFixture[str], env: pytest.MonkeyPatch, kind: str, expected: str,
    default: str,
) -> None:
    use_nodes(env, THREE)
    env.setenv("STICKYCTX_ROUTE_COOKIE", "route_to")
    status, out, err = run(capsys, "lb-config", kind)
    assert (status, err) == (0, "")
    assert expected in out
    assert default not in out


@pytest.mark.parametrize(("nodes", "reason"), [
    pytest.param(None, "no node is listed", id="no-nodes"),
    pytest.param("n1,n2=127.0.0.1:8001", "every node needs an address (id=host:port): n1",
                 id="no-address"),
])
@pytest.mark.parametrize("kind", ["haproxy", "nginx", "envoy"])
def test_a_node_list_without_addresses_is_a_configuration_error(
    capsys: pytest.CaptureFixture[str], env: pytest.MonkeyPatch, nodes: str | None, reason: str,
    kind: str,
) -> None:
    env.setenv("STICKYCTX_NODE_ID", "n1")
    if nodes is not None:
        env.setenv("STICKYCTX_NODES", nodes)
    status, out, err = run(capsys, "lb-config", kind)
    assert (status, out) == (2, "")
    assert "STICKYCTX_NODES" in err
    assert reason in err


def test_lb_config_needs_neither_keys_nor_a_node_id(
    capsys: pytest.CaptureFixture[str], env: pytest.MonkeyPatch
) -> None:
    """It runs on a workstation or in CI, not only on a node: only the node list matters."""
    env.delenv("STICKYCTX_SECRET_KEYS")
    env.setenv("STICKYCTX_NODE_ID", "not-listed")
    env.setenv("STICKYCTX_STORE_URL", "redis://127.0.0.1:1/0")  # (a node would need a hash key)
    env.setenv("STICKYCTX_NODES", THREE)
    status, out, err = run(capsys, "lb-config", "haproxy")
    assert (status, err) == (0, "")
    assert "    server n3 127.0.0.1:18003 cookie n3 " in out


@pytest.mark.parametrize(("variable", "value"), [
    pytest.param("STICKYCTX_ROUTE_COOKIE", "route me", id="route-cookie"),
    pytest.param("STICKYCTX_COOKIE_NAME", "stickyctx_node", id="same-names"),
    pytest.param("STICKYCTX_NODES", "n1=127.0.0.1:99999", id="bad-port"),
])
def test_lb_config_checks_what_it_reads_as_a_node_would(
    capsys: pytest.CaptureFixture[str], env: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    use_nodes(env, THREE)
    env.setenv(variable, value)
    status, out, err = run(capsys, "lb-config", "nginx")
    assert (status, out) == (2, "")
    assert "configuration error" in err
    assert ("STICKYCTX_ROUTE_COOKIE" if variable == "STICKYCTX_COOKIE_NAME" else variable) in err


# simulate -------------------------------------------------------------------------------------


def test_simulate_prints_one_line_per_row(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "simulate", "--nodes", "4", "--sessions", "2000")
    assert (status, err) == (0, "")
    lines = out.splitlines()
    labels = ["nodes / sessions / epsilon", "new-session placement max/avg",
              "moved when one node leaves", "only the departed node's sessions moved",
              "survivors max/avg after the failure",
              "survivors that took the failed node's sessions", "moved when one node joins",
              "re-hashing every request would move", "new node's share of the next sessions",
              "placement cost (median)", "affinity check on a hit (median)"]
    assert [line[: len(label)] for line, label in zip(lines, labels, strict=True)] == labels
    assert re.fullmatch(r"nodes / sessions / epsilon +4 / 2000 / 0\.25", lines[0])
    assert re.fullmatch(r"only the departed node's sessions moved +True", lines[3])
    assert re.fullmatch(r"moved when one node joins +0 \(.*\)", lines[6])


def test_simulate_json_parses_and_follows_the_balance_factor(
    capsys: pytest.CaptureFixture[str], env: pytest.MonkeyPatch
) -> None:
    env.setenv("STICKYCTX_BALANCE_FACTOR", "0.5")
    status, out, err = run(capsys, "simulate", "--nodes", "5", "--sessions", "1000", "--json")
    assert (status, err) == (0, "")
    data = json.loads(out)
    assert set(data) == set(SimulationResult.__dataclass_fields__)
    assert (data["nodes"], data["sessions"], data["epsilon"]) == (5, 1000, 0.5)
    assert data["bound"] == 300  # ceil(1.5 * 200)
    assert data["max_over_avg"] * 200 <= data["bound"]


@pytest.mark.parametrize(("nodes", "sessions"), [
    pytest.param(3, 3000, id="3-nodes"),
    pytest.param(8, 8000, id="8-nodes"),
    pytest.param(32, 16000, id="32-nodes"),
])
def test_placement_targets_hold_on_small_runs(
    capsys: pytest.CaptureFixture[str], nodes: int, sessions: int
) -> None:
    status, out, _ = run(capsys, "simulate", "--nodes", str(nodes), "--sessions", str(sessions),
                         "--json")
    assert status == 0
    result = json.loads(out)
    assert result["max_over_avg"] <= 1.05
    assert result["leave_moved"] == result["leave_owned"] > 0  # only the departed node's
    assert result["leave_spread"] == nodes - 1  # spread over every survivor
    assert result["leave_survivor_max_over_avg"] <= 1.05
    assert result["join_moved"] == 0
    # Re-hashing would move about 1/(N+1) of them: what pinning saves.
    assert abs(result["join_rehash_moved"] / sessions - 1 / (nodes + 1)) < 0.03
    assert result["join_new_share"] > 1 / (nodes + 1)  # the empty node takes new sessions


@pytest.mark.parametrize(("argv", "message"), [
    pytest.param(["--nodes", "1", "--sessions", "10"], "need --nodes >= 2", id="one-node"),
    pytest.param(["--nodes", "4", "--sessions", "3"], "--sessions >= --nodes", id="few-sessions"),
    pytest.param(["--nodes", "4", "--sessions", "10", "--epsilon", "0"], "epsilon > 0",
                 id="no-slack"),
])
def test_simulate_rejects_impossible_runs(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    status, out, _ = run(capsys, "simulate", *argv)
    assert status == 2
    assert message in out


def test_simulate_names_a_bad_balance_factor(
    capsys: pytest.CaptureFixture[str], env: pytest.MonkeyPatch
) -> None:
    env.setenv("STICKYCTX_BALANCE_FACTOR", "lots")
    status, _, err = run(capsys, "simulate", "--nodes", "4", "--sessions", "10")
    assert status == 2
    assert "STICKYCTX_BALANCE_FACTOR" in err


def test_simulate_with_a_sample_re_hashes_only_the_sample(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--sample bounds the join's estimates; every session is still placed and decided again."""
    calls: list[bool] = []
    real = simulation.place

    def counting(key: str, nodes: Sequence[NodeSpec], loads: Mapping[str, int] | None = None,
                 epsilon: float = 0.25) -> str:
        calls.append(loads is None)
        return real(key, nodes, loads, epsilon)

    monkeypatch.setattr(simulation, "place", counting)
    status, out, _ = run(capsys, "simulate", "--nodes", "20", "--sessions", "4000",
                         "--sample", "300", "--json")
    assert status == 0
    result = json.loads(out)
    assert calls.count(True) == 300  # the plain re-hash on the join: the sample only
    # Bounded placements: every session, the departed node's on failover, then the next 300
    # (instead of a tenth of the sessions, 400).
    assert calls.count(False) == 4000 + result["leave_owned"] + 300
    assert (result["join_rehash_checked"], result["join_new_sessions"]) == (300, 300)
    assert abs(result["join_rehash_moved"] / 300 - 1 / 21) < 0.04
    assert result["leave_moved"] == result["leave_owned"] > 0
    assert result["join_moved"] == 0
    assert result["place_p90_us"] >= result["place_us"] > 0
    assert result["seconds"] > 0


def test_simulate_says_when_the_join_was_estimated_on_a_sample(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out, _ = run(capsys, "simulate", "--nodes", "10", "--sessions", "2000",
                         "--sample", "150")
    assert status == 0
    line = next(x for x in out.splitlines() if x.startswith("re-hashing every request"))
    assert re.search(r"\(1/\(N\+1\) = 9\.09%\); 150 sessions re-hashed, ±\d+\.\d\d%$", line)
    assert re.search(r"new node's share of the next sessions +\d+\.\d\d% \(of 150\)", out)
    assert len(out.splitlines()) == 11  # the same rows as without --sample


def test_a_sample_as_large_as_the_population_changes_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def figures(*extra: str) -> dict[str, object]:
        status, out, _ = run(capsys, "simulate", "--nodes", "6", "--sessions", "3000",
                             "--json", *extra)
        assert status == 0
        data: dict[str, object] = json.loads(out)
        return {k: v for k, v in data.items() if not k.endswith(("_us", "seconds"))}

    assert figures("--sample", "3000") == figures() == figures("--sample", "99999")


def test_simulate_rejects_an_empty_sample(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "simulate", "--nodes", "4", "--sessions", "10", "--sample", "0")
    assert status == 2
    assert "--sample >= 1" in out


@pytest.mark.slow
def test_placement_holds_at_a_thousand_nodes(capsys: pytest.CaptureFixture[str]) -> None:
    """The node counts of docs/capacity.md: ten sessions a node, the join estimated on a sample."""
    status, out, _ = run(capsys, "simulate", "--nodes", "1000", "--sessions", "10000",
                         "--sample", "2000", "--json")
    assert status == 0
    result = json.loads(out)
    assert round(result["max_over_avg"] * 10) <= result["bound"] == 13
    assert result["leave_moved"] == result["leave_owned"] > 0
    assert result["leave_survivor_max_over_avg"] <= 1.3
    assert result["join_moved"] == 0
    assert abs(result["join_rehash_moved"] / 2000 - 1 / 1001) < 0.004
