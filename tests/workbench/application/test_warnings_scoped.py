"""Library notices the workbench has accounted for are silenced at their call, and only they.

sae-lens' "This SAE has non-empty model_from_pretrained_kwargs" UserWarning (the workbench loads
models with no weight processing, which is what it asks for) and TransformerLens' "HookedTransformer
is deprecated" DeprecationWarning (the workbench chose HookedTransformer) must not reach a user of
``workbench decompose``; any other warning must.
"""

import json
import os
import subprocess
import sys
import warnings

import torch

from sae_analysis.saes import SHIPPED_DIR, _checked_kwargs, _model_kwargs_accounted_for, load_sae, resolve
from workbench.models import hooked_transformer_chosen


def test_decompose_on_the_shipped_sae_prints_neither_notice(tmp_path):
    torch.save(torch.randn(31, 576, generator=torch.Generator().manual_seed(0)), tmp_path / "evil_response_avg_diff.pt")
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("\n".join((SHIPPED_DIR / "corpus.jsonl").read_text().splitlines()[:4]) + "\n")  # default and role replies
    env = {**os.environ, "PYTHONWARNINGS": "default", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "workbench.cli", "decompose", str(tmp_path / "evil_response_avg_diff.pt"), "--sae",
         "shipped", "--k", "3", "--corpus", str(corpus), "--out", str(tmp_path / "run")],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    for notice in ("model_from_pretrained_kwargs", "HookedTransformer is deprecated", "Moving model to device"):
        assert notice not in done.stderr and notice not in done.stdout
    assert json.loads(done.stdout)["sae"] == "shipped:smollm2-135m-instruct-L18"  # stdout is the JSON alone
    assert "DeprecationWarning" in done.stderr  # other notices (here sae-lens importing transformer_lens.utils) still show


def test_the_silencing_is_scoped_to_one_message():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with hooked_transformer_chosen(), _model_kwargs_accounted_for():
            warnings.warn("HookedTransformer is deprecated and will be removed in 4.0.", DeprecationWarning)
            warnings.warn("\nThis SAE has non-empty model_from_pretrained_kwargs. \nFor optimal performance…", UserWarning)
            warnings.warn("HookedEncoder is deprecated and will be removed in 4.0.", DeprecationWarning)
            warnings.warn("some other UserWarning", UserWarning)
        warnings.warn("HookedTransformer is deprecated and will be removed in 4.0.", DeprecationWarning)
    assert [str(w.message)[:30] for w in caught] == [
        "HookedEncoder is deprecated an", "some other UserWarning", "HookedTransformer is deprecate"]


def test_sae_asking_for_processing_the_workbench_does_not_do_still_warns():
    sae = load_sae("shipped")
    assert sae.cfg.metadata.model_from_pretrained_kwargs == {"center_writing_weights": False}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _checked_kwargs(sae, resolve("shipped"))  # what load_model does: no warning
        sae.cfg.metadata.model_from_pretrained_kwargs = {"center_writing_weights": True}
        _checked_kwargs(sae, resolve("shipped"))
    assert len(caught) == 1 and "center_writing_weights': True" in str(caught[0].message)
