"""The registry as an attacker and a careful reviewer try it: privacy, the gate, crafted models.

One small clinic with recognisable client ids is trained once (module fixture) and becomes the
champion; the tests then search everything MLflow holds for those ids, try challengers the
gate must refuse, and load a model file crafted to run code.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from types import SimpleNamespace

import joblib
import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from alliance_dropout import contract as c
from alliance_dropout import io, registry, tracking, training
from alliance_dropout.config import TrackingConfig, to_object
from alliance_dropout.config.simulate import SimulateConfig
from alliance_dropout.errors import ConfigError, UntrustedModelError
from alliance_dropout.modeling.fitting import Examples
from alliance_dropout.serving import DropoutPyfunc
from alliance_dropout.simulate import simulate
from tests.conftest import compose_config

NAME = "alliance-dropout"
QUICK = [
    # the gate's mechanics on a small clinic: the landmark classifier reaches a clear gain over
    # the reference rules with 1,500 episodes, which the hazard model (fitted on 80% of the
    # training clients, recalibrated on the rest) does not always
    "model.framing=landmark",
    "features.landmarks=[2,4,6,8]",
    "evaluation.n_bootstrap=100",
    "evaluation.comparators=[]",
    "split.n_folds=3",
]


def _private_ids(data, prefix: str):
    """The same data with client ids no code or config could contain by chance."""
    mapping = {cid: f"{prefix}{i:05d}ZQ" for i, cid in enumerate(data.outcomes[c.CLIENT_ID])}
    for table in (data.sessions, data.outcomes, data.clients):
        table[c.CLIENT_ID] = table[c.CLIENT_ID].map(mapping)
    return data


def _write(data, root: Path) -> dict[str, Path]:
    return {
        t: io.write_table(getattr(data, t), root / f"{t}.csv")
        for t in ("sessions", "outcomes", "clients")
    }


def _train(root: Path, paths: dict[str, Path], name: str, *overrides: str):
    cfg = compose_config(
        "run",
        [
            f"data.sessions={paths['sessions']}",
            f"data.outcomes={paths['outcomes']}",
            f"data.clients={paths['clients']}",
            f"paths.mlruns_dir={root / 'mlruns'}",
            f"tracking.uri=sqlite:///{root / 'mlruns' / 'mlflow.db'}",
            f"output_dir={root / name}",
            *QUICK,
            *overrides,
        ],
    )
    return training.run(to_object(cfg))


@pytest.fixture(scope="module")
def clinic(tmp_path_factory):
    root = tmp_path_factory.mktemp("registry")
    data = _private_ids(simulate(SimulateConfig(n_clients=1500, n_therapists=40, seed=5)), "PRV")
    paths = _write(data, root / "data")
    champion = _train(root, paths, "champion", "tracking.min_test_events=20")
    assert champion.promotion is not None and champion.promotion.promoted
    return {"root": root, "data": data, "paths": paths, "champion": champion}


def _use_store(uri: str) -> None:
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)


def _champion_version(uri: str) -> str:
    _use_store(uri)
    return str(MlflowClient().get_model_version_by_alias(NAME, registry.CHAMPION).version)


def test_no_client_id_anywhere_mlflow_holds(clinic) -> None:
    """Params, tags, metrics, dataset records (all in the store's database), every artifact of
    the run and of the registered model, and every object inside the loaded model."""
    _use_store(f"sqlite:///{clinic['root'] / 'mlruns' / 'mlflow.db'}")
    ids = clinic["data"].outcomes[c.CLIENT_ID].tolist()
    store = clinic["root"] / "mlruns"
    files = [p for p in store.rglob("*") if p.is_file()]
    assert any(p.name == tracking.MODEL_FILE for p in files)
    assert any(p.name == "mlflow.db" for p in files)
    blobs = {str(p): p.read_bytes() for p in files}
    model = tracking.load_risk_model(f"models:/{NAME}@champion")
    blobs["loaded model, pickled again"] = pickle.dumps(model)
    blobs["loaded model, repr"] = repr(vars(model)).encode()
    for where, blob in blobs.items():
        assert b"PRV0" not in blob, where  # the prefix of every id
        leaked = [i for i in ids[:50] if i.encode() in blob]
        assert not leaked, (where, leaked[:3])


def test_the_logged_model_requires_only_pinned_packages_it_loads(clinic) -> None:
    """No skops (the model is a digest-checked joblib file) and nothing left unpinned."""
    _use_store(f"sqlite:///{clinic['root'] / 'mlruns' / 'mlflow.db'}")
    version = MlflowClient().get_model_version_by_alias(NAME, registry.CHAMPION)
    path = mlflow.artifacts.download_artifacts(
        artifact_uri=f"models:/{NAME}/{version.version}/requirements.txt",
        dst_path=str(clinic["root"] / "requirements-probe"),
    )
    requirements = Path(path).read_text().split()
    names = [r.split("==")[0] for r in requirements]
    assert "skops" not in names
    assert all("==" in r for r in requirements), requirements
    assert {"scikit-learn", "lightgbm", "joblib"} <= set(names)


def test_fitted_transformers_keep_aggregates_only(clinic) -> None:
    _use_store(f"sqlite:///{clinic['root'] / 'mlruns' / 'mlflow.db'}")
    model = tracking.load_risk_model(f"models:/{NAME}@champion")
    for calibrated in model.classifier.calibrated_classifiers_:
        context = calibrated.estimator["therapist_context"]
        assert not hasattr(context, "client_outcomes_")
        frames = [v for v in vars(context).values() if isinstance(v, pd.DataFrame)]
        assert not frames  # its table is per therapist, inside totals_
        assert c.CLIENT_ID not in context.totals_.by_therapist.columns


def test_a_tie_never_promotes_and_the_gate_says_why(clinic) -> None:
    """The same recipe on the same data: the champion's recipe refitted on this training split
    gives the same risks, so the gain's lower bound is 0, not above the margin."""
    before = _champion_version(f"sqlite:///{clinic['root'] / 'mlruns' / 'mlflow.db'}")
    again = _train(clinic["root"], clinic["paths"], "again", "tracking.min_test_events=20")
    assert again.promotion is not None and not again.promotion.promoted
    assert "lower bound is not above the margin" in again.promotion.reason
    assert "refitted on this run's training split" in again.promotion.reason
    assert _champion_version(f"sqlite:///{clinic['root'] / 'mlruns' / 'mlflow.db'}") == before
    version = MlflowClient().get_model_version(NAME, again.promotion.version)
    assert again.promotion.reason in version.description
    assert version.tags["promotion.promoted"] == "False"
    assert version.tags["promotion.reason"] == again.promotion.reason
    run_tags = MlflowClient().get_run(again.run_id).data.tags
    assert run_tags["promotion.reason"] == again.promotion.reason


def test_a_small_challenger_does_not_replace_the_champion(clinic, tmp_path) -> None:
    data = clinic["data"]
    keep = data.outcomes[c.CLIENT_ID].sample(400, random_state=1)
    small = type(data)(
        *(t[t[c.CLIENT_ID].isin(keep)] for t in (data.sessions, data.outcomes, data.clients))
    )
    before = _champion_version(f"sqlite:///{clinic['root'] / 'mlruns' / 'mlflow.db'}")
    result = _train(clinic["root"], _write(small, tmp_path), "small")
    assert result.promotion is not None and not result.promotion.promoted
    assert "fewer than tracking.min_test_events (50)" in result.promotion.reason
    assert _champion_version(f"sqlite:///{clinic['root'] / 'mlruns' / 'mlflow.db'}") == before


def test_promote_false_leaves_the_champion_in_place(clinic, tmp_path) -> None:
    uri = f"sqlite:///{clinic['root'] / 'mlruns' / 'mlflow.db'}"
    before = _champion_version(uri)
    data = clinic["data"]
    # a small export keeps the run short: the reason below shows that promote=false decided
    keep = data.outcomes[c.CLIENT_ID].sample(400, random_state=2)
    small = type(data)(
        *(t[t[c.CLIENT_ID].isin(keep)] for t in (data.sessions, data.outcomes, data.clients))
    )
    result = _train(
        clinic["root"], _write(small, tmp_path), "registered-only", "tracking.promote=false"
    )
    assert result.promotion is not None and not result.promotion.promoted
    assert result.promotion.reason == "not promoted: tracking.promote is false (registered only)"
    assert result.promotion.version is not None and result.promotion.version != before
    assert _champion_version(uri) == before
    version = MlflowClient().get_model_version(NAME, result.promotion.version)
    assert version.tags["promotion.promoted"] == "False"
    assert not version.aliases


def test_the_registered_model_says_what_it_is(clinic) -> None:
    _use_store(f"sqlite:///{clinic['root'] / 'mlruns' / 'mlflow.db'}")
    description = MlflowClient().get_registered_model(NAME).description
    assert description, "the registered model has no description"
    for words in ("probability", "psychotherapy", "dropout", "alliance", "raw session rows"):
        assert words in description.lower(), words


def test_promote_false_never_promotes_even_the_first_model(clinic, tmp_path) -> None:
    result = _train(tmp_path, clinic["paths"], "first", "tracking.promote=false")
    assert result.promotion is not None and not result.promotion.promoted
    assert "tracking.promote is false" in result.promotion.reason
    _use_store(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    assert MlflowClient().get_registered_model(NAME).aliases == {}


@pytest.mark.parametrize("margin", ["-1", "0.5"])
def test_the_margin_is_validated(margin: str) -> None:
    with pytest.raises(ConfigError, match="promotion_margin"):
        to_object(
            compose_config(
                "run", ["data.sessions=s", "data.outcomes=o", f"tracking.promotion_margin={margin}"]
            )
        )


def test_gate_rules_in_plain_words() -> None:
    """Each rule decides on its own figures (no model needed)."""
    y = np.array([1] * 60 + [0] * 240)
    test = Examples(
        X=pd.DataFrame({c.CLIENT_ID: [f"x{i}" for i in range(300)], "landmark_session": 2}),
        y=y,
        groups=np.arange(300),
    )
    good = registry.AucGain("the best reference rule", 0.08, 0.03, 0.13, 300, 60)

    def challenger(slope: float = 1.0, rule: registry.AucGain = good) -> registry.Challenger:
        return registry.Challenger(
            test,
            y.astype(float),
            slope,
            0.0,
            rule,
            lambda *_: pd.DataFrame(),
            pd.DataFrame(),
            10,
            0,
        )

    cfg = TrackingConfig()
    assert registry.decide(cfg, challenger(), None, None)[0]
    promoted, reason = registry.decide(cfg, challenger(slope=1.4), None, None)
    assert not promoted and "not calibrated" in reason
    weak = registry.AucGain("the best reference rule", 0.02, -0.01, 0.05, 300, 60)
    promoted, reason = registry.decide(cfg, challenger(rule=weak), None, None)
    assert not promoted and "-0.010" in reason
    tie = registry.AucGain("the champion", 0.0, 0.0, 0.0, 300, 60)
    assert not registry.decide(cfg, challenger(), tie, "1")[0]
    better = registry.AucGain("the champion", 0.05, 0.01, 0.09, 300, 60)
    assert registry.decide(cfg, challenger(), better, "1")[0]
    margin = TrackingConfig(promotion_margin=0.02)
    assert not registry.decide(margin, challenger(), better, "1")[0]


class _RunsCode:
    """A pickle that runs a shell command when loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_crafted_model_file_is_refused_and_runs_nothing(clinic, tmp_path) -> None:
    _use_store(f"sqlite:///{clinic['root'] / 'mlruns' / 'mlflow.db'}")
    version = MlflowClient().get_model_version_by_alias(NAME, registry.CHAMPION)
    # the attacker can write the artifact store, not the registry's database
    source = mlflow.artifacts.download_artifacts(
        artifact_uri=f"models:/{NAME}/{version.version}/artifacts/{tracking.MODEL_FILE}",
        dst_path=str(tmp_path / "probe"),
    )
    assert Path(source).is_file()
    stored = [
        p
        for p in (clinic["root"] / "mlruns").rglob(tracking.MODEL_FILE)
        if tracking.file_sha256(p) == version.tags[tracking.MODEL_DIGEST_TAG]
    ]
    # an identical re-run logs a byte-identical file: replace every copy
    assert stored
    originals = {p: p.read_bytes() for p in stored}
    marker = tmp_path / "pwned"
    try:
        for p in stored:
            joblib.dump(_RunsCode(marker), p)
        with pytest.raises(UntrustedModelError, match="SHA-256"):
            tracking.load_risk_model(f"models:/{NAME}@champion")
        assert not marker.exists()
    finally:
        for p, blob in originals.items():
            p.write_bytes(blob)
    assert tracking.load_risk_model(f"models:/{NAME}@champion") is not None


def test_a_model_without_a_recorded_digest_is_refused(tmp_path) -> None:
    path = tmp_path / "m.joblib"
    joblib.dump({"a": 1}, path)
    with pytest.raises(UntrustedModelError, match="no SHA-256 recorded"):
        tracking.verified_model_file(path, None, "models:/x/1")


def _export_as_of(data, cutoff: pd.Timestamp):
    """The same clinic as an earlier export: rows up to ``cutoff``; episodes not ended by then
    are ongoing (their outcome was not known yet)."""
    dates = pd.to_datetime(data.sessions[c.SESSION_DATE])
    sessions = data.sessions[dates <= cutoff]
    last = dates.groupby(data.sessions[c.CLIENT_ID]).max()
    outcomes = data.outcomes[data.outcomes[c.CLIENT_ID].isin(sessions[c.CLIENT_ID])].copy()
    open_then = outcomes[c.CLIENT_ID].map(last) > cutoff
    outcomes.loc[open_then, c.STATUS] = c.ONGOING
    clients = data.clients[data.clients[c.CLIENT_ID].isin(sessions[c.CLIENT_ID])]
    return type(data)(sessions, outcomes, clients)


def test_a_truly_better_challenger_on_unseen_clients_is_promoted(tmp_path) -> None:
    """The champion is a weak recipe (two tree stumps) trained on an earlier export;
    the challenger, the full recipe on the later export, is compared with it on the clients
    whose episodes started after the champion's training data (path a of the gate)."""
    data = simulate(SimulateConfig(n_clients=3500, n_therapists=80, seed=8))
    early = _export_as_of(data, pd.Timestamp("2023-12-31"))
    # two one-split trees: a handful of distinct risk levels
    weak = [
        "model.early_stopping_rounds=0",
        "model.params.n_estimators=2",
        "model.params.num_leaves=2",
    ]
    champion = _train(
        tmp_path,
        _write(early, tmp_path / "early"),
        "champion",
        "tracking.promote=false",
        *weak,
    )
    assert champion.promotion is not None
    _use_store(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    # set up by hand: this champion was promoted by an earlier gate
    MlflowClient().set_registered_model_alias(NAME, registry.CHAMPION, champion.promotion.version)

    challenger = _train(tmp_path, _write(data, tmp_path / "full"), "challenger")
    assert challenger.promotion is not None
    assert "start after the champion's training data" in challenger.promotion.reason
    assert challenger.promotion.promoted, challenger.promotion.reason
    assert _champion_version(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}") == (
        challenger.promotion.version
    )


def test_the_served_model_refuses_a_file_that_is_not_the_logged_one(tmp_path) -> None:
    """`mlflow models serve` loads through the pyfunc: it checks the digest before unpickling."""
    marker = tmp_path / "pwned"
    crafted = tmp_path / tracking.MODEL_FILE
    joblib.dump(_RunsCode(marker), crafted)
    context = SimpleNamespace(
        artifacts={"risk_model": str(crafted)},
        model_config={tracking.MODEL_DIGEST_TAG: "0" * 64},
    )
    with pytest.raises(UntrustedModelError, match="SHA-256"):
        DropoutPyfunc().load_context(context)
    assert not marker.exists()
