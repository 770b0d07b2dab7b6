"""Predict psychotherapy dropout from session-by-session alliance and symptom trajectories."""

import warnings

# With the .[spark] extra installed, pandera imports pyspark.pandas, which warns on import under
# pandas 3; the Spark engine's answers are checked against the local scorer's in the tests.
warnings.filterwarnings(
    "ignore", message="PySpark does not yet fully support pandas", category=FutureWarning
)

__version__ = "0.1.0"
