"""Everything that talks to MLflow: store set-up, lineage, artifacts, model, registry.

Health data stays out: what is logged is config, aggregate counts, metrics, plots, the model
and a synthetic input example. No client ids, no raw rows.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata as md
import os
import re
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import mlflow
import pandas as pd
from matplotlib.figure import Figure
from mlflow import MlflowClient
from mlflow.data.pandas_dataset import from_pandas

from alliance_dropout.config import REPO_ROOT
from alliance_dropout.errors import TrackingStoreError, UntrustedModelError

PINNED_PACKAGES = (
    "scikit-learn",
    "lightgbm",
    "mlflow",
    "pandera",
    "hydra-core",
    "omegaconf",
    "pandas",
    "numpy",
    "pyarrow",
    "scipy",
    "joblib",
    "matplotlib",
)


def resolve_uri(uri: str, mlruns_dir: str | os.PathLike[str]) -> str:
    """The configured URI, or the local SQLite store ``<mlruns_dir>/mlflow.db`` when empty."""
    if uri:
        return uri
    return f"sqlite:///{Path(mlruns_dir).resolve() / 'mlflow.db'}"


@contextlib.contextmanager
def _store_lock(mlruns_dir: Path) -> Iterator[None]:
    """Serialise store creation: parallel jobs on a fresh SQLite store race on its migration."""
    mlruns_dir.mkdir(parents=True, exist_ok=True)
    with open(mlruns_dir / ".store.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# Records that the experiment is classic model development. The MLflow 3.17 UI does not pick
# its view from this tag: it opens every experiment in the view of its own "GenAI | Model
# training" switch (kept per browser; GenAI on a fresh one), unless the address says
# ?workflowType=machine_learning, so the links we print carry that (ui_runs_url). Its code
# reads the tag only where that switch is turned off.
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
# where `make ui` serves the local store
LOCAL_UI = "http://127.0.0.1:5000"


def ui_runs_url(ui_base: str, experiment_id: str) -> str:
    """The MLflow UI's list of an experiment's training runs (not its GenAI view)."""
    return f"{ui_base.rstrip('/')}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"


def training_runs_link(tracking_uri: str, run_id: str) -> str | None:
    """:func:`ui_runs_url` for the run's experiment: on ``make ui`` for an SQLite store, on the
    server itself for an http(s) one; None for another store (no UI address known)."""
    if tracking_uri.startswith("sqlite:"):
        base = LOCAL_UI
    elif tracking_uri.startswith(("http://", "https://")):
        base = tracking_uri
    else:
        return None
    experiment_id = MlflowClient(tracking_uri=tracking_uri).get_run(run_id).info.experiment_id
    return ui_runs_url(base, experiment_id)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def _status_in(message: str) -> int | None:
    found = re.search(r"error code (\d{3})", message)
    return int(found.group(1)) if found else None


def _remote(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


def _http_status(exc: Exception) -> int | None:
    """A REST error carries its status; MLflow's HTTP client words a 401 as "error code 401"."""
    if isinstance(exc, mlflow.exceptions.RestException):
        return int(exc.get_http_status_code())
    return _status_in(str(exc))


def _store_error(uri: str, exc: Exception) -> TrackingStoreError:
    """One line naming the URI; 401 and 403 named as such."""
    code = _http_status(exc)
    if code == 401:
        return TrackingStoreError(
            f"tracking store {uri}: HTTP 401, not logged in "
            "(check MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD)"
        )
    if code == 403:
        return TrackingStoreError(
            f"tracking store {uri}: HTTP 403, permission denied to MLFLOW_TRACKING_USERNAME "
            "(training needs EDIT on the experiment, scoring READ; ask the server's admin)"
        )
    return TrackingStoreError(f"tracking store {uri}: {_first_line(exc)}")


