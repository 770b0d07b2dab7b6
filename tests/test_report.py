"""The HTML caseload report: structure, escaping, ranking, filters, header, and a real browser."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import re
import shutil
import subprocess
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd
import pytest

from alliance_dropout import io
from alliance_dropout.report import FLAGS, ReportMeta, render_caseload_report

HOSTILE_CLIENT = "</script><script>alert(1)</script>"
FORMULA_CLIENT = '=HYPERLINK("http://evil.example","x")'
HOSTILE_THERAPIST = '" onmouseover="alert(2)'
HOSTILE_REASON = "<img src=x onerror=alert(3)>"


def _scored(clients: list[str], therapists: list[str], risks: list[float]) -> pd.DataFrame:
    n = len(clients)
    tiers = np.where(
        np.array(risks) >= 0.4, "high", np.where(np.array(risks) >= 0.2, "medium", "low")
    )
    frame = pd.DataFrame(
        {
            "client_id": clients,
            "therapist_id": therapists,
            "as_of_session": np.arange(5, 5 + n),
            "as_of_date": pd.date_range("2026-03-02", periods=n, freq="7D"),
            "dropout_risk": risks,
            "risk_tier": tiers,
            "top_reasons": ["Alliance fell 0.8 points | Missed 2 of the last 4 sessions"] * n,
            "model_id": "m-test",
        }
    )
    for i, flag in enumerate(FLAGS):
        frame[flag] = (np.arange(n) + i) % 2 == 0
    return frame


def _histories(clients: list[str], sessions: int = 6) -> pd.DataFrame:
    """Each client: ``sessions`` rows, a no-show at 2, a cancellation at 4, a rupture at 3."""
    n = len(clients)
    number = np.tile(np.arange(1, sessions + 1), n)
    attendance = np.where(number == 2, "no_show", np.where(number == 4, "cancelled", "attended"))
    attended = attendance == "attended"
    return pd.DataFrame(
        {
            "client_id": np.repeat(clients, sessions),
            "session_number": number,
            "session_date": np.tile(pd.date_range("2026-01-05", periods=sessions, freq="7D"), n),
            "attendance": attendance,
            "alliance_client": np.where(attended, 4.2 - 0.2 * number, np.nan),
            "alliance_therapist": np.where(attended, 4.4 - 0.1 * number, np.nan),
            "symptom_score": np.where(attended, 18.0 - number, np.nan),
            "rupture": number == 3,
        }
    )


def _meta(**overrides: object) -> ReportMeta:
    base: dict[str, object] = {
        "title": "Weekly caseload report",
        "generated_at": datetime(2026, 11, 22, 9, 30),
        "model_name": "dropout-lgbm",
        "model_version": "7",
        "model_uri": "models:/dropout-lgbm@champion",
        "test_metrics": {
            "ROC AUC": (0.781, 0.752, 0.809),
            "Brier score": (0.151, 0.143, 0.160),
            "Calibration slope": (0.96, 0.85, 1.08),
        },
        "data_start": pd.Timestamp("2026-01-05"),
        "data_end": pd.Timestamp("2026-11-20"),
        "validation_summary": {
            "rows_in": 4210,
            "rows_quarantined": 40,
            "failures_by_check": {"dates_non_decreasing": 2},
        },
        "tier_definition": "High: risk at least 40%.",
    }
    base.update(overrides)
    return ReportMeta(**base)  # type: ignore[arg-type]


# --- parsing helpers -------------------------------------------------------------------------


class _CaseloadParser(HTMLParser):
    """Collects the caseload rows (attributes and client id text) and every script element."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, str | None]] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self._in_cid = False
        self._script: dict[str, str | None] | None = None
        self._script_text: list[str] = []
        self.table_attrs: dict[str, str | None] = {}
        self.shown_count = ""
        self._in_count = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "tr" and "data-rank" in a:
            self.rows.append({**a, "client": ""})
        elif tag == "span" and a.get("class") == "cid":
            self._in_cid = True
        elif tag == "script":
            self._script, self._script_text = a, []
        elif tag == "table" and a.get("id") == "caseload":
            self.table_attrs = a
        elif a.get("id") == "shown-count":
            self._in_count = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "span":
            self._in_cid = False
        if tag == "script" and self._script is not None:
            self.scripts.append((self._script, "".join(self._script_text)))
            self._script = None
        if tag == "div":
            self._in_count = False

    def handle_data(self, data: str) -> None:
        if self._in_cid and self.rows:
            self.rows[-1]["client"] = (self.rows[-1]["client"] or "") + data
        if self._script is not None:
            self._script_text.append(data)
        if self._in_count:
            self.shown_count += data


