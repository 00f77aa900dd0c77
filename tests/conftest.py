"""Shared fixtures: device choice (``--device``), seeded generators, tiny images."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--device",
        default="cpu",
        help="device for tensor tests: cpu (default), cuda or mps",
    )


@pytest.fixture(scope="session")
def device(request: pytest.FixtureRequest) -> torch.device:
    name = request.config.getoption("--device")
    if name.startswith("cuda") and not torch.cuda.is_available():
        pytest.skip("CUDA asked for with --device but not available")
    return torch.device(name)


@pytest.fixture
def generator() -> torch.Generator:
    return torch.Generator().manual_seed(1234)


@pytest.fixture(autouse=True)
def _deterministic_global_rng() -> None:
    # Weight initialisation uses the global RNG; fix it so every test is repeatable.
    torch.manual_seed(0)


def shared_data(name: str) -> Path:
    """Path of a folder of ``../shared/data``; skip the test with a reason when absent."""
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"{path} is absent (the developers' shared test data is not on this machine)")
    return path


@pytest.fixture(scope="session", autouse=True)
def _native_kernels_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    # amsnet.native compiles its C kernels into a cache folder once per machine; the suite
    # (and the CLI processes it starts, which inherit the environment) uses its own folder
    # instead of the user's ~/.cache.
    import os

    os.environ.setdefault("AMSNET_CACHE_DIR", str(tmp_path_factory.mktemp("amsnet-cache")))