def check_store(uri: str) -> None:
    """Fail fast, in one line naming the URI, when the store cannot be used (before any work).

    A server is probed at ``/health`` first (MLflow's client would otherwise retry a refused
    connection for minutes), then asked for one experiment, which surfaces 401 and 403.
    """
    if _remote(uri):
        try:
            with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=10):
                pass
        except urllib.error.HTTPError as exc:
            raise TrackingStoreError(f"tracking store {uri}: HTTP {exc.code} at /health") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise TrackingStoreError(f"tracking store {uri}: unreachable ({reason})") from None
    try:
        MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    except mlflow.exceptions.MlflowException as exc:
        raise _store_error(uri, exc) from None
    except Exception as exc:  # e.g. a database URI whose driver or file cannot be opened
        raise TrackingStoreError(f"tracking store {uri}: {_first_line(exc)}") from None


# basic-auth grants its creator's permission on a new experiment just after creating it: a
# worker that starts together with the creator may be refused (403) for that moment
_GRANT_WAIT_S = 5.0


def _open_experiment(name: str, artifacts: str | None, remote: bool, writes: bool) -> None:
    """Create the experiment unless it exists, and make it the active one.

    On a server another worker may create it at the same moment (no lock spans machines): its
    experiment is as good as ours. There, for a stage that ``writes``, a tag write is also the
    permission check, so a user who may only read (a reviewer) is refused with 403 now, not
    after the training.
    """
    probe = remote and writes
    deadline = time.monotonic() + (_GRANT_WAIT_S if probe else 0.0)
    while True:
        try:
            if mlflow.get_experiment_by_name(name) is None:
                try:
                    mlflow.create_experiment(
                        name, artifact_location=artifacts, tags=EXPERIMENT_KIND
                    )
                except mlflow.exceptions.MlflowException as exc:
                    if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                        raise
            active = mlflow.set_experiment(name)
            missing_kind = active.tags.get("mlflow.experimentKind") is None
            if probe or (missing_kind and not remote):
                mlflow.set_experiment_tags(EXPERIMENT_KIND)
            return
        except mlflow.exceptions.MlflowException as exc:
            if _http_status(exc) != 403 or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def setup_tracking(
    uri: str, experiment: str, mlruns_dir: str | os.PathLike[str], writes: bool = True
) -> str:
    """Point MLflow at the store, create it and the experiment once (under a lock).

    Any problem with the store is a one-line TrackingStoreError naming the URI; on a server, a
    stage that ``writes`` (training) also fails so when the user may only read (HTTP 403).
    """
    mlruns = Path(mlruns_dir)
    resolved = resolve_uri(uri, mlruns)
    local = resolved.startswith("sqlite:///")
    try:
        lock = _store_lock(mlruns) if local else contextlib.nullcontext()
        with lock:
            check_store(resolved)
            mlflow.set_tracking_uri(resolved)
            mlflow.set_registry_uri(resolved)
            artifacts = (mlruns / "artifacts").resolve().as_uri() if local else None
            _open_experiment(experiment, artifacts, _remote(resolved), writes)
    except OSError as exc:
        raise TrackingStoreError(f"tracking store {resolved}: {exc.strerror or exc}") from None
    except mlflow.exceptions.MlflowException as exc:
        raise _store_error(resolved, exc) from None
    return resolved


def file_sha256(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PINNED_PACKAGES:
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            continue
    return versions


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten(v, f"{key}."))
        else:
            out[key] = v
    return out


def _param_text(value: Any) -> str:
    # floats with the digits that matter (not 16 decimals); MLflow caps a value at 6000 chars,
    # and long lists are in the logged config file anyway
    text = f"{value:.6g}" if isinstance(value, float) else str(value)
    return text[:500]


def log_params(params: dict[str, Any]) -> None:
    mlflow.log_params({k: _param_text(v) for k, v in flatten(params).items()})


# Metric names in the store carry a group prefix, so the UI groups them (and the headline
# comes first) instead of listing 160 names alphabetically with data counts before test AUC.
HEADLINE = {
    # the headline: ROC AUC per landmark, averaged (the pooled one flatters: the session
    # number alone ranks the pooled rows)
    "test_model_roc_auc_landmark_mean": "roc_auc_landmark_mean",
    "test_model_roc_auc": "roc_auc_pooled",
    "test_model_pr_auc": "pr_auc",
    "test_model_brier": "brier",
    "test_model_calibration_slope": "calibration_slope",
    "test_model_calibration_intercept": "calibration_intercept",
}
_GROUPS = (
    ("test_landmark_", "landmark/"),
    ("test_gain_vs_", "gate/gain_vs_"),
    ("test_", "test/"),
    ("data_", "data/"),
    ("cv_", "cv/"),
    ("tune_", "cv/tune_"),
    ("subgroup_", "subgroup/"),
)


