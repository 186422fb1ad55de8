"""Bad inputs: every file in ``tests/bad_inputs/`` is rejected with a message naming the file, the
field at fault and what was expected; pickles never run; property tests on every parser.

Files from other people (vectors, papers' ``.pt`` files, caches, transcripts, trait files) must never
crash the workbench with a stack trace from deep inside torch or json, and must never run code.
Each corpus file is copied to a scratch folder before loading, because some loaders repair files
in place (the cache cuts a torn last line).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save

from workbench import artifacts
from workbench.artifacts import check_vector_shape, load_pt_tensors
from workbench.cache import JsonlCache
from workbench.chat import validate_messages
from workbench.errors import InputFormatError, LayerError, ShapeError, WorkbenchError
from workbench.judge import check_template, parse_role_score, score_from_logprobs
from workbench.layers import check_layer, from_hidden_states_index

from vectors.axis.released import load_capping_config
from vectors.drift.capping import CappingConfig
from vectors.axis.personas import (
    load_assistant_axis_questions, load_assistant_axis_roles, load_persona_file, load_question_file,
)
from vectors.traits.data import BUILTIN_DIR as BUILTIN_TRAITS
from vectors.traits.data import load_trait_files, parse_heldout, parse_trait_file
from vectors.drift.transcripts import load_transcripts

CORPUS = Path(__file__).parents[1] / "bad_inputs"
N_LAYERS, D_MODEL = 30, 576  # the shipped model's shape, which the corpus vectors are checked against


def load_vectors(path: Path) -> Any:
    """The one vector loader, for the shipped model's shape (safetensors and both ``.pt`` conventions)."""
    return artifacts.load_vectors(path, n_layers=N_LAYERS, d_model=D_MODEL)


def load_trait_extract_file(path: Path) -> Any:
    """A trait's extraction file, paired with the built-in evaluation file of the same layout."""
    return load_trait_files(path, BUILTIN_TRAITS / "eval" / "evil.json")


@dataclass(frozen=True)
class BadFile:
    """A corpus file, the public loader that must refuse it, and what the refusal must say."""

    name: str
    loader: Callable[[Path], Any]
    error: type[WorkbenchError]
    says: tuple[str, ...]
    named_file: str | None = None  # the file the message must name when not ``name`` (a sidecar)


