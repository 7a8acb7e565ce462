"""The examples in docstrings are run, so the documentation cannot drift from the code."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "suibou.contracts",
    "pipelines.kafka_io",
    "pipelines.ordered",
    "pipelines.gauges",
    "pipelines.alerts",
    "pipelines.job",
    "suibou.infra.kafka",
    "replay_data",
    "suibou.catalogue",
    "suibou.drill",
    "suibou.live",
    "models",
    "alert_api.metrics",
    "alert_api.jobs",
    "alert_api.ingest",
    "alert_api.accounts",
    "replay_data.gateway",
    "replay_data.skill",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted > 0, f"{name} has no examples to run"