def metric_name(key: str) -> str:
    """The store's name of a metric: ``test_model_roc_auc`` -> ``test/model_roc_auc``."""
    for prefix, group in _GROUPS:
        if key.startswith(prefix):
            return group + key.removeprefix(prefix)
    return f"run/{key}"


def log_metrics(metrics: dict[str, float]) -> None:
    """Log under grouped names; the model's headline figures also under ``a_headline/``."""
    named = {metric_name(k): v for k, v in metrics.items()}
    for key, short in HEADLINE.items():
        for suffix in ("", "_ci_low", "_ci_high"):
            if key + suffix in metrics:
                named[f"a_headline/{short}{suffix}"] = metrics[key + suffix]
    mlflow.log_metrics(named)


def log_text(text: str, artifact_file: str) -> None:
    mlflow.log_text(text, artifact_file)


def log_dict(obj: dict[str, Any], artifact_file: str) -> None:
    mlflow.log_dict(obj, artifact_file)


def set_tags(tags: dict[str, Any]) -> None:
    mlflow.set_tags({k: str(v) for k, v in tags.items()})


@contextlib.contextmanager
def run(
    name: str | None, parent_run_id: str | None = None, tags: dict[str, str] | None = None
) -> Iterator[str]:
    """One MLflow run (a child of ``parent_run_id`` if given); yields its id."""
    with mlflow.start_run(run_name=name, parent_run_id=parent_run_id, tags=tags) as active:
        yield active.info.run_id


SWEEP_TAG = "sweep"


def sweep_parent(experiment_name: str, sweep: str, name: str) -> str:
    """The parent run of a sweep (found by its ``sweep`` tag, created by the first job)."""
    return tagged_parent(experiment_name, SWEEP_TAG, sweep, name)


def tagged_parent(experiment_name: str, tag: str, value: str, name: str) -> str:
    """The parent run tagged ``<tag>=<value>`` (a sweep, a shared study), created by the first
    worker that needs it. Two workers starting together may both create one: the earliest
    created wins, and a worker whose own is not the earliest deletes it."""
    client = MlflowClient()
    experiment = mlflow.get_experiment_by_name(experiment_name)
    assert experiment is not None  # setup_tracking created it
    query = f"tags.{tag} = '{value}' and tags.{tag}_parent = 'true'"

    def parents() -> list[Any]:
        found = client.search_runs([experiment.experiment_id], filter_string=query)
        return sorted(found, key=lambda r: (r.info.start_time, r.info.run_id))

    found = parents()
    if found:
        return str(found[0].info.run_id)
    own = parent_run(experiment_name, tag, value, name)
    winner = parents()[0]
    if winner.info.run_id != own:
        client.delete_run(own)
    return str(winner.info.run_id)


def parent_run(experiment_name: str, tag: str, value: str, name: str) -> str:
    """A new (finished) parent run tagged ``<tag>=<value>`` and ``<tag>_parent=true``."""
    client = MlflowClient()
    experiment = mlflow.get_experiment_by_name(experiment_name)
    assert experiment is not None  # setup_tracking created it
    run = client.create_run(
        experiment.experiment_id, run_name=name, tags={tag: value, f"{tag}_parent": "true"}
    )
    client.set_terminated(run.info.run_id)
    return str(run.info.run_id)


def describe_run(run_id: str, text: str) -> None:
    """The run's description in the UI (markdown)."""
    MlflowClient().set_tag(run_id, "mlflow.note.content", text)