def _parse(document: str) -> _CaseloadParser:
    parser = _CaseloadParser()
    parser.feed(document)
    return parser


@pytest.fixture
def small_report() -> tuple[pd.DataFrame, str]:
    clients = ["C-07", "C-02", "C-11", "C-05"]
    scored = _scored(clients, ["T1", "T2", "T1", "T2"], [0.62, 0.45, 0.31, 0.08])
    return scored, render_caseload_report(scored, _histories(clients), _meta())


# --- unit tests on the HTML ------------------------------------------------------------------


def test_rows_keep_the_given_ranking_order(small_report: tuple[pd.DataFrame, str]) -> None:
    scored, document = small_report
    rows = _parse(document).rows
    assert [r["client"] for r in rows] == scored["client_id"].tolist()
    assert [r["data-rank"] for r in rows] == ["1", "2", "3", "4"]
    assert [r["data-tier"] for r in rows] == ["high", "high", "medium", "low"]
    assert [r["data-therapist"] for r in rows] == ["T1", "T2", "T1", "T2"]


def test_row_shows_risk_tier_reasons_flags_and_chart(
    small_report: tuple[pd.DataFrame, str],
) -> None:
    _, document = small_report
    first_row = document[document.index('data-rank="1"') : document.index('data-rank="2"')]
    assert ">62%<" in first_row
    assert 'style="width:62.0%"' in first_row
    assert '<span class="badge t-high">high</span>' in first_row
    assert "<li>Alliance fell 0.8 points</li><li>Missed 2 of the last 4 sessions</li>" in first_row
    assert "Unrepaired rupture" in first_row  # row 0 has the even-indexed flags on
    assert "Session 5" in first_row and "2026-03-02" in first_row
    # Three trajectories and the marks with hover titles.
    for line in ("l-client", "l-ther", "l-sym"):
        assert f'class="{line}"' in first_row
    assert "<title>Session 3 (2026-01-19): rupture</title>" in first_row
    assert "<title>Session 2 (2026-01-12): no-show</title>" in first_row
    assert "<title>Session 4 (2026-01-26): cancelled</title>" in first_row


