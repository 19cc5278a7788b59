"""`proml graph` and `proml report` on the bundled example, on the embedded chain."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from _checks import check_dot, check_json, check_mermaid
from _project import ok, one_error_line, proml

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_whole_history_in_every_format(example: Path) -> None:
    mermaid = check_mermaid(ok(proml(example, "graph")).stdout)
    dot = check_dot(ok(proml(example, "graph", "--format", "dot")).stdout)
    document = check_json(ok(proml(example, "graph", "--format", "json")).stdout)

    versions = [n for n in document["nodes"] if n["type"] == "version"]
    assert [(v["artefact"], v["state"]) for v in versions] == [
        ("train-set", "validated"),
        ("test-set", "validated"),
        ("model", "approved"),
    ]
    runs = [(n["type"], n["name"]) for n in document["nodes"] if n["type"] != "version"]
    # The intern's refused approval is not in the history: the contract refused it.
    assert runs == [
        ("run", "prepare"),
        ("decision", "validate"),
        ("decision", "validate"),
        ("run", "train"),
        ("run", "evaluate"),
        ("decision", "approve"),
    ]
    ids = {n["id"] for n in document["nodes"]}
    assert set(mermaid["nodes"]) == ids
    assert {n.get_name() for n in dot.get_nodes()} - {"node", "edge"} == ids
    labels = {e["label"] for e in document["edges"] if e["relation"] == "transitioned"}
    assert "approve: evaluated → approved" in labels


def test_same_history_same_bytes(example: Path) -> None:
    for fmt in ("mermaid", "dot", "json"):
        first = ok(proml(example, "graph", "--format", fmt)).stdout
        assert ok(proml(example, "graph", "--format", fmt)).stdout == first


def test_upstream_of_the_model_is_its_whole_lineage(example: Path) -> None:
    document = check_json(
        ok(proml(example, "graph", "model", "--upstream", "--format", "json")).stdout
    )
    assert document["direction"] == "upstream"
    assert {n.get("artefact") for n in document["nodes"]} - {None} == {
        "train-set",
        "test-set",
        "model",
    }


def test_downstream_of_the_test_set(example: Path) -> None:
    full = check_json(ok(proml(example, "graph", "--format", "json")).stdout)
    test_set = next(n for n in full["nodes"] if n.get("artefact") == "test-set")
    document = check_json(
        ok(
            proml(
                example, "graph", f"test-set@{test_set['cid']}", "--downstream", "--format", "json"
            )
        ).stdout
    )
    names = {n.get("artefact") or n["name"] for n in document["nodes"]}
    # The model, which the evaluation of the test set moved; not the train set.
    assert names >= {"test-set", "model", "evaluate"}
    assert "train-set" not in names
    assert document["seeds"] == [test_set["id"]]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("graph", "modle"), "unknown artefact 'modle'"),
        (("graph", "model@bafyzzz"), "no version of 'model' matches"),
        (("graph", "--upstream"), "--upstream needs an ARTEFACT"),
        (("graph", "model", "--upstream", "--downstream"), "exclude each other"),
        (("graph", "--format", "svg"), "--format svg"),
    ],
)
def test_bad_input_is_one_line_exit_2(example: Path, args: tuple[str, ...], message: str) -> None:
    result = proml(example, *args)

    assert result.code == 2, str(result)
    assert result.stdout == ""
    assert message in one_error_line(result.stderr)


def test_report_is_one_self_contained_file(example: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = ok(proml(example, "report", "-o", str(out)))
    html = out.read_text(encoding="utf-8")

    assert result.stdout == ""
    assert f"wrote {out}" in result.stderr
    assert "default-src 'none'" in html
    # Nothing that could fetch: no src/href attribute, no url() but data:, no @import.
    assert not re.search(r"\s(src|href|xlink:href|action|srcset)\s*=", html)
    assert not re.search(r"url\((?!#|data:)", html)
    assert "@import" not in html
    assert html.count('class="node version') == 3
    # The same history gives the same page.
    again = tmp_path / "again.html"
    ok(proml(example, "report", "-o", str(again)))
    assert again.read_bytes() == out.read_bytes()
    # And to stdout with -o -.
    assert ok(proml(example, "report", "-o", "-")).stdout == html


def test_report_into_a_missing_directory_is_refused(example: Path, tmp_path: Path) -> None:
    result = proml(example, "report", "-o", str(tmp_path / "nowhere" / "r.html"))

    assert result.code == 2, str(result)
    assert "no such directory" in one_error_line(result.stderr)
