"""Plain-language reasons: what moved one client's risk estimate most, which way and how far.

Written from the feature's own value, so a clinician can check it against the record::

    ↑ an alliance rupture is not yet repaired (raises risk by about 6 percentage points)
    ↓ client's latest alliance rating 4.6 of 5 (lowers risk by about 2 percentage points)

The direction is the sign of the feature's log-odds contribution (SHAP value or linear term),
never the wording. The size is how much the risk would change without that contribution,
``p - sigmoid(logit(p) - c)`` (about ``p(1-p)c`` when small), or in words without the risk.
A client whose contributions add up to above-average risk gets the reasons raising it first;
below average, those lowering it (protective); a reason against that direction takes a place
only when more than twice as strong. Features saying the same thing share a group (the
client-therapist gap as latest and as mean value): only the strongest of a group is shown. A
count is phrased against a reference ('2 of 9 appointments cancelled', 'only one alliance
rating so far') or is no reason at that value ('7 alliance ratings so far' says nothing).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from alliance_dropout.contract import Scale

Phrase = Callable[..., str | None]
ValueTest = Callable[[np.ndarray], np.ndarray]

# Reasons are about the client's own course, something to raise in the next session. Therapist
# context still counts in the risk, but it is not a reason a clinician can act on with this
# client, and the tool must not read as an appraisal of the therapist (model card).
# The hazard model's clock (the session number and the sessions ahead) is not a reason either:
# how far along an episode is cannot be raised with the client.
NOT_REASONS = frozenset(
    {
        "therapist_dropout_rate",
        "therapist_mean_alliance",
        "therapist_n_clients",
        "period",
        "sessions_ahead",
    }
)
UP, DOWN = "↑", "↓"
SEPARATOR = " | "
# Contributions smaller than this (log-odds) are noise, not reasons.
MIN_CONTRIBUTION = 0.01
# A reason against the client's overall direction competes at this fraction of its strength.
AGAINST_WEIGHT = 0.5
# Without the client's risk, the size in words: at least these log-odds are strong / somewhat.
STRONG, SOMEWHAT = 0.5, 0.15


@dataclass(frozen=True)
class Reason:
    """How one feature reads as a reason.

    ``phrase(value, *context_values)`` gives the words, or None where the value is no reason;
    ``context`` names other features whose values the phrase also needs; features sharing a
    ``group`` say the same thing (only the strongest is shown); ``when`` (vectorised over
    values) marks the values at which the feature is a reason at all.
    """

    phrase: Phrase
    group: str = ""
    context: tuple[str, ...] = ()
    when: ValueTest | None = None

    def __call__(self, value: float, *context: float) -> str | None:
        return self.phrase(value, *context)


# --- words ------------------------------------------------------------------------------------

_SMALL = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def _pts(v: float) -> str:
    """'0.6 points', '1.0 point'; whole numbers (symptom scores) without decimals."""
    text = f"{abs(v):.0f}" if float(v).is_integer() else f"{abs(v):.1f}"
    return f"{text} point{'' if text in ('1', '1.0') else 's'}"


def _word(v: float) -> str:
    k = round(v)
    return _SMALL[k] if 0 <= k < len(_SMALL) else str(k)


def _n(v: float, unit: str) -> str:
    """'no appointments', 'one appointment', 'two appointments', '12 appointments'."""
    return f"{_word(v)} {unit}{'' if round(v) == 1 else 's'}"


def _of(k: float, total: float, noun: str) -> str | None:
    """'2 of 9 appointments' (None without a total)."""
    if not np.isfinite(total) or total < 1:
        return None
    return f"{round(k)} of {round(total)} {noun}{'' if round(total) == 1 else 's'}"


def _moved(v: float, up: str, down: str, steady: str, tol: float = 0.05) -> str:
    """'rose 0.4 points' / 'fell 1.0 point' / ``steady`` below ``tol``."""
    return steady if abs(v) < tol else f"{up if v > 0 else down} {_pts(v)}"


def _t(template: str) -> Phrase:
    """A template of the value: ``{v}``, and for counts ``{k}`` (no/one/two/12) and ``{s}``."""
    return lambda v: template.format(v=v, k=_word(v), s="" if round(v) == 1 else "s")


def _zero(zero: str, template: str) -> Phrase:  # a count: zero, else the template
    some = _t(template)
    return lambda v: zero if round(v) == 0 else some(v)


def _flag(yes: str, no: str) -> Phrase:  # a 0/1 feature
    return lambda v: yes if v >= 0.5 else no


def _rows(rows: dict[str, tuple[str, Phrase]], **words: object) -> dict[str, Reason]:
    """Reasons from ``feature: (group, phrase)`` rows; ``{word}`` in names and groups filled."""
    return {
        name.format(**words): Reason(phrase, group.format(**words))
        for name, (group, phrase) in rows.items()
    }


# --- phrases ----------------------------------------------------------------------------------


def _alliance(who: str, rater: str, recent: int, low: float) -> dict[str, Reason]:
    """One rater's alliance (client or therapist); ``who`` is the possessive."""
    a = f"alliance_{rater}_"

    def low_phrase(v: float, rated: float) -> str | None:
        if round(v) == 0:
            return f"{who} alliance rating never below {low:g} of 5 so far"
        share = _of(v, rated, "rating")
        return share and f"{who} alliance rating below {low:g} of 5 in {share}"

    def moved(steady: str, over: str, times: int = 1) -> Phrase:
        return lambda v: f"{who} alliance rating {_moved(v * times, 'rose', 'fell', steady)}{over}"

    def slope(v: float) -> str:
        way = f"{'rising' if v > 0 else 'falling'} by {abs(v):.2f} points a session"
        return f"{who} alliance ratings {'steady overall' if abs(v) < 0.005 else way}"

    # fmt: off
    out = _rows({
        "{a}latest": ("{r} level", _t(who + " latest alliance rating {v:.1f} of 5")),
        "{a}mean": ("{r} level", _t(who + " alliance ratings average {v:.1f} of 5")),
        "{a}min": ("{r} level", _t(who + " lowest alliance rating so far {v:.1f} of 5")),
        "{a}first": ("{r} level", _t(who + " first alliance rating {v:.1f} of 5")),
        "{a}change": ("{r} course", moved("unchanged", " since the first rating")),
        "{a}slope": ("{r} course", slope),
        "{a}recent_slope": ("{r} course", moved("held steady", f" over the last {recent} ratings",
                                                recent - 1)),
        "{a}sd": ("{r} spread", lambda v: f"{who} alliance ratings " + (
            "barely vary" if v < 0.05 else f"vary by about {_pts(v)}")),
        "{a}masd": ("{r} spread", lambda v: f"{who} alliance rating " + (
            "barely moves between sessions" if v < 0.05 else f"moves {_pts(v)} a session")),
    }, a=a, r=rater)
    # fmt: on
    rated = f"{a}rated_sessions"
    out[f"{a}low_sessions"] = Reason(low_phrase, f"{rater} level", (rated,))
    out[rated] = Reason(
        _zero(
            f"no alliance rating from the {rater} yet",
            f"only {{k}} alliance rating{{s}} from the {rater} so far",
        ),
        f"{rater} ratings",
        when=lambda v: v <= 2,
    )
    return out


