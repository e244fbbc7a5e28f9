"""The OpenAPI document: valid OpenAPI 3.1, and every schema property described (with its unit,
range or enum values where it has them)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis

from gql.openapi import openapi_document
from scoring.model import PHASES


def properties(node: Any, path: str = "#") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every (path, property schema) under ``node``, at any depth (nested objects too)."""
    if isinstance(node, dict):
        props = node.get("properties")
        if isinstance(props, dict):
            for name, prop in props.items():
                yield f"{path}/properties/{name}", prop
        for key, value in node.items():
            yield from properties(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from properties(value, f"{path}/{i}")


def test_the_document_is_valid_openapi_3_1() -> None:
    document = openapi_document()
    assert document["openapi"] == "3.1.0"
    schemathesis.openapi.from_dict(document).validate()  # the OpenAPI 3.1 meta-schema
    broken = {**document, "paths": {"/x": {"get": {"responses": {"200": {"content": 7}}}}}}
    with pytest.raises(Exception, match=r"content|7"):  # the check can fail
        schemathesis.openapi.from_dict(broken).validate()


def test_every_schema_property_has_a_description() -> None:
    found = list(properties(openapi_document()["components"]))
    assert len(found) > 60  # coins, signal, meta, errors, the track record, nested objects
    missing = [path for path, prop in found if not str(prop.get("description", "")).strip()]
    assert missing == []


def test_units_and_enum_values_are_stated() -> None:
    coin = openapi_document()["components"]["schemas"]["Coin"]["properties"]
    assert "per 8 hours, as a decimal" in coin["avg_funding_72h"]["description"]
    assert "-0.012 %" in coin["avg_funding_72h"]["description"]
    assert "in percent" in coin["price_change_24h"]["description"]
    assert "percentage points" in coin["top10_holders_pct_change"]["description"]
    assert coin["manipulation_phase"]["enum"] == list(PHASES)
    for phase in PHASES:
        assert phase in coin["manipulation_phase"]["description"]
    for name in ("funding_magnitude", "market_confirmation", "coordination_risk"):
        assert "from 0 to 1" in coin[name]["description"]
