import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.join(os.path.dirname(REPO_ROOT), "shared", "data")
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import keras  # after TF_CPP_MIN_LOG_LEVEL is set
import pytest


@pytest.fixture(autouse=True)
def seeded_random_state():
    """Every test starts from the same Python, NumPy, TensorFlow and Keras seeds, so
    a network's unseeded initial weights (Keras' initialisers draw from the global
    seed) are the same whichever tests ran before: an outcome cannot move with the
    test order or from one CI run to the next."""
    keras.utils.set_random_seed(0)