def _gap(lead: str) -> Phrase:
    def phrase(v: float) -> str:
        if abs(v) < 0.05:
            return f"{lead}client and therapist rate the alliance the same"
        way = "higher" if v > 0 else "lower"
        return f"{lead}client rates the alliance {_pts(v)} {way} than the therapist does"

    return phrase


def _gap_slope(v: float, gap: float) -> str:
    if abs(v) < 0.005:
        return "client's and therapist's alliance ratings keep the same distance"
    if np.isfinite(gap) and abs(gap) >= 0.05:
        way = "apart" if (v > 0) == (gap > 0) else "closer"
        return f"client's and therapist's alliance ratings drifting {way}"
    return f"client's alliance rating {'rising' if v > 0 else 'falling'} against the therapist's"


def _rater_correlation(v: float) -> str:
    way = "rise and fall together" if v >= 0.3 else "move independently of each other"
    way = "move in opposite directions" if v <= -0.3 else way
    return f"client's and therapist's alliance ratings {way}"


def _ruptures(v: float, repaired: float) -> str:
    if round(v) == 0:
        return "no alliance rupture so far"
    done = min(round(repaired), round(v)) if np.isfinite(repaired) else 0
    fixed = "none repaired" if done == 0 else "all repaired" if done == round(v) else ""
    return f"{_n(v, 'alliance rupture')} so far, {fixed or f'{done} repaired'}"


