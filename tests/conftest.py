import os

import numpy as np
import pytest


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Every test session compiles into its own cache directory."""
    d = tmp_path_factory.mktemp("tessera-cache")
    old = os.environ.get("TESSERA_CACHE_DIR")
    os.environ["TESSERA_CACHE_DIR"] = str(d)
    yield d
    if old is None:
        os.environ.pop("TESSERA_CACHE_DIR", None)
    else:
        os.environ["TESSERA_CACHE_DIR"] = old


@pytest.fixture(params=["cpu", "sm_80", "sm_90a"])
def target(request, monkeypatch):
    """Each backend a test runs on: the CPU, and the PTX emulator on sm_80 and sm_90a (a test parametrized
    with its own `target` values overrides this)."""
    if request.param != "cpu":
        monkeypatch.setenv("TESSERA_BACKEND", "emu")
        monkeypatch.setenv("TESSERA_EMU_ARCH", request.param)
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def pytest_collection_modifyitems(config, items):
    try:
        import cupy  # noqa: F401
        has_gpu = cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # noqa: BLE001 - any failure means no usable GPU
        has_gpu = False
    if has_gpu:
        return
    skip = pytest.mark.skip(reason="needs an NVIDIA GPU with CuPy")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