@contextlib.contextmanager
def child_run(name: str, parent_run_id: str | None = None) -> Iterator[str]:
    """A run nested under the active one, or under ``parent_run_id`` (a shared study's)."""
    if parent_run_id is None:
        with mlflow.start_run(run_name=name, nested=True) as active:
            yield active.info.run_id
        return
    client = MlflowClient()
    experiment_id = client.get_run(parent_run_id).info.experiment_id
    child = client.create_run(
        experiment_id, run_name=name, tags={"mlflow.parentRunId": parent_run_id}
    )
    # resumed as the active run (nested under the caller's), so the logging helpers reach it
    with mlflow.start_run(run_id=child.info.run_id, nested=True) as active:
        yield active.info.run_id


@contextlib.contextmanager
def _quiet_known_mlflow_warnings() -> Iterator[None]:
    """Silence two warnings MLflow emits on every run that do not apply here (library notes):
    a local path is 'interpretable in multiple ways' as a dataset source, and the integer-column
    hint for an input example whose signature we declare explicitly."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The specified dataset source can be")
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
        yield


def log_dataset(frame: pd.DataFrame, source: str, name: str, context: str) -> None:
    """Dataset lineage: digest, schema and row counts only (MLflow never stores the rows)."""
    with _quiet_known_mlflow_warnings():
        ds = from_pandas(frame, source=source, name=name)
        mlflow.log_input(ds, context=context)


def log_figure(fig: Figure, artifact_file: str) -> None:
    import matplotlib.pyplot as plt

    mlflow.log_figure(fig, artifact_file)
    plt.close(fig)


def log_table(df: pd.DataFrame, artifact_file: str) -> None:
    mlflow.log_text(df.to_csv(index=False), artifact_file)


def python_requirements() -> list[str]:
    """The logged model's pip requirements: every package it loads, pinned to this version."""
    return [f"{name}=={version}" for name, version in package_versions().items()]


MODEL_FILE = "risk_model.joblib"
# tag (on the run and on each registered version) holding the SHA-256 of the model file
MODEL_DIGEST_TAG = "risk_model.sha256"


@dataclass
class LoggedModel:
    model_uri: str
    sha256: str


def log_model(
    risk_model: Any, name: str, input_example: pd.DataFrame, signature: Any
) -> LoggedModel:
    """Log the fitted model as a pyfunc (models-from-code) that accepts raw session rows.

    The fitted model is a joblib file, and unpickling runs code, so its SHA-256 is recorded
    at log time: as a tag of the run (and, at registration, of the model version: the
    registry's database, not the artifact store) and in the pyfunc's model_config. Loading
    checks the file against it before unpickling (:func:`load_risk_model`).
    """
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / MODEL_FILE
        # joblib and a digest, not skops: the model is our own classes (DropoutRiskModel, the
        # feature transformers) inside sklearn pipelines and calibrators, so skops would load
        # it only with a trusted-type list naming each of our classes, kept in step with the
        # code by hand (a class left off fails to load, one listed too freely is trusted
        # blindly). The digest check guards the same threat, a file changed after logging,
        # for any class without such a list.
        joblib.dump(risk_model, path)
        digest = file_sha256(path)
        entry = Path(__file__).with_name("serving_entry.py")
        with _quiet_known_mlflow_warnings():
            info = mlflow.pyfunc.log_model(
                name=name,
                python_model=str(entry),
                artifacts={"risk_model": str(path)},
                code_paths=[str(Path(__file__).parent)],
                signature=signature,
                input_example=input_example,
                pip_requirements=python_requirements(),
                model_config={MODEL_DIGEST_TAG: digest},
            )
    mlflow.set_tag(MODEL_DIGEST_TAG, digest)
    return LoggedModel(info.model_uri, digest)


def recorded_digest(model_uri: str) -> str | None:
    """The SHA-256 recorded at log time for a ``models:/`` or ``runs:/`` URI (None: unknown)."""
    client = MlflowClient()
    run_id: str | None = None
    if model_uri.startswith("models:/"):
        ref = model_uri.removeprefix("models:/")
        if "@" in ref:
            name, alias = ref.split("@", 1)
            mv = client.get_model_version_by_alias(name, alias)
        elif "/" in ref:
            name, version = ref.split("/", 1)
            mv = client.get_model_version(name, version)
        else:  # a logged model id (m-...)
            run_id = client.get_logged_model(ref).source_run_id
            mv = None
        if mv is not None:
            tagged = (mv.tags or {}).get(MODEL_DIGEST_TAG)
            if tagged:
                return str(tagged)
            run_id = mv.run_id
    elif model_uri.startswith("runs:/"):
        run_id = model_uri.removeprefix("runs:/").split("/", 1)[0]
    if not run_id:
        return None
    return client.get_run(run_id).data.tags.get(MODEL_DIGEST_TAG)