def _alliance_more(repair_window: int) -> dict[str, Reason]:
    """The two raters compared, the parts of the alliance, ruptures and repair."""
    part = "part of the alliance (goals, tasks or bond)"
    # fmt: off
    out = _rows({
        "alliance_gap_latest": ("gap", _gap("")),
        "alliance_gap_mean": ("gap", _gap("on average, ")),
        "alliance_rater_correlation": ("raters", _rater_correlation),
        "alliance_rater_change_agreement": ("raters", _t(
            "client's and therapist's alliance ratings moved the same way {v:.0%} of the time")),
        "alliance_goal_latest": ("parts", _t("client's rating of agreement on goals {v:.1f} of 5")),
        "alliance_task_latest": ("parts", _t("client's rating of agreement on tasks {v:.1f} of 5")),
        "alliance_bond_latest": ("parts", _t("client's rating of the bond {v:.1f} of 5")),
        "alliance_weakest_subscale": ("parts", _t(f"weakest {part} {{v:.1f}} of 5")),
        "alliance_weakest_subscale_gap": ("parts", lambda v: "goals, tasks and bond rated alike"
                                          if v < 0.05 else f"one {part} lags by {_pts(v)}"),
        "alliance_client_latest_vs_expected": ("client course", lambda v: "client's alliance " + (
            "on its expected course" if abs(v) < 0.05
            else f"{_pts(v)} {'above' if v > 0 else 'below'} what is expected by now")),
        "rupture_open": ("rupture", _flag("an alliance rupture is not yet repaired",
                                          "no unrepaired alliance rupture at present")),
        "rupture_unrepaired_count": ("rupture", _zero(
            "no alliance rupture left unrepaired",
            f"{{k}} alliance rupture{{s}} not repaired within {repair_window} sessions")),
        "sessions_since_rupture": ("rupture", _zero("an alliance rupture at the latest session",
                                                    "latest alliance rupture {k} session{s} ago")),
        "rupture_max_drop": ("rupture", lambda v: "no alliance rupture so far" if v <= 0
                             else f"the alliance dropped by up to {_pts(v)} in a rupture"),
    })
    # fmt: on
    out["alliance_gap_slope"] = Reason(_gap_slope, "gap", ("alliance_gap_mean",))
    out["rupture_count"] = Reason(_ruptures, "rupture", ("rupture_repaired_count",))
    out["rupture_repaired_count"] = Reason(
        _t("{k} alliance rupture{s} repaired: the alliance recovered"),
        "rupture",
        when=lambda v: v > 0,
    )
    return out