def test_page_is_self_contained_and_locked_down(small_report: tuple[pd.DataFrame, str]) -> None:
    _, document = small_report
    lowered = document.lower()
    assert "http://" not in lowered and "https://" not in lowered
    assert "<link" not in lowered and "<img" not in lowered and "@import" not in lowered
    parser = _parse(document)
    assert all("src" not in attrs for attrs, _ in parser.scripts)
    csp = html.unescape(
        re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', document)[1]
    )
    assert "default-src 'none'" in csp
    # The CSP allows exactly our inline script, by hash: were it stale, the filters would not run.
    code = next(text for attrs, text in parser.scripts if "type" not in attrs)
    digest = base64.b64encode(hashlib.sha256(code.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in csp


def test_untrusted_text_is_escaped_everywhere() -> None:
    clients = [HOSTILE_CLIENT, FORMULA_CLIENT, "C-3"]
    therapists = [HOSTILE_THERAPIST, "T</script>", "T1"]
    scored = _scored(clients, therapists, [0.7, 0.5, 0.1])
    scored.loc[0, "top_reasons"] = f"{HOSTILE_REASON} | plain reason"
    meta = _meta(
        title="<b>Caseload</b>",
        model_name="<script>x()</script>",
        validation_summary={"<i>rows</i>": 3, "failures": {"<u>check</u>": 1}},
    )
    document = render_caseload_report(scored, _histories(clients), meta)

    for raw in (HOSTILE_CLIENT, HOSTILE_THERAPIST, HOSTILE_REASON, "<b>Caseload</b>", "<i>rows"):
        assert raw not in document
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in document
    assert "&lt;img src=x onerror=alert(3)&gt;" in document
    parser = _parse(document)
    # Only the page's own two script elements exist, and the texts come back intact as text.
    assert len(parser.scripts) == 2
    assert [r["client"] for r in parser.rows] == clients
    assert [r["data-therapist"] for r in parser.rows] == therapists
    data = next(text for attrs, text in parser.scripts if attrs.get("type") == "application/json")
    assert "</" not in data
    assert sorted(json.loads(data)["therapists"]) == sorted(therapists)
    # A formula-looking id is only text in HTML: shown as given, not neutralised or evaluated.
    assert "=HYPERLINK(&quot;http://evil.example&quot;,&quot;x&quot;)" in document


def test_filter_controls_list_every_therapist_and_tier(
    small_report: tuple[pd.DataFrame, str],
) -> None:
    _, document = small_report
    assert '<select id="f-therapist"><option value="">All therapists (2)</option>' in document
    assert '<option value="T1">T1</option><option value="T2">T2</option>' in document
    for tier in ("high", "medium", "low"):
        assert f'name="tier" value="{tier}" checked' in document
    assert _parse(document).shown_count == "Showing 4 of 4 clients"


def test_header_names_model_performance_data_and_validation(
    small_report: tuple[pd.DataFrame, str],
) -> None:
    _, document = small_report
    header = document[: document.index('id="caseload"')]
    for text in (
        "<h1>Weekly caseload report</h1>",
        "Generated 2026-11-22 09:30",
        "Sessions from 2026-01-05 to 2026-11-20",
        "<strong>dropout-lgbm</strong> version 7",
        "models:/dropout-lgbm@champion",
        "<th scope=row>ROC AUC</th><td class=num>0.781</td><td class=num>0.752 – 0.809</td>",
        "Calibration slope",
        "Rows quarantined</th><td class=num>40</td>",
        "dates_non_decreasing</th><td class=num>2</td>",
        "High: risk at least 40%.",
        "How to read this",
        "Not for use as",
        "PHQ-9 (0–27, higher is worse",
    ):
        assert text in header, text
    # Tier counts default to those of the scored frame: 2 high, 1 medium, 1 low.
    assert '<div class="tiercount t-high"><b>2</b>' in header
    assert '<div class="tiercount t-low"><b>1</b>' in header


def test_charts_are_capped_and_the_page_says_so() -> None:
    clients = [f"C{i}" for i in range(5)]
    scored = _scored(clients, ["T1"] * 5, [0.9, 0.7, 0.5, 0.3, 0.1])
    document = render_caseload_report(scored, _histories(clients), _meta(max_charts=2))
    assert document.count('<svg class="spark"') == 2
    assert "drawn for the top 2 clients by risk; the other 3 are listed without a chart" in document
    assert document.count("Chart omitted (rank &gt; 2)") == 3


def test_client_without_sessions_gets_a_placeholder_not_an_error() -> None:
    scored = _scored(["C1", "C2"], ["T1", "T1"], [0.5, 0.2])
    document = render_caseload_report(scored, _histories(["C1"]), _meta())
    assert document.count('<svg class="spark"') == 1
    assert "No sessions on record" in document


def test_empty_caseload_still_renders() -> None:
    scored = _scored(["C1"], ["T1"], [0.5]).iloc[:0]
    document = render_caseload_report(scored, _histories(["C1"]).iloc[:0], _meta())
    assert _parse(document).rows == []
    assert "Showing 0 of 0 clients" in document
    assert '<p id="no-rows" class="muted">' in document  # the "no clients" note is not hidden


def test_missing_column_is_named() -> None:
    scored = _scored(["C1"], ["T1"], [0.5]).drop(columns="risk_tier")
    with pytest.raises(ValueError, match="risk_tier"):
        render_caseload_report(scored, _histories(["C1"]), _meta())


def test_large_caseload_caps_charts_and_stays_compact() -> None:
    clients = [f"client-{i:05d}" for i in range(3000)]
    rng = np.random.default_rng(0)
    risks = np.sort(rng.uniform(0, 1, len(clients)))[::-1].tolist()
    scored = _scored(clients, [f"T{i % 40}" for i in range(len(clients))], risks)
    histories = _histories(clients, sessions=20)
    # render time is a benchmark figure (make bench), not a test assertion
    document = render_caseload_report(scored, histories, _meta())
    assert document.count('<svg class="spark"') == 2000  # default cap
    assert len(document.encode()) < 3000 * 3500, "report is too large per client"


# --- the browser test ------------------------------------------------------------------------

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def _chromium() -> str:
    found = os.environ.get("CHROMIUM_BIN") or shutil.which("chromium")
    found = found or shutil.which("chromium-browser")
    if not found or not os.access(found, os.X_OK):
        pytest.fail(
            "Chromium is not installed, so the HTML report cannot be checked in a browser. "
            "Run `bash scripts/ensure_chromium.sh` (as root) and try again."
        )
    return found


def _run_chromium(tmp_path: Path, name: str, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / f"profile-{name}"
    result = subprocess.run(
        [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert result.returncode == 0, f"chromium failed ({result.returncode}): {result.stderr[-2000:]}"
    return result


@pytest.mark.browser
def test_report_renders_and_filters_in_headless_chromium(tmp_path: Path) -> None:
    clients = ["C-07", "C-02", "C-11", "C-05", HOSTILE_CLIENT]
    therapists = ["T1", "Dr Ümit & Co", "T1", "Dr Ümit & Co", "T1"]
    scored = _scored(clients, therapists, [0.62, 0.45, 0.31, 0.15, 0.08])
    page = io.write_text(
        render_caseload_report(scored, _histories(clients), _meta()), tmp_path / "report.html"
    )
    url = page.as_uri()

    # The screenshot an analyst would look at: exists, full size, and not blank.
    png = tmp_path / "report.png"
    _run_chromium(tmp_path, "shot", f"--screenshot={png}", "--window-size=1400,1800", url)
    assert png.is_file()
    import matplotlib.image as mpimg

    pixels = mpimg.imread(png)[..., :3]
    assert pixels.shape[:2] == (1800, 1400)
    assert pixels.std() > 0.1, "screenshot is (nearly) one colour"
    assert pixels[:40].mean() < 0.35, "the dark report header band is missing (CSS not applied?)"
    distinct = np.unique((pixels * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(distinct) > 200, "screenshot has too few colours to hold text and charts"

    # After the page's script ran: every ranked row, in order, none hidden.
    dom = _parse(_run_chromium(tmp_path, "all", "--dump-dom", url).stdout)
    assert dom.table_attrs.get("data-filters-ready") == "true", "the filter script did not run"
    assert [r["client"] for r in dom.rows] == clients
    assert [r["data-rank"] for r in dom.rows] == ["1", "2", "3", "4", "5"]
    assert not any("hidden" in r for r in dom.rows)
    assert dom.shown_count == "Showing 5 of 5 clients"

    # A filter in the URL fragment (as a shared link would carry it) hides the other therapists.
    fragment = "#therapist=" + quote("Dr Ümit & Co", safe="")
    dom = _parse(_run_chromium(tmp_path, "ther", "--dump-dom", url + fragment).stdout)
    visible = [r["client"] for r in dom.rows if "hidden" not in r]
    assert visible == ["C-02", "C-05"]
    assert dom.shown_count == "Showing 2 of 5 clients"

    # Therapist and tier together.
    dom = _parse(
        _run_chromium(tmp_path, "tier", "--dump-dom", url + "#therapist=T1&tier=high").stdout
    )
    assert [r["client"] for r in dom.rows if "hidden" not in r] == ["C-07"]
    assert dom.shown_count == "Showing 1 of 5 clients"

    # Sorted by client id (as a shared link carries it): the rows move, ranks stay with them.
    dom = _parse(_run_chromium(tmp_path, "sort", "--dump-dom", url + "#sort=client-asc").stdout)
    assert [r["client"] for r in dom.rows] == sorted(clients, key=str.lower)
    assert [r["data-rank"] for r in dom.rows] == ["5", "2", "4", "1", "3"]
    assert dom.shown_count == "Showing 5 of 5 clients"

    # A search for part of a client id, with a therapist filter and a sort.
    dom = _parse(
        _run_chromium(
            tmp_path, "search", "--dump-dom", url + "#q=c-0&therapist=T1&sort=risk-asc"
        ).stdout
    )
    assert [r["client"] for r in dom.rows if "hidden" not in r] == ["C-07"]
    assert dom.shown_count == "Showing 1 of 5 clients"


def test_a_single_session_client_still_shows_its_ratings() -> None:
    document = render_caseload_report(
        _scored(["C1"], ["T1"], [0.5]), _histories(["C1"], sessions=1), _meta()
    )
    points = re.findall(r'<polyline class="l-client" points="([^"]+)"', document)
    assert points, "no client-alliance line drawn"
    first, second = points[0].split(" ")
    assert first == second  # a zero-length segment, drawn as a dot by its round caps


# Reasons of every shape and their markup, as the column-wise version of caseload_rows
# (before issue 16) made it: the per-reason version must give the same.
REASON_SHAPES = [
    (
        "↑ low alliance (raises risk by about 4 percentage points) | ↓ came (lowers risk slightly)",
        '<ul class="reasons"><li class="up">low alliance <small>(raises risk by about 4 percentage points)</small></li><li class="down">came <small>(lowers risk slightly)</small></li></ul>',  # noqa: E501
    ),
    (
        "  ↓ came (lowers risk slightly) | a (raises risk) (b) | x | y  ",
        '<ul class="reasons"><li class="down">came <small>(lowers risk slightly)</small></li><li>a (raises risk) (b)</li><li>x</li><li>y</li></ul>',  # noqa: E501
    ),
    (
        "<b>\"bold\"</b> & 'q' (raises risk by <1) | ↑  two spaces (raises risk strongly)\n",
        '<ul class="reasons"><li>&lt;b&gt;&quot;bold&quot;&lt;/b&gt; &amp; &#x27;q&#x27; <small>(raises risk by &lt;1)</small></li><li class="up"> two spaces <small>(raises risk strongly)</small></li></ul>',  # noqa: E501
    ),
    ("", '<span class="muted">No reason given</span>'),
    (None, '<span class="muted">No reason given</span>'),
    ("   ", '<span class="muted">No reason given</span>'),
    (
        "↑ low alliance (raises risk by about 4 percentage points)",
        '<ul class="reasons"><li class="up">low alliance <small>(raises risk by about 4 percentage points)</small></li></ul>',  # noqa: E501
    ),
    ("a |  | b", '<ul class="reasons"><li>a</li><li></li><li>b</li></ul>'),
    (
        "↑ ↓ both (raises risk) | ↓ (lowers risk) | (raises risk)\n | tail (raises risk)\n",
        '<ul class="reasons"><li class="up">↓ both <small>(raises risk)</small></li><li class="down">(lowers risk)</li><li>(raises risk)\n</li><li>tail <small>(raises risk)</small></li></ul>',  # noqa: E501
    ),
    ("\x1c lead | trail\u3000", '<ul class="reasons"><li>lead</li><li>trail</li></ul>'),
    (
        "x (raises risk (nested)) | y (lowers risk)) ",
        '<ul class="reasons"><li>x (raises risk (nested))</li><li>y (lowers risk))</li></ul>',
    ),
]


def test_reasons_markup_for_every_shape_of_reason():
    """Each distinct reason is marked up once: scoring's format, free text, hostile text,
    repeats, blanks and odd spacing come out as before."""
    from alliance_dropout.report.rows import _reasons

    given = pd.Series([reason for reason, _ in REASON_SHAPES])
    assert _reasons(given) == [markup for _, markup in REASON_SHAPES]
