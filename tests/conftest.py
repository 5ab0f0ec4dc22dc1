import os
import sys
import tempfile
from pathlib import Path

import pytest

# tests/reference.py and other helpers import by bare name.
sys.path.insert(0, str(Path(__file__).parent))

# Under pytest-xdist every worker builds simulators in a folder of its own: two workers
# never write one build folder at once.
if os.environ.get("PYTEST_XDIST_WORKER"):
    base = os.environ.get("FIRSTSPIKE_BUILD", str(Path(tempfile.gettempdir()) / "firstspike-build"))
    os.environ["FIRSTSPIKE_BUILD"] = f"{base}-{os.environ['PYTEST_XDIST_WORKER']}"

# Hypothesis: the same examples on every run (a failure in CI reproduces here), no
# per-example deadline (a loaded 2-core machine is slow, not wrong). `--hypothesis-profile
# explore` searches afresh with more examples.
from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("explore", deadline=None, max_examples=2000)
settings.load_profile("ci")


def pytest_configure(config):
    """The fast loop (slow tests deselected) draws fewer examples in the simulated fuzz
    tests (tests/fuzzing.py); the full suite, what CI runs, draws them all."""
    if "not slow" in (config.option.markexpr or ""):
        os.environ["FIRSTSPIKE_FAST_LOOP"] = "1"


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    """A small network for the digits' 64 inputs, saved (a board build's report runs the
    digits through it)."""
    import numpy as np

    from firstspike.sw import CoreParams, LatencyEncoding, Model, save_model
    from firstspike.sw.synthetic import random_model
    network = random_model(CoreParams((64, 9, 4), time_steps=16), np.random.default_rng(2))
    model = Model(network.params, network.layers, LatencyEncoding(16.0))  # digits pixels are 0 ... 16
    path = tmp_path_factory.mktemp("model") / "small.npz"
    save_model(model, path)
    return path