def _symptoms(scale: Scale, recent: int, early_session: int) -> dict[str, Reason]:
    s, hw = scale.name, scale.higher_is_worse

    def change(since: str, tol: float = 0.05, times: int = 1, steady: str = "") -> Phrase:
        def phrase(v: float) -> str:
            v = v * times
            if abs(v) < tol:
                return steady or f"{s} unchanged {since}"
            return f"{s} {_pts(v)} {'better' if (v < 0) == hw else 'worse'} {since}"

        return phrase

    def per_session(v: float) -> str:
        way = f"{'improving' if (v < 0) == hw else 'worsening'} by {abs(v):.1f} points a session"
        return f"{s} {'steady' if abs(v) < 0.05 else way}"

    def coupling(v: float) -> str:
        if abs(v) < 0.3 or not hw:
            return f"little link between the alliance and the next change in {s}"
        after = "relief in" if v < 0 else "a rise in"
        return f"sessions with a stronger alliance tend to be followed by {after} {s}"

    early = f"clearly better by session {early_session}"
    # fmt: off
    out = _rows({
        "symptom_first": ("start", _t(f"{s} started at {{v:.0f}}")),
        "symptom_latest": ("level", _t(f"latest {s} score {{v:.0f}}")),
        "symptom_in_clinical_range": ("level", _flag(f"{s} in the clinical range",
                                                     f"{s} out of the clinical range")),
        "symptom_recovered": ("level", _flag(f"{s} has moved out of the clinical range",
                                             f"{s} still in the clinical range")),
        "symptom_reliable_recovery": ("level", _flag(f"{s} reliably recovered",
                                                     f"{s} not yet reliably recovered")),
        "symptom_change": ("change", change("since the start")),
        "symptom_slope": ("change", per_session),
        "symptom_recent_slope": ("change", change(f"over the last {recent} scores",
                                                  times=recent - 1)),
        "symptom_latest_vs_expected": ("change", change("than expected by now", 0.5,
                                                        steady=f"{s} on its expected course")),
        "symptom_reliable_improvement": ("change", _flag(f"{s} reliably improved",
                                                         f"no reliable improvement in {s} yet")),
        "symptom_reliable_deterioration": ("change", _flag(f"{s} reliably worse than at the start",
                                                           f"no reliable worsening of {s}")),
        "symptom_early_response": ("change", _flag(f"an early response: {s} {early}",
                                                   f"no early response: {s} not {early}")),
        "sudden_gain_count": ("gain", _zero(f"no sudden gain in {s} so far",
                                            f"{{k}} sudden gain{{s}} in {s} (a large, lasting "
                                            "improvement between two sessions)")),
        "sessions_since_sudden_gain": ("gain", _t(f"a sudden gain in {s} {{k}} session{{s}} ago")),
        "sudden_loss_count": ("loss", _zero(f"no sudden worsening of {s} so far",
                                            f"{{k}} sudden worsening{{s}} of {s}")),
        "alliance_symptom_coupling": ("coupling", coupling),
    })
    # fmt: on
    out["symptom_rated_sessions"] = Reason(
        _zero(f"no {s} score yet", f"only {{k}} {s} score{{s}} so far"),
        "symptom scores",
        when=lambda v: v <= 2,
    )
    return out


def _attendance(recent: int, early_session: int) -> dict[str, Reason]:
    def stage(unit: str) -> Phrase:
        def phrase(v: float) -> str:
            if v <= early_session:
                return f"early in treatment, when dropout is most common: {_n(v, unit)} so far"
            return f"past the first {early_session} sessions, when dropout is most common"

        return phrase

    def recent_missed(v: float, scheduled: float) -> str | None:
        window = min(recent, round(scheduled)) if np.isfinite(scheduled) else recent
        if window < 1:
            return None
        missed = round(v * window)
        if window == 1:
            return (
                "came to the latest appointment" if missed == 0 else "missed the latest appointment"
            )
        last = f"the last {window} appointments"
        return f"came to all of {last}" if missed == 0 else f"missed {missed} of {last}"

    def missed(noun: str, none: str) -> Phrase:
        def phrase(v: float, scheduled: float) -> str | None:
            share = _of(v, scheduled, "appointment")
            return none if round(v) == 0 else share and f"{share} {noun}"

        return phrase

    came = "came to the latest appointment"
    # fmt: off
    out = _rows({
        "attendance_attended": ("stage", stage("attended session")),
        "attendance_scheduled": ("stage", stage("appointment")),
        "attendance_consecutive_missed": ("missed", lambda v: came if round(v) == 0
                                          else "missed the latest appointment" if round(v) == 1
                                          else f"missed the last {_n(v, 'appointment')} in a row"),
        "attendance_days_since_attended": ("missed", _zero(
            came, "{v:.0f} days since the last attended session")),
        "attendance_mean_gap_days": ("frequency", _t("{v:.0f} days between sessions on average")),
        "attendance_max_gap_days": ("frequency", _t("a gap of {v:.0f} days between two sessions")),
        "attendance_sessions_per_week": ("frequency", _t("{v:.1f} sessions a week on average")),
    })
    # fmt: on
    no_notice = "missed an appointment without notice"
    for name, phrase in (
        ("attendance_recent_missed_share", recent_missed),
        ("attendance_cancelled", missed("cancelled", "no appointment cancelled so far")),
        ("attendance_no_shows", missed("missed without notice", f"never {no_notice}")),
    ):
        out[name] = Reason(phrase, "missed", ("attendance_scheduled",))
    return out


