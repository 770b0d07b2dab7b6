"""Create a reviewer on the team tracking server: READ on the experiment and the registered model.

    REVIEWER_PASSWORD=... python scripts/add_reviewer.py USER [--uri URI]
    (or: make add-reviewer USER=...)

Credentials come only from the environment. The admin is MLFLOW_TRACKING_USERNAME /
MLFLOW_TRACKING_PASSWORD, or, when those are unset, ``admin`` with MLFLOW_AUTH_ADMIN_PASSWORD
(the password the server was started with). The reviewer's password is REVIEWER_PASSWORD
(at least 12 characters, the server's policy). An existing user keeps its password, and a
permission it already has on either resource is left as it is. The experiment must exist (one
training run creates it); the model permission is granted by name, so it holds once the model
is registered.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

# importing mlflow.server warns about a Starlette deprecation that is not ours to fix
warnings.filterwarnings("ignore", message=".*starlette.middleware.wsgi is deprecated")

NAME = "alliance-dropout"  # the experiment and the registered model
DEFAULT_URI = os.environ.get("MLFLOW_TRACKING_URI") or "http://127.0.0.1:5050"


def _admin_env() -> None:
    """MLflow's REST client reads MLFLOW_TRACKING_USERNAME/PASSWORD; default them to admin."""
    if os.environ.get("MLFLOW_TRACKING_USERNAME") and os.environ.get("MLFLOW_TRACKING_PASSWORD"):
        return
    password = os.environ.get("MLFLOW_AUTH_ADMIN_PASSWORD")
    if not password:
        sys.exit(
            "add-reviewer: set MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD (an admin) "
            "or MLFLOW_AUTH_ADMIN_PASSWORD"
        )
    os.environ["MLFLOW_TRACKING_USERNAME"] = "admin"
    os.environ["MLFLOW_TRACKING_PASSWORD"] = password


def add_reviewer(uri: str, username: str, password: str, name: str = NAME) -> str:
    """Create ``username`` (if new) with READ on experiment ``name`` and model ``name``.

    Returns "created" or "existing". Raises MlflowException on any refusal by the server.
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    from mlflow.server import get_app_client

    auth = get_app_client("basic-auth", tracking_uri=uri)
    experiment = MlflowClient(tracking_uri=uri).get_experiment_by_name(name)
    if experiment is None:
        raise MlflowException(
            f"experiment {name!r} does not exist on {uri} yet: run the training pipeline once "
            "against the server (tracking=server), then add reviewers"
        )
    try:
        auth.create_user(username=username, password=password)
        status = "created"
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
        status = "existing"
    for resource_type, resource_id in (
        ("experiment", experiment.experiment_id),
        ("registered_model", name),
    ):
        try:
            auth.grant_user_permission(username, resource_type, resource_id, "READ")
        except MlflowException as exc:
            # a grant that already exists is kept as it is (never silently raised or lowered)
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("username")
    parser.add_argument(
        "--uri", default=DEFAULT_URI, help=f"tracking server (default {DEFAULT_URI})"
    )
    args = parser.parse_args(argv)
    password = os.environ.get("REVIEWER_PASSWORD")
    if not password:
        sys.exit("add-reviewer: set REVIEWER_PASSWORD (the new user's password, >= 12 characters)")
    _admin_env()
    from mlflow.exceptions import MlflowException

    try:
        status = add_reviewer(args.uri, args.username, password)
    except MlflowException as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        sys.exit(f"add-reviewer: {args.uri}: {first}")
    print(
        f"reviewer {args.username} ({status}): READ on experiment and model {NAME!r} at {args.uri}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
