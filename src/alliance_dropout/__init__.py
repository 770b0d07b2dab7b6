"""Predict psychotherapy dropout from session-by-session alliance and symptom trajectories."""

import os
import warnings

# LightGBM's OpenMP threads spin while they wait for work. When the cores are shared (several
# tuning workers on one machine, other jobs), spinning threads take the CPU from the ones that
# have work: a tree took 15-35x longer under load here. Waiting threads sleep instead. Must be
# set before OpenMP is loaded (the first import of lightgbm or scikit-learn); an explicit
# setting in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# With the .[spark] extra installed, pandera imports pyspark.pandas, which warns on import under
# pandas 3; the Spark engine's answers are checked against the local scorer's in the tests.
warnings.filterwarnings(
    "ignore", message="PySpark does not yet fully support pandas", category=FutureWarning
)

__version__ = "0.1.0"