BAD_FILES = [
    BadFile("vectors_wrong_d_model.safetensors", load_vectors, ShapeError, ("'vectors'", "(30, 512)", "[30, 576]")),
    BadFile("vectors_wrong_layer_count.safetensors", load_vectors, ShapeError, ("'vectors'", "(31, 576)", "[30, 576]")),
    BadFile("vectors_one_dimensional.safetensors", load_vectors, ShapeError, ("'vectors'", "(576,)", "[30, 576]")),
    BadFile("vectors_nan.safetensors", load_vectors, ShapeError, ("'vectors'", "layers [7]", "expected finite")),
    BadFile("vectors_inf.safetensors", load_vectors, ShapeError, ("'vectors'", "layers [0]", "expected finite")),
    BadFile("vectors_zero_norm.safetensors", load_vectors, ShapeError, ("'vectors'", "zero norm", "non-zero direction")),
    BadFile("vectors_zero_layer.safetensors", load_vectors, ShapeError, ("'vectors'", "layers [12]", "non-zero direction")),
    BadFile("vectors_integer_dtype.safetensors", load_vectors, ShapeError, ("'vectors'", "int32", "floating-point")),
    BadFile("vectors_wrong_tensor_name.safetensors", load_vectors, InputFormatError, ("'vectors'", "'axis'")),
    BadFile("vectors_truncated.safetensors", load_vectors, InputFormatError, ("not a readable safetensors",)),
    BadFile("vectors_not_safetensors.safetensors", load_vectors, InputFormatError, ("not a readable safetensors",)),
    BadFile("vectors_sidecar_invalid_json.safetensors", load_vectors, InputFormatError, ("invalid JSON", "JSON object"),
            "vectors_sidecar_invalid_json.json"),
    BadFile("vectors_sidecar_not_object.safetensors", load_vectors, InputFormatError, ("JSON list", "JSON object"),
            "vectors_sidecar_not_object.json"),
    BadFile("vectors_sidecar_not_utf8.safetensors", load_vectors, InputFormatError, ("utf-8", "JSON object"),
            "vectors_sidecar_not_utf8.json"),
    BadFile("exploit_pickle.pt", load_pt_tensors, InputFormatError, ("refused", "weights_only=True", "references exec, which could run code")),
    BadFile("exploit_torch_zip.pt", load_pt_tensors, InputFormatError, ("refused", "weights_only=True", "references exec, which could run code")),
    BadFile("pt_truncated.pt", load_pt_tensors, InputFormatError, ("refused", "plain tensor file")),
    BadFile("pt_not_a_pickle.pt", load_pt_tensors, InputFormatError, ("refused", "plain tensor file")),
    BadFile("exploit_pickle.pt", load_vectors, InputFormatError, ("refused", "weights_only=True", "references exec, which could run code")),
    BadFile("exploit_torch_zip.pt", load_vectors, InputFormatError, ("refused", "weights_only=True", "references exec, which could run code")),
    BadFile("exploit_torch_zip.pt", load_capping_config, InputFormatError, ("refused", "weights_only=True", "references exec, which could run code")),
    BadFile("pt_wrong_layer_count.pt", load_vectors, ShapeError, ("(32, 576)", "[30, 576]", "[31, 576]", "hidden_states")),
    BadFile("pt_wrong_d_model.pt", load_vectors, ShapeError, ("d_model 512 but the model has 576", "(31, 512)")),
    BadFile("released_vectors_not_a_tensor.pt", load_vectors, InputFormatError, ("expected a tensor", "dict")),
    BadFile("capping_layers_not_integers.safetensors", CappingConfig.load, InputFormatError,
            ("'layers'", "integers ≥ 0"), "capping_layers_not_integers.json"),
    BadFile("capping_shape_mismatch.safetensors", CappingConfig.load, ShapeError,
            ("directions (2, 576)", "3 layers × 2 percentiles")),
    BadFile("trait_missing_instruction.json", load_trait_extract_file, InputFormatError,
            ("'instruction'", "{pos, neg} instruction pairs")),
    BadFile("trait_instruction_not_pairs.json", load_trait_extract_file, InputFormatError,
            ("'instruction[0]'", "object with 'pos' and 'neg'")),
    BadFile("trait_instruction_empty_neg.json", load_trait_extract_file, InputFormatError,
            ("'instruction[0].neg'", "non-empty string")),
    BadFile("trait_eval_prompt_without_placeholders.json", load_trait_extract_file, InputFormatError,
            ("'eval_prompt'", "{question} and {answer}")),
    BadFile("trait_not_an_object.json", load_trait_extract_file, InputFormatError, ("JSON object", "instruction")),
    BadFile("personas_role_without_prompts.json", load_persona_file, InputFormatError,
            ("roles.pirate", "'prompts'", "non-empty list of strings")),
    BadFile("personas_roles_not_object.json", load_persona_file, InputFormatError, ("'roles'", "JSON object")),
    BadFile("questions_missing_heldout.json", load_question_file, InputFormatError,
            ("'heldout'", "non-empty list")),
    BadFile("transcript_missing_conversation.json", load_transcripts, InputFormatError,
            ("'conversation'", "list of {role, content} messages")),
    BadFile("transcript_wrong_role.json", load_transcripts, InputFormatError,
            ("message 1", "'role' is 'bot'", "expected system, user or assistant")),
    BadFile("transcript_non_string_content.json", load_transcripts, InputFormatError,
            ("message 1", "'content' must be a string", "got list")),
    BadFile("transcript_empty_assistant_turn.json", load_transcripts, InputFormatError,
            ("message 3", "empty assistant turn", "expected its text")),
    BadFile("transcript_jsonl_bad_second_line.jsonl", load_transcripts, InputFormatError,
            ("line 2", "'content' must be a string")),
    BadFile("transcript_lone_surrogate.json", load_transcripts, InputFormatError,
            ("message 1", "'content'", "unpaired surrogate", "expected valid Unicode text")),
    BadFile("transcript_deeply_nested.json", load_transcripts, InputFormatError, ("nested too deeply", "expected")),
    BadFile("aa_questions_deeply_nested.jsonl", load_assistant_axis_questions, InputFormatError,
            ("line 2", "invalid JSON")),
    BadFile("cache_middle_line_not_json.jsonl", JsonlCache, InputFormatError, ("line 2", 'string field "key"')),
    BadFile("cache_line_is_list.jsonl", JsonlCache, InputFormatError, ("line 2", 'string field "key"')),
    BadFile("cache_missing_key.jsonl", JsonlCache, InputFormatError, ("line 1", 'string field "key"')),
    BadFile("cache_key_not_string.jsonl", JsonlCache, InputFormatError, ("line 1", 'string field "key"')),
    BadFile("cache_not_utf8.jsonl", JsonlCache, InputFormatError, ("line 1", 'string field "key"')),
    BadFile("cache_deeply_nested.jsonl", JsonlCache, InputFormatError, ("line 1", 'string field "key"')),
    BadFile("cache_binary_garbage.jsonl", JsonlCache, InputFormatError, ("line 1", 'string field "key"')),
]