def phrases(
    recent_alliance: int,
    recent_attendance: int,
    symptom: str | Scale,
    early_session: int = 4,
    *,
    recent_symptom: int = 3,
    low_cutoff: float = 3.0,
    repair_window: int = 3,
) -> dict[str, Reason]:
    """Reason per feature name; phrases get the feature's value for the client.

    ``symptom`` is the symptom scale (a name alone stands for a higher-is-worse scale); the
    other arguments are the feature settings the model was built with (``FeaturesConfig``:
    alliance, attendance and symptom recent windows, early-response session, low-alliance
    cutoff, rupture repair window).
    """
    scale = symptom if isinstance(symptom, Scale) else Scale(symptom, 0, 1)
    return (
        _alliance("client's", "client", recent_alliance, low_cutoff)
        | _alliance("therapist's", "therapist", recent_alliance, low_cutoff)
        | _alliance_more(repair_window)
        | _symptoms(scale, recent_symptom, early_session)
        | _attendance(recent_attendance, early_session)
    )


def _fallback(definition: str) -> Reason:
    """A feature without a phrase of its own: its definition's first clause and the value."""
    text = definition.split(";")[0].split(". ")[0].rstrip(". ")
    return Reason(lambda v: f"{text[:1].lower()}{text[1:]}: {v:.3g}")


# --- selection --------------------------------------------------------------------------------


def _effects(contrib: np.ndarray, risk: np.ndarray | None) -> tuple[list[str], np.ndarray]:
    """The words for each contribution's direction and size: labels and an index into them.

    The size is how much lower (higher) the risk would be without the contribution,
    ``p - sigmoid(logit(p) - c)``, in whole percentage points; without the risk, a word.
    """
    size = np.abs(contrib)
    level = 101 + np.where(size >= STRONG, 2, np.where(size >= SOMEWHAT, 1, 0))
    if risk is not None:
        q = np.asarray(risk, dtype=float)[:, None]
        p = np.clip(q, 1e-9, 1 - 1e-9)
        with np.errstate(over="ignore", invalid="ignore"):
            without = 1 / (1 + np.exp(contrib - np.log(p / (1 - p))))
            points = np.clip(np.nan_to_num(np.round(np.abs(p - without) * 100)), 0, 100)
        level = np.where(np.isfinite(q), points.astype(int), level)
    sizes = ["by less than 1 percentage point", "by about 1 percentage point"]
    sizes += [f"by about {k} percentage points" for k in range(2, 101)]
    sizes += ["slightly", "somewhat", "strongly"]
    labels = [f" ({verb} risk {size})" for verb in ("lowers", "raises") for size in sizes]
    return labels, (contrib > 0) * len(sizes) + level


def _dedupe_groups(key: np.ndarray, groups: list[str]) -> None:
    """Within each group of columns keep only the row's strongest (others set to -inf)."""
    members: dict[str, list[int]] = {}
    for j, g in enumerate(groups):
        members.setdefault(g or f"#{j}", []).append(j)
    rows = np.arange(key.shape[0])
    for idx in (i for i in members.values() if len(i) > 1):
        best = np.asarray(idx)[key[:, idx].argmax(axis=1)]
        keep = key[rows, best]
        key[:, idx] = -np.inf
        key[rows, best] = keep


