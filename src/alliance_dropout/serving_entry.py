"""Model-from-code entry for MLflow: the pyfunc that ``tracking.log_model`` logs."""

import mlflow

from alliance_dropout.serving import DropoutPyfunc

mlflow.models.set_model(DropoutPyfunc())
