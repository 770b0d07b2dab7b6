"""The report as a reader uses it: reasons with their direction, the glossary, what a tier
means, and (in a real browser) the client search, sortable columns and charts opening large."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from alliance_dropout import io
from alliance_dropout.report import render_caseload_report
from tests.cdp import Browser
from tests.test_report import (
    CHROMIUM_FLAGS,
    HOSTILE_CLIENT,
    HOSTILE_REASON,
    _chromium,
    _histories,
    _meta,
    _scored,
)


@pytest.fixture
def small_report() -> tuple[pd.DataFrame, str]:
    clients = ["C-07", "C-02", "C-11", "C-05"]
    scored = _scored(clients, ["T1", "T2", "T1", "T2"], [0.62, 0.45, 0.31, 0.08])
    return scored, render_caseload_report(scored, _histories(clients), _meta())


DIRECTED_REASONS = (
    "↑ an alliance rupture is not yet repaired (raises risk by about 6 percentage points) | "
    "↓ client's latest alliance rating 4.6 of 5 (lowers risk by about 2 percentage points)"
)


def test_reasons_show_their_direction_and_size() -> None:
    scored = _scored(["C1", "C2"], ["T1", "T1"], [0.5, 0.1])
    scored.loc[0, "top_reasons"] = DIRECTED_REASONS
    scored.loc[1, "top_reasons"] = f"↑ {HOSTILE_REASON} (raises risk <b>x</b>)"
    document = render_caseload_report(scored, _histories(["C1", "C2"]), _meta())
    assert (
        '<ul class="reasons"><li class="up">an alliance rupture is not yet repaired '
        "<small>(raises risk by about 6 percentage points)</small></li>"
        '<li class="down">client&#x27;s latest alliance rating 4.6 of 5 '
        "<small>(lowers risk by about 2 percentage points)</small></li></ul>"
    ) in document
    # markup is only ever added around escaped text
    assert HOSTILE_REASON not in document and "<b>x</b>" not in document
    assert (
        '<li class="up">&lt;img src=x onerror=alert(3)&gt; '
        "<small>(raises risk &lt;b&gt;x&lt;/b&gt;)</small>"
    ) in document


def test_glossary_explains_the_words_of_the_reasons(small_report: tuple[pd.DataFrame, str]) -> None:
    _, document = small_report
    glossary = document[document.index('id="glossary"') : document.index("</details>")]
    for term in (
        "Dropout risk",
        "↑ raises the risk, ↓ lowers it",
        "percentage points",
        "Better / worse than expected",
        "how clients who started at the same PHQ-9 score",
        "learned from the clients the model was trained on",
        "On PHQ-9, better means lower.",
        "Alliance",
        "Rupture, repaired",
        "Reliable change",
        "of at least 6 points",
        "PHQ-9 at or above 10",
        "Sudden gain",
        "Risk tier",
        "Flags",
    ):
        assert term in glossary, term


def test_tiers_are_explained_in_plain_words() -> None:
    clients = ["C1", "C2", "C3", "C4"]
    scored = _scored(clients, ["T1"] * 4, [0.62, 0.45, 0.31, 0.08])
    relative = render_caseload_report(
        scored,
        _histories(clients),
        _meta(tier_definition="high = the riskiest 10% of clients scored, medium = the next 20%"),
    )
    assert "Tiers are <strong>relative to this caseload</strong>" in relative
    assert '"high" means among the clients with the highest estimated risk' in relative
    # each tier's range of risk in this caseload
    assert "<span>high</span><small>risk 45–62%</small>" in relative
    assert "<span>low</span><small>risk 8%</small>" in relative
    absolute = render_caseload_report(scored, _histories(clients), _meta(tier_mode="probability"))
    assert "Tiers are <strong>fixed cut-offs on the estimated risk</strong>" in absolute
    assert "relative to this caseload" not in absolute


def test_table_has_search_sortable_columns_and_a_chart_dialog(
    small_report: tuple[pd.DataFrame, str],
) -> None:
    _, document = small_report
    assert '<input type="search" id="f-search"' in document
    for key in ("rank", "client", "therapist", "asof", "risk"):
        assert f'data-sort="{key}"' in document, key
    assert (
        '<th scope="col" data-sort="rank" aria-sort="ascending"><button type="button"' in document
    )
    first_row = document[document.index('data-rank="1"') : document.index('data-rank="2"')]
    assert '<button type="button" class="chartbtn"' in first_row
    assert 'aria-label="Enlarge the chart of client C-07"' in first_row
    assert '<dialog id="chart-dialog"' in document


# --- in a real browser ------------------------------------------------------------------------

SHOWN = "document.getElementById('shown-count').textContent"
ROWS = "Array.from(document.querySelectorAll('#caseload tbody tr'))"
VISIBLE = f"{ROWS}.filter(r => !r.hidden).map(r => r.querySelector('.cid').textContent)"
ORDER = f"{ROWS}.map(r => r.querySelector('.cid').textContent)"
DIALOG_OPEN = "document.getElementById('chart-dialog').open"


@pytest.mark.browser
def test_search_sort_and_enlarged_chart_in_headless_chromium(tmp_path: Path) -> None:
    """Typed search, clicked column headings and a clicked chart, as a user would do them."""
    clients = ["C-07", "C-02", "C-11", "C-05", HOSTILE_CLIENT]
    therapists = ["T1", "Dr Ümit & Co", "T1", "Dr Ümit & Co", "T1"]
    scored = _scored(clients, therapists, [0.62, 0.45, 0.31, 0.15, 0.08])
    scored.loc[0, "top_reasons"] = DIRECTED_REASONS
    page = io.write_text(
        render_caseload_report(scored, _histories(clients), _meta()), tmp_path / "report.html"
    )
    with Browser(_chromium(), CHROMIUM_FLAGS, tmp_path / "profile-cdp") as browser:
        browser.open(page.as_uri())
        browser.wait_for("document.getElementById('caseload').dataset.filtersReady === 'true'")
        assert browser.js(SHOWN) == "Showing 5 of 5 clients"

        # Search: typing part of an id (any case) keeps the matching clients only ...
        browser.type_into("#f-search", "c-0")
        browser.wait_for(f"{SHOWN} === 'Showing 3 of 5 clients'")
        assert browser.js(VISIBLE) == ["C-07", "C-02", "C-05"]
        # ... together with the therapist filter; the search text stays out of the URL.
        browser.js(
            "var s = document.getElementById('f-therapist'); s.value = 'T1';"
            " s.dispatchEvent(new Event('change'))"
        )
        assert browser.js(VISIBLE) == ["C-07"]
        assert "c-0" not in browser.js("location.hash")
        browser.js(
            "var s = document.getElementById('f-therapist'); s.value = '';"
            " s.dispatchEvent(new Event('change'))"
        )
        browser.js("document.getElementById('f-search').select()")
        browser.key("Backspace", "Backspace", 8)
        browser.wait_for(f"{SHOWN} === 'Showing 5 of 5 clients'")
        browser.type_into("#f-search", "</script>")  # text, not markup
        browser.wait_for(f"{SHOWN} === 'Showing 1 of 5 clients'")
        assert browser.js(VISIBLE) == [HOSTILE_CLIENT]
        browser.js("document.getElementById('f-search').select()")
        browser.key("Backspace", "Backspace", 8)
        browser.wait_for(f"{SHOWN} === 'Showing 5 of 5 clients'")

        # Sorting: a click on "Client" sorts by id, a second click reverses it.
        browser.click("th[data-sort=client] button")
        by_id = sorted(clients, key=str.lower)
        assert browser.js(ORDER) == by_id
        assert browser.js("document.querySelector('th[data-sort=client]').ariaSort") == (
            "ascending"
        )
        assert browser.js("document.querySelector('th[data-sort=rank]').ariaSort") is None
        assert browser.js("location.hash") == "#sort=client-asc"
        browser.click("th[data-sort=client] button")
        assert browser.js(ORDER) == by_id[::-1]
        assert browser.js("location.hash") == "#sort=client-desc"
        # Risk sorts highest first on the first click: the ranking order again.
        browser.click("th[data-sort=risk] button")
        assert browser.js(ORDER) == clients
        browser.click("th[data-sort=therapist] button")
        assert browser.js(ORDER) == ["C-02", "C-05", "C-07", "C-11", HOSTILE_CLIENT]
        # The rank shown stays the client's risk rank whatever the order.
        ranks = (
            "Array.from(document.querySelectorAll('#caseload tbody tr')).map(r => r.dataset.rank)"
        )
        assert browser.js(ranks) == ["2", "4", "1", "3", "5"]

        # A chart opens large, with the client's risk and reasons; Escape closes it.
        browser.click("tr[data-rank='1'] button.chartbtn")
        browser.wait_for(DIALOG_OPEN)
        title = browser.js("document.getElementById('chart-dialog-title').textContent")
        assert title == "Client C-07 · therapist T1 · risk 62% (high)"
        assert (
            browser.js("document.querySelectorAll('#chart-dialog-body svg.spark.big').length") == 1
        )
        width = browser.js(
            "document.querySelector('#chart-dialog-body svg').getBoundingClientRect().width"
        )
        small = browser.js(
            "document.querySelector('tr[data-rank=\"1\"] svg.spark').getBoundingClientRect().width"
        )
        assert width > 2 * small, (width, small)
        assert "an alliance rupture is not yet repaired" in browser.js(
            "document.getElementById('chart-dialog-reasons').textContent"
        )
        browser.key("Escape", "Escape", 27)
        browser.wait_for(f"!{DIALOG_OPEN}")
        browser.click("tr[data-rank='5'] button.chartbtn")
        browser.wait_for(DIALOG_OPEN)
        assert HOSTILE_CLIENT in browser.js(
            "document.getElementById('chart-dialog-title').textContent"
        )
        browser.click("#chart-dialog-close")
        browser.wait_for(f"!{DIALOG_OPEN}")

        errors = [e for e in browser.events if e.get("method") == "Runtime.exceptionThrown"]
        assert not errors, errors
