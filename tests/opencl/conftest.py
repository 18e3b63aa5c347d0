"""OpenCL tests build their programs into a private binary cache, not the user's."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True, scope="session")
def opencl_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in ("GRIMC_OPENCL_CACHE", "GRIMC_OPENCL_DEVICE")}
    os.environ["GRIMC_OPENCL_CACHE"] = str(tmp_path_factory.mktemp("clcache"))
    os.environ.pop("GRIMC_OPENCL_DEVICE", None)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
