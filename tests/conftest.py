"""Fixtures and hooks; the shared helpers are in helpers.py."""
import shutil

import pytest
from helpers import BACKENDS, DARKNET_CFG, HAS_CUDA, TEMPORARY_CACHE, WEIGHTS_CACHE


@pytest.fixture(params=BACKENDS)
def backend(request):
    """(backend name, device) for load_network."""
    return request.param


@pytest.fixture
def in_darknet_cfg_dir(monkeypatch):
    """Darknet opens tree= paths from the working directory (the golden yolo9000 case)."""
    monkeypatch.chdir(DARKNET_CFG)


def pytest_collection_modifyitems(config, items):
    if HAS_CUDA:
        return
    skip = pytest.mark.skip(reason="no CUDA device on this machine (torch.cuda.is_available() is False)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


def pytest_sessionfinish(session, exitstatus):
    if TEMPORARY_CACHE:
        shutil.rmtree(WEIGHTS_CACHE, ignore_errors=True)
