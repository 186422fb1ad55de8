"""Shared fixtures: the shipped model is loaded once per test process (about 4 s from the
dequantized cache: 0.3 s of reading, the rest building the hooked model);
and how the suite is spread over pytest-xdist's workers (``addopts`` in pyproject.toml)."""

import os
import warnings

import pytest
import torch

warnings.filterwarnings("ignore", category=DeprecationWarning)
torch.manual_seed(0)

# The modules that take minutes, longest first. xdist hands each worker whole modules (``--dist
# loadscope``: module-scoped fixtures such as the quick demo run once) in this order: started first,
# the long ones leave the short modules to fill the other worker's time, so the workers finish
# together (a long module started last is the run's tail).
LONGEST_FIRST = ("tests/workbench/application/test_demo.py", "tests/test_notebooks.py",
                 "tests/workbench/test_distributed.py", "tests/workbench/application/test_bench.py")


def pytest_configure(config):
    """Under xdist each worker takes its share of the cores (one each on 2 cores): two workers of two
    torch threads each on 2 cores stall each other. The environment passes it on to the processes
    tests start (notebook kernels, the CLI, torchrun ranks)."""
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers:
        threads = str(max(1, (os.cpu_count() or 1) // int(workers)))
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = threads
        torch.set_num_threads(int(threads))


def pytest_collection_modifyitems(config, items):
    """:data:`LONGEST_FIRST` first; the other modules keep their order (the sort is stable)."""
    rank = {path: i for i, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


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
