"""docs/observability.md matches stickyctx.telemetry exactly: one table row per span, attribute
and metric, with the metrics' instruments, units and buckets."""

from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry.sdk.metrics.export import Gauge, Histogram, Sum

from stickyctx.telemetry import _DURATION_BUCKETS, _TOKEN_BUCKETS, ATTR, METRIC, SPAN
from tests.conftest import ROOT
from tests.telemetry.test_metrics import INSTRUMENTS

DOC = ROOT / "docs" / "observability.md"
INSTRUMENT_NAMES = {Sum: "Counter", Gauge: "ObservableGauge", Histogram: "Histogram"}


def constants(holder: type) -> set[str]:
    return {value for name, value in vars(holder).items() if name.isupper()}


def table(path: Path, first_header: str) -> dict[str, list[str]]:
    """The rows of the table whose first column is headed ``first_header``, by first cell
    (backticks removed)."""
    rows: dict[str, list[str]] = {}
    inside = False
    for line in path.read_text().splitlines():
        if not line.startswith("|"):
            inside = False
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == first_header:
            inside = True
            continue
        if inside and not set(cells[0]) <= set("-: "):
            name = cells[0].strip("`")
            assert name not in rows, f"{name} has two rows"
            rows[name] = cells[1:]
    assert rows, f"no table headed {first_header!r}"
    return rows


def test_the_span_table_lists_every_span() -> None:
    documented = set(table(DOC, "span"))
    expected = (constants(SPAN) - {SPAN.STORE}) | {f"{SPAN.STORE} <operation>"}
    assert documented == expected


def test_the_attribute_table_lists_every_attribute() -> None:
    assert set(table(DOC, "attribute")) == constants(ATTR)


def test_every_attribute_a_span_row_names_is_in_the_attribute_table() -> None:
    attributes = constants(ATTR)
    for name, (_, listed) in table(DOC, "span").items():
        named = {part.split("`")[1] for part in listed.split(", ") if "`" in part}
        assert named <= attributes, name


@pytest.mark.parametrize("metric", sorted(INSTRUMENTS))
def test_the_metric_table_gives_instrument_unit_and_buckets(metric: str) -> None:
    rows = table(DOC, "metric")
    assert set(rows) == constants(METRIC)
    instrument, unit, attributes, buckets, _ = rows[metric]
    data_type, expected_unit = INSTRUMENTS[metric]
    assert instrument == INSTRUMENT_NAMES[data_type]
    assert unit == f"`{expected_unit}`"
    assert "`stickyctx.node.id`" in attributes
    expected_buckets = {METRIC.LOAD_DURATION: _DURATION_BUCKETS,
                        METRIC.SAVE_DURATION: _DURATION_BUCKETS,
                        METRIC.WINDOW_TOKENS: _TOKEN_BUCKETS}.get(metric)
    if expected_buckets is None:
        assert buckets == "—"
    else:
        assert tuple(float(b) for b in buckets.split(", ")) == expected_buckets


def test_the_page_is_in_the_index() -> None:
    assert "(observability.md)" in (ROOT / "docs" / "index.md").read_text()


def test_the_audit_tables_list_every_action_and_field() -> None:
    from stickyctx.telemetry.audit import ACTION, AUDIT, AuditRecord

    assert set(table(DOC, "action")) == constants(ACTION)
    fields = set(table(DOC, "audit field"))
    record = AuditRecord("read", "success", "s", "n1", 0, principal="p", previous_session="q",
                         owner="n2", messages=1, error_type="E")
    assert fields == set(record.attributes())
    assert constants(AUDIT) <= fields