def scratch_copy(name: str, folder: Path) -> Path:
    """Copy a corpus file (and its JSON sidecar, if any) so loaders that repair files leave ours alone."""
    source = CORPUS / name
    for companion in {source, source.with_suffix(".json")}:
        if companion.is_file():
            shutil.copy(companion, folder / companion.name)
    return folder / name


def test_every_corpus_file_is_covered(record_property):
    """A file added to the corpus without a case here would silently test nothing."""
    covered = {case.name for case in BAD_FILES} | {Path(case.name).with_suffix(".json").name for case in BAD_FILES
                                                   if case.name.endswith(".safetensors")}
    on_disk = {p.name for p in CORPUS.iterdir() if p.suffix != ".py" and p.name != "__pycache__"}
    assert on_disk - covered == {"vectors_layer_fixture.safetensors"}
    record_property("counts", {"files": len(on_disk), "cases": len(BAD_FILES),
                               "loaders": len({case.loader for case in BAD_FILES})})


@pytest.mark.parametrize("case", BAD_FILES, ids=lambda case: f"{case.loader.__name__}-{case.name}")
def test_bad_file_is_rejected_naming_file_field_and_expectation(case: BadFile, tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_PWNED_MARKER", str(tmp_path / "pwned"))
    path = scratch_copy(case.name, tmp_path)
    with pytest.raises(case.error) as raised:
        case.loader(path)
    message = str(raised.value)
    assert str(tmp_path / (case.named_file or case.name)) in message, message
    for part in case.says:
        assert part.lower() in message.lower(), f"{part!r} missing from: {message}"
    assert "\n" not in message.strip() and len(message) < 600, "messages are one readable line"
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("name", ["exploit_pickle.pt", "exploit_torch_zip.pt"])
def test_exploit_files_are_live_so_refusing_them_means_something(name, tmp_path):
    """Unpickled the unsafe way (in a child process) the corpus file does run its payload."""
    marker = tmp_path / "pwned"
    loader = "torch.load(sys.argv[1], weights_only=False)" if "torch" in name else "pickle.load(open(sys.argv[1], 'rb'))"
    subprocess.run(
        [sys.executable, "-c", f"import pickle, sys, torch\ntry:\n    {loader}\nexcept Exception:\n    pass",
         str(CORPUS / name)],
        env={**os.environ, "WORKBENCH_PWNED_MARKER": str(marker)}, check=True, timeout=120,
    )
    assert marker.read_text() == "pwned"


@pytest.mark.parametrize("layer", [30, 31, -1, 100, True, "5", 2.0, None])
def test_layer_out_of_range_names_the_range(layer):
    vectors = load_vectors(CORPUS / "vectors_layer_fixture.safetensors")
    with pytest.raises(LayerError, match=r"layer .*(0\.\.29|integer)"):
        vectors.at(layer)
    with pytest.raises(LayerError, match="layer"):
        check_layer(layer, N_LAYERS, what="--layer")


def test_embedding_row_has_no_layer():
    with pytest.raises(LayerError, match="embedding output"):
        from_hidden_states_index(0)


# ---------------------------------------------------------------- property tests on every parser

PROPERTY = settings(max_examples=120, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _torch_bytes(value: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


VALID_PT = _torch_bytes({"vectors": torch.ones(3, 4)})
VALID_SAFETENSORS = save({"vectors": torch.randn(N_LAYERS, D_MODEL)})


def mutations(base: bytes) -> st.SearchStrategy[bytes]:
    """``base`` with a random slice replaced by random bytes: close enough to valid to go deep."""
    return st.tuples(st.integers(0, len(base)), st.binary(max_size=24), st.integers(0, 64)).map(
        lambda t: base[: t[0]] + t[1] + base[t[0] + t[2]:]
    )


def only_workbench_errors(load: Callable[[], Any]) -> None:
    try:
        load()
    except WorkbenchError:
        pass


@PROPERTY
@given(data=st.one_of(st.binary(max_size=300), mutations(VALID_PT), mutations(_torch_bytes([1, {"a": 2.0}]))))
def test_property_pt_loader(tmp_path, data):
    path = tmp_path / "x.pt"
    path.write_bytes(data)
    only_workbench_errors(lambda: load_pt_tensors(path))


@PROPERTY
@given(data=st.one_of(st.binary(max_size=300), mutations(VALID_SAFETENSORS[:400]), mutations(VALID_SAFETENSORS)),
       sidecar=st.one_of(st.none(), st.binary(max_size=60), st.text(max_size=60).map(str.encode)))
def test_property_vectors_loader(tmp_path, data, sidecar):
    path = tmp_path / "v.safetensors"
    path.write_bytes(data)
    path.with_suffix(".json").unlink(missing_ok=True)
    if sidecar is not None:
        path.with_suffix(".json").write_bytes(sidecar)
    only_workbench_errors(lambda: load_vectors(path))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
cache_lines = st.one_of(
    json_values.map(json.dumps),
    st.fixed_dictionaries({"key": json_values}, optional={"text": json_values}).map(json.dumps),
    st.text(max_size=40),
)


@PROPERTY
@given(data=st.one_of(st.binary(max_size=300),
                      st.lists(cache_lines, max_size=6).map(lambda lines: "\n".join(lines).encode())))
def test_property_cache_loader(tmp_path, data):
    path = tmp_path / "c.jsonl"
    path.write_bytes(data)
    only_workbench_errors(lambda: JsonlCache(path))


message = st.fixed_dictionaries({}, optional={"role": st.sampled_from(["system", "user", "assistant", "bot", 1]) | json_values,
                                              "content": json_values})


@PROPERTY
@given(conversation=st.one_of(json_values, st.lists(message | json_values, max_size=5)))
def test_property_validate_messages(conversation):
    only_workbench_errors(lambda: validate_messages(conversation, "conversation.json"))


@PROPERTY
@given(shape=st.lists(st.integers(0, 5), min_size=0, max_size=3),
       fill=st.sampled_from([0.0, 1.0, float("nan"), float("inf")]),
       dtype=st.sampled_from([torch.float32, torch.bfloat16, torch.int64, torch.bool]))
def test_property_check_vector_shape(shape, fill, dtype):
    tensor = torch.full(shape, fill).to(dtype) if dtype.is_floating_point else torch.zeros(shape, dtype=dtype)
    only_workbench_errors(lambda: check_vector_shape(tensor, 3, 4, "v.safetensors"))


@PROPERTY
@given(layer=json_values, n_layers=st.integers(0, 50))
def test_property_check_layer(layer, n_layers):
    only_workbench_errors(lambda: check_layer(layer, n_layers))


@PROPERTY
@given(text=st.text(max_size=80))
def test_property_judge_answer_parsers(text):
    """Judge answers come from a remote model: parsing them never raises at all."""
    assert parse_role_score(text) in (None, 0, 1, 2, 3)
    only_workbench_errors(lambda: check_template(text))


@PROPERTY
@given(logprobs=st.dictionaries(st.sampled_from(["0", "50", " 85", "100", "101", "REFUSAL", "REF"]) | st.text(max_size=6),
                                st.floats(max_value=0.0), max_size=20))
def test_property_judge_logprobs(logprobs):
    """Any top-logprob map the client admits (tokens: strings, logprobs ≤ 0 or -inf) scores in 0–100."""
    score = score_from_logprobs(logprobs)
    assert score.score is None or 0 <= score.score <= 100 + 1e-9


trait_like = st.fixed_dictionaries({}, optional={
    "instruction": st.lists(st.fixed_dictionaries({}, optional={"pos": json_values, "neg": json_values}) | json_values,
                            max_size=3) | json_values,
    "questions": st.lists(json_values, max_size=3) | json_values,
    "eval_prompt": st.sampled_from(["{question} {answer}", "{answer}", "{", "{0}", "{question!r} {answer}"]) | json_values,
})


@PROPERTY
@given(data=trait_like | json_values)
def test_property_trait_file_parser(data):
    only_workbench_errors(lambda: parse_trait_file(data, "trait.json"))


persona_like = st.fixed_dictionaries({}, optional={
    "default": st.lists(json_values, max_size=2) | json_values,
    "roles": st.dictionaries(st.text(max_size=6), st.fixed_dictionaries(
        {}, optional={"prompts": st.lists(json_values, max_size=2) | json_values, "group": json_values,
                      "eval_prompt": json_values}) | json_values, max_size=3) | json_values,
    "extraction": st.lists(st.fixed_dictionaries({}, optional={"id": json_values, "question": json_values}) | json_values,
                           max_size=3) | json_values,
    "heldout": st.lists(st.fixed_dictionaries({}, optional={"id": json_values, "question": json_values}), max_size=2),
})


@PROPERTY
@given(data=st.one_of(persona_like.map(json.dumps), st.text(max_size=40)).map(str.encode) | st.binary(max_size=60))
def test_property_persona_and_question_files(tmp_path, data):
    path = tmp_path / "p.json"
    path.write_bytes(data)
    only_workbench_errors(lambda: load_persona_file(path))
    only_workbench_errors(lambda: load_question_file(path))


@PROPERTY
@given(data=st.one_of(st.binary(max_size=200), mutations(_torch_bytes(torch.randn(N_LAYERS + 1, D_MODEL))[:3000]),
                      st.sampled_from([_torch_bytes(v) for v in (torch.zeros(N_LAYERS + 1, D_MODEL),
                                                                  torch.ones(N_LAYERS, D_MODEL), torch.ones(2),
                                                                  {"a": 1}, [torch.ones(3)], torch.tensor(1.0))])))
def test_property_pt_vectors_and_capping_config(tmp_path, data):
    path = tmp_path / "v.pt"
    path.write_bytes(data)
    only_workbench_errors(lambda: load_vectors(path))
    only_workbench_errors(lambda: artifacts.load_vectors(path))  # no model shape: rank check only
    only_workbench_errors(lambda: load_capping_config(path))


transcript_like = st.fixed_dictionaries({}, optional={
    "conversation": st.lists(message | json_values, max_size=4) | json_values,
    "turns": json_values, "model": json_values, "system_prompt": json_values,
    "steering_config": st.fixed_dictionaries({}, optional={"layers": json_values}) | json_values,
})


@PROPERTY
@given(data=st.one_of(
    transcript_like.map(json.dumps),
    st.lists(transcript_like.map(json.dumps) | st.text(max_size=20), min_size=2, max_size=4).map("\n".join),
    st.lists(message, max_size=4).map(json.dumps),
).map(str.encode) | st.binary(max_size=80))
def test_property_transcript_loader(tmp_path, data):
    path = tmp_path / "t.jsonl"
    path.write_bytes(data)
    only_workbench_errors(lambda: load_transcripts(path))


question_line = st.fixed_dictionaries({}, optional={"id": json_values, "question": json_values}) | json_values


@PROPERTY
@given(lines=st.lists(question_line.map(json.dumps) | st.text(max_size=20), max_size=6))
def test_property_assistant_axis_questions(tmp_path, lines):
    path = tmp_path / "extraction_questions.jsonl"
    path.write_text("\n".join(lines), encoding="utf-8")
    only_workbench_errors(lambda: load_assistant_axis_questions(path))


role_file = st.fixed_dictionaries({}, optional={
    "instruction": st.lists(st.fixed_dictionaries({}, optional={"pos": json_values}) | json_values, max_size=3)
    | json_values,
    "eval_prompt": json_values, "questions": st.lists(json_values, max_size=2) | json_values,
}) | json_values


@PROPERTY
@given(files=st.dictionaries(st.sampled_from(["default", "pirate", "ghost", "x y"]),
                             role_file.map(json.dumps) | st.text(max_size=20), min_size=1, max_size=3))
def test_property_assistant_axis_roles(tmp_path, files):
    folder = tmp_path / "instructions"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    for name, text in files.items():
        (folder / f"{name}.json").write_text(text, encoding="utf-8")
    only_workbench_errors(lambda: load_assistant_axis_roles(folder))


@PROPERTY
@given(data=st.fixed_dictionaries({}, optional={
    "examples": st.lists(st.fixed_dictionaries({}, optional={"question": json_values, "positive": json_values,
                                                             "negative": json_values}) | json_values, max_size=3)
    | json_values,
    "description": json_values}) | json_values)
def test_property_trait_heldout_parser(data):
    only_workbench_errors(lambda: parse_heldout(data, "heldout.json"))


@PROPERTY
@given(meta=st.fixed_dictionaries({}, optional={"layers": st.lists(json_values, max_size=3) | json_values,
                                                "percentiles": st.lists(json_values, max_size=3) | json_values}))
def test_property_capping_config_loader(tmp_path, meta):
    path = tmp_path / "cap.safetensors"
    path.write_bytes(save({"directions": torch.randn(2, 4), "thresholds": torch.zeros(2, 2)}))
    path.with_suffix(".json").write_text(json.dumps(meta), encoding="utf-8")
    only_workbench_errors(lambda: CappingConfig.load(path))