def top_reasons(
    contributions: pd.DataFrame,
    values: pd.DataFrame,
    definitions: Mapping[str, str],
    phrase_for: Mapping[str, Phrase],
    n: int = 3,
    *,
    risk: np.ndarray | pd.Series | None = None,
) -> list[str]:
    """For each row, up to ``n`` reasons in words with their direction and size, " | "-joined.

    ``contributions`` are per-feature log-odds contributions (positive raises the risk),
    ``values`` the features as the model sees them, ``phrase_for`` the :func:`phrases` (a
    plain callable counts as a :class:`Reason` of its own). With ``risk`` (the client's
    calibrated risk, per row) the size is given in percentage points, otherwise in words.
    Missing values, the therapist-context features (:data:`NOT_REASONS`) and contributions
    below :data:`MIN_CONTRIBUTION` are never reasons.
    """
    total = np.nansum(contributions.to_numpy(dtype=float), axis=1)
    names = [c for c in contributions.columns if c not in NOT_REASONS]
    contrib = contributions[names].to_numpy(dtype=float)
    vals = values.reindex(columns=names).to_numpy(dtype=float)
    specs = [
        spec if isinstance(spec, Reason) else Reason(spec)
        for spec in (
            phrase_for.get(name) or _fallback(definitions.get(name, name)) for name in names
        )
    ]
    usable = np.isfinite(vals) & np.isfinite(contrib) & (np.abs(contrib) >= MIN_CONTRIBUTION)
    with np.errstate(invalid="ignore"):
        for j, spec in enumerate(specs):
            if spec.when is not None:
                usable[:, j] &= np.asarray(spec.when(vals[:, j]), dtype=bool)
    lead = np.where(total >= 0, 1.0, -1.0)[:, None]
    key = np.abs(contrib) * np.where(contrib * lead > 0, 1.0, AGAINST_WEIGHT)
    key[~usable] = -np.inf
    _dedupe_groups(key, [s.group for s in specs])
    order = np.argsort(-key, axis=1, kind="stable")[:, : min(n + 3, len(names))]
    top_key = np.take_along_axis(key, order, axis=1)
    top_c = np.take_along_axis(contrib, order, axis=1)
    labels, effect = _effects(top_c, risk)
    tail, up = effect.tolist(), (top_c > 0).tolist()
    against = (top_c * lead < 0).tolist()
    n_usable = (top_key > -np.inf).sum(axis=1)
    top_v = np.take_along_axis(vals, order, axis=1)
    texts = _candidate_texts(specs, order, top_v, n_usable, values)
    out = []
    first = 0
    for i, usable_here in enumerate(n_usable.tolist()):
        picked: list[tuple[bool, str]] = []
        seen: list[str] = []
        for r in range(usable_here):
            text = texts[first + r]
            if not text or text in seen:
                continue
            seen.append(text)
            arrow = UP if up[i][r] else DOWN
            picked.append((against[i][r], f"{arrow} {text}{labels[tail[i][r]]}"))
            if len(picked) == n:
                break
        first += usable_here
        # the client's own direction first, each side by strength (sorted is stable)
        out.append(SEPARATOR.join(t for _, t in sorted(picked, key=lambda x: x[0])))
    return out


def _candidate_texts(
    specs: list[Reason],
    order: np.ndarray,
    top_values: np.ndarray,
    n_usable: np.ndarray,
    values: pd.DataFrame,
) -> list[str | None]:
    """The words of every usable candidate reason, row by row (row i: its first
    ``n_usable[i]`` columns of ``order``), each distinct phrase call made once.

    Values repeat (ratings on a 1/12 grid, counts), so distinct (feature, value, context)
    triples are a few thousand where candidates are hundreds of thousands. Distinct means bit
    for bit (0.0 is not -0.0), and each phrase gets its arguments as one row-by-row call would:
    the value a Python float, a context value a numpy float (NaN for a missing column).
    """
    row, slot = np.nonzero(np.arange(order.shape[1]) < n_usable[:, None])
    feature = order[row, slot]
    where = {col: k for k, col in enumerate(values.columns)}
    context = [[where.get(col, -1) for col in spec.context] for spec in specs]
    width = max((len(cols) for cols in context), default=0)
    given = values.to_numpy(dtype=float)
    ctx = np.zeros((feature.shape[0], width))
    for j in np.unique(feature).tolist():
        for p, k in enumerate(context[j]):
            at = np.flatnonzero(feature == j)
            ctx[at, p] = given[row[at], k] if k >= 0 else np.nan
    keys = np.column_stack([feature, top_values[row, slot].view(np.int64), ctx.view(np.int64)])
    # np.unique(axis=0) sorts the rows as bytes, several times slower than a lexsort
    by_key = np.lexsort(keys.T[::-1])
    ordered = keys[by_key]
    starts = np.ones(ordered.shape[0], dtype=bool)
    starts[1:] = (ordered[1:] != ordered[:-1]).any(axis=1)
    inverse = np.empty(ordered.shape[0], dtype=np.int64)
    inverse[by_key] = np.cumsum(starts) - 1
    distinct = ordered[starts]
    distinct_values = distinct[:, 1].copy().view(np.float64).tolist()
    distinct_ctx = distinct[:, 2:].copy().view(np.float64)
    words = []
    for u, (j, v) in enumerate(zip(distinct[:, 0].tolist(), distinct_values, strict=True)):
        args = [distinct_ctx[u, p] if k >= 0 else np.nan for p, k in enumerate(context[j])]
        words.append(specs[j](v, *args))
    return [words[u] for u in inverse.tolist()]
