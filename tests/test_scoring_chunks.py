"""Scoring's client chunks (issue 16): rows grouped by client are cut into slices, anything else
by masks; both give every client's rows whole, in the order given."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alliance_dropout import contract as c
from alliance_dropout.scoring import client_chunks


@pytest.mark.parametrize("shuffled", [False, True])
def test_client_chunks_keep_each_clients_rows_together_in_order(shuffled):
    rng = np.random.default_rng(4)
    ids = np.repeat([f"c{k:03d}" for k in range(23)], rng.integers(1, 6, 23))
    sessions = pd.DataFrame({c.CLIENT_ID: pd.Series(ids, dtype="str"), "row": np.arange(len(ids))})
    if shuffled:
        sessions = sessions.sample(frac=1.0, random_state=1)
    chunks = client_chunks(sessions, 5)
    assert len(chunks) == 5
    codes = pd.factorize(sessions[c.CLIENT_ID])[0]
    for k, chunk in enumerate(chunks):
        expected = sessions[codes // 5 == k]
        pd.testing.assert_frame_equal(chunk, expected)
