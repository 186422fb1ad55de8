"""The drift study's shipped data: drifting conversations in ≥ 4 domains, the multiple-choice set
(≥ 100 items, arithmetic re-checked here), neutral answers, and the loaders' errors."""

import ast
import json
import operator

import pytest

from workbench.errors import InputFormatError
from workbench.stats import nested_bootstrap_difference, nested_bootstrap_mean
from vectors.capability import load_choice_items, load_neutral_answers
from vectors.drift.transcripts import load_transcript, shipped_drift_transcripts

_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def _evaluate(expression: str) -> float:
    """Arithmetic of + − × ÷ on integers only (no eval)."""
    def walk(node):
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return node.value
        raise ValueError(f"unsupported expression {expression!r}")
    return walk(ast.parse(expression, mode="eval").body)


def test_shipped_drift_set_covers_five_domains():
    transcripts = [load_transcript(p) for p in shipped_drift_transcripts()]
    domains = {t.metadata["domain"] for t in transcripts}
    assert {"coding", "writing", "therapy", "philosophy", "spirituality"} <= domains
    for t in transcripts:
        assert len(t.user_turns) >= 8 and t.metadata["persona"]


def test_choice_set_has_100_items_and_correct_arithmetic():
    items = load_choice_items()
    assert len(items) >= 100 and {i.kind for i in items} == {"fact", "arithmetic", "reading"}
    arithmetic = [i for i in items if i.kind == "arithmetic"]
    assert len(arithmetic) >= 30
    for item in arithmetic:
        value = _evaluate(item.expression)
        assert value == int(value), item.id
        assert item.choices[item.answer] == str(int(value)), item.id
        assert sum(c == str(int(value)) for c in item.choices) == 1, item.id
        shown = item.expression.replace("*", "×").replace("/", "÷")
        assert shown in item.question, item.id
    assert all(i.passage for i in items if i.kind == "reading")
    assert len(load_neutral_answers()) >= 20


@pytest.mark.parametrize("line, message", [
    ({"id": "a", "kind": "fact", "question": "Q?", "choices": ["x", "y"], "answer": 2}, "line 1: field 'answer'"),
    ({"id": "a", "kind": "fact", "question": "Q?", "choices": ["x"], "answer": 0}, "line 1: field 'choices'"),
    ({"id": "a", "kind": "poem", "question": "Q?", "choices": ["x", "y"], "answer": 0}, "line 1: field 'kind'"),
    ({"id": "a", "kind": "fact", "question": "", "choices": ["x", "y"], "answer": 0}, "line 1: field 'question'"),
    ({"id": "a", "kind": "fact", "question": "Q?", "choices": ["x", "x"], "answer": 0}, "duplicates"),
])
def test_choice_loader_names_file_line_and_field(tmp_path, line, message):
    path = tmp_path / "mc.jsonl"
    path.write_text(json.dumps(line) + "\n")
    with pytest.raises(InputFormatError, match=message) as error:
        load_choice_items(path)
    assert str(path) in str(error.value)


def test_choice_loader_rejects_bad_json_and_repeated_ids(tmp_path):
    good = {"id": "a", "kind": "fact", "question": "Q?", "choices": ["x", "y"], "answer": 0}
    path = tmp_path / "mc.jsonl"
    path.write_text(json.dumps(good) + "\n{not json\n")
    with pytest.raises(InputFormatError, match="line 2: invalid JSON"):
        load_choice_items(path)
    path.write_text(json.dumps(good) + "\n" + json.dumps(good) + "\n")
    with pytest.raises(InputFormatError, match="line 2: field 'id'"):
        load_choice_items(path)
    neutral = tmp_path / "n.jsonl"
    neutral.write_text(json.dumps({"question": "Q"}) + "\n")
    with pytest.raises(InputFormatError, match="line 1: field 'answer'"):
        load_neutral_answers(neutral)


def test_nested_bootstrap_covers_the_mean_and_detects_a_shift():
    groups = [[1.0, 2.0, 3.0], [2.0, 3.0, 4.0], [0.0, 1.0, 2.0], [1.5, 2.5, 3.5]]
    interval = nested_bootstrap_mean(groups)
    assert interval.estimate == pytest.approx(2.125) and interval.n == 12
    assert interval.low < interval.estimate < interval.high
    shifted = [[v + 5 for v in g] for g in groups]
    difference = nested_bootstrap_difference(shifted, groups)
    assert difference.estimate == pytest.approx(5) and difference.excludes_zero()
    assert not nested_bootstrap_difference(groups, groups).excludes_zero()