def verified_model_file(path: str | os.PathLike[str], expected: str | None, source: str) -> Path:
    """``path`` if its SHA-256 is the recorded one; else UntrustedModelError (nothing loaded)."""
    if not expected:
        raise UntrustedModelError(
            f"{source}: no SHA-256 recorded for this model at log time; refusing to unpickle "
            "a model file of unknown origin (loading a pickle can run code)"
        )
    actual = file_sha256(path)
    if actual != expected:
        raise UntrustedModelError(
            f"{source}: the model file's SHA-256 ({actual[:12]}...) is not the one recorded in "
            f"the registry at log time ({expected[:12]}...); refusing to load it"
        )
    return Path(path)


def load_risk_model(model_uri: str) -> Any:
    """The fitted DropoutRiskModel of a logged model, verified before it is unpickled.

    Only the model file is downloaded and read (the pyfunc wrapper and its copied code are
    not imported),
    into a temporary folder that is removed afterwards.
    """
    with tempfile.TemporaryDirectory(prefix="alliance-dropout-model-") as tmp:
        path, expected = download_model_file(model_uri, tmp)
        return load_model_file(path, expected, model_uri)


def download_model_file(model_uri: str, dst: str | os.PathLike[str]) -> tuple[Path, str | None]:
    """The model file of a logged model, downloaded into ``dst``, and its recorded SHA-256."""
    expected = recorded_digest(model_uri)
    local = mlflow.artifacts.download_artifacts(
        artifact_uri=f"{model_uri.rstrip('/')}/artifacts/{MODEL_FILE}", dst_path=str(dst)
    )
    return Path(local), expected


def load_model_file(path: str | os.PathLike[str], expected: str | None, source: str) -> Any:
    """Unpickle a model file only if its SHA-256 is ``expected`` (UntrustedModelError else)."""
    return joblib.load(verified_model_file(path, expected, source))


def model_metadata(model_uri: str) -> dict[str, Any]:
    """Name, version, id and test-set metrics (with CIs) of a registered or logged model."""
    client = MlflowClient()
    meta: dict[str, Any] = {
        "model_name": model_uri,
        "model_version": "",
        "model_id": model_uri,
        "test_metrics": {},
    }
    run_id = None
    if model_uri.startswith("models:/") and "@" in model_uri:
        name, alias = model_uri.removeprefix("models:/").split("@", 1)
        mv = client.get_model_version_by_alias(name, alias)
        run_id = mv.run_id or (mv.tags or {}).get("run_id")
        meta.update(
            model_name=name,
            model_version=str(mv.version),
            model_id=f"{name} v{mv.version}",
        )
    elif model_uri.startswith("runs:/"):
        run_id = model_uri.removeprefix("runs:/").split("/", 1)[0]
    if run_id:
        metrics = client.get_run(run_id).data.metrics
        labels = {
            "ROC AUC": "roc_auc",
            "PR AUC": "pr_auc",
            "Brier score": "brier",
            "Calibration slope": "calibration_slope",
            "Calibration intercept": "calibration_intercept",
        }
        for label, key in labels.items():
            k = metric_name(f"test_model_{key}")
            if k in metrics:
                meta["test_metrics"][label] = (
                    metrics[k],
                    metrics.get(f"{k}_ci_low"),
                    metrics.get(f"{k}_ci_high"),
                )
        n = metrics.get(metric_name("test_n_clients"))
        if n:
            meta["test_set_note"] = (
                f"Held-out test set of {int(n)} clients never used in training; 95% CIs by "
                "client-level bootstrap."
            )
        if not meta["model_version"]:
            meta["model_id"] = f"run {run_id[:8]}"
    return meta
