"""Shared fixtures: the shipped model is loaded once per test run (about 20 s on 2 CPU cores)."""

import warnings

import pytest
import torch

warnings.filterwarnings("ignore", category=DeprecationWarning)
torch.manual_seed(0)


@pytest.fixture(scope="session")
def smollm2_hf():
    """The shipped SmolLM2 as a plain transformers model and tokenizer (the reference)."""
    from workbench.models import load_smollm2_hf

    return load_smollm2_hf()


@pytest.fixture(scope="session")
def model():
    """The shipped SmolLM2 through the workbench's real loader."""
    from workbench.models import load_model

    return load_model("smollm2-135m-instruct")


@pytest.fixture(scope="session")
def gemma3():
    """Gemma 3 270M (base, from the gemma-offline extra) through the workbench's real loader.

    The first load on a machine dequantizes the GGUF and caches it (workbench.gguf_models)."""
    from workbench.models import load_model

    return load_model("gemma-3-270m")


@pytest.fixture(scope="session")
def gemma3_hf(gemma3):
    """The same Gemma 3 270M as a plain transformers model and tokenizer (the reference)."""
    from workbench.gguf_models import gemma3_270m_source, load_gguf_hf

    return load_gguf_hf(gemma3_270m_source())
