"""pytest configuration for the cohortrec op tests.

* ``devices``: ``["cpu"]`` plus ``"cuda"`` when ``cohortrec.devices()``
  reports it.  Every test that takes a ``device`` argument is parametrized
  over it (so one set of tests runs on every device).
* ``dtype`` / ``index_dtype`` arguments are parametrized over
  float32/float64 and int32/int64.
* hypothesis: profile ``cohortrec`` (40 examples, no deadline) by default;
  ``HYPOTHESIS_PROFILE=stress`` runs 500 examples per test.
* ``rng``: a ``numpy.random.Generator`` seeded from a fixed base seed (shown
  in the pytest header; override with ``COHORTREC_TEST_SEED``) and the
  test's node id, so every test is reproducible on its own.
"""

from __future__ import annotations

import os
import sys
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

sys.path.insert(0, os.path.dirname(__file__))  # for ``import _helpers``

import cohortrec  # noqa: E402

SEED = int(os.environ.get("COHORTREC_TEST_SEED", "20240611"))

devices = ["cpu"] + (["cuda"] if "cuda" in cohortrec.devices() else [])

settings.register_profile(
    "cohortrec",
    deadline=None,
    max_examples=40,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.register_profile("stress", parent=settings.get_profile("cohortrec"),
                          max_examples=500)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "cohortrec"))


def pytest_report_header(config):
    return [f"cohortrec test seed: {SEED} (set COHORTREC_TEST_SEED to change)",
            f"cohortrec test devices: {devices}"]


def pytest_generate_tests(metafunc):
    if "device" in metafunc.fixturenames:
        metafunc.parametrize("device", devices)
    if "dtype" in metafunc.fixturenames:
        metafunc.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
    if "index_dtype" in metafunc.fixturenames:
        metafunc.parametrize("index_dtype", [np.int32, np.int64], ids=["i32", "i64"])


@pytest.fixture
def rng(request) -> np.random.Generator:
    """Generator seeded by (SEED, crc32(test node id))."""
    return np.random.default_rng([SEED, zlib.crc32(request.node.nodeid.encode())])
