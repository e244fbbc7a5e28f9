"""docs/methodology.md's worked example, recomputed from the code: the doc cannot drift."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from scoring.config import load_model_config
from scoring.example import example_panels
from scoring.model import SUB_SCORES, score_panels
from scoring.pipeline import coin_documents

DOC = Path(__file__).resolve().parents[2] / "docs" / "methodology.md"


def documented() -> dict[str, float]:
    text = DOC.read_text()
    block = text.split("<!-- worked-example:begin -->")[1].split("<!-- worked-example:end -->")[0]
    rows = re.findall(r"^\| ([a-z0-9_]+) \| (-?[0-9.]+) \|$", block, flags=re.M)
    return {name: float(value) for name, value in rows}


def test_the_worked_example_matches_the_code() -> None:
    config = load_model_config()
    panel, onchain = example_panels()
    out = score_panels(panel, onchain, config)
    f = out.features
    computed = {
        "avg_funding_72h": f.avg_funding_72h[0],
        "funding_recent": f.funding_recent[0],
        "breadth": out.components["breadth"][0],
        "hedge": out.hedge[0],
        "mix": out.components["mix"][0],
        "core": out.core[0],
        "supply": out.supply[0],
        "composite": out.composite[0],
        "score": out.score[0],
        "consecutive_negative_days": f.consecutive_negative_days[0],
        "streak_hours": f.streak_hours[0],
        **{name: out.sub_scores[name][0] for name in SUB_SCORES},
    }
    doc = documented()
    assert len(doc) >= 15
    for name, value in doc.items():
        decimals = len(str(value).split(".")[1]) if "." in str(value) else 0
        tol = max(0.5 * 10 ** -max(decimals, 1), 1e-9) if abs(value) >= 1e-3 else 5e-9
        assert computed[name] == pytest.approx(value, abs=tol), name
    assert out.phase[0] == "active-hedge-pressure"
    assert "Phase: `active-hedge-pressure`." in DOC.read_text()
    doc_row = coin_documents(panel.at, panel, out, {}, config.version)[0]
    assert doc_row["score"] == 8.06
    assert doc_row["signal_start_date"] == "2026-11-18T13:00:00Z"
    assert doc_row["manipulation_phase"] == "active-hedge-pressure"
    assert np.isclose(doc_row["avg_funding_72h"], -0.000095)


def test_the_document_names_the_current_model_version() -> None:
    assert f"`{load_model_config().version}`" in DOC.read_text()
