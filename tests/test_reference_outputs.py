"""Speed changes change no output (issue 16): reading, validation, features, reasons, report and
written files on a fixed messy caseload give the digests recorded in
``tests/data/reference_outputs.json`` (see ``tests/reference_outputs.py``)."""

from __future__ import annotations

import json

from tests import reference_outputs as ref


def test_outputs_are_bit_identical_to_the_recorded_reference(tmp_path):
    stored = json.loads(ref.STORED.read_text(encoding="utf-8"))
    now = ref.compute(tmp_path)
    changed = ref.differences(stored, now)
    assert not changed, (
        "outputs differ from the recorded reference: "
        + ", ".join(changed)
        + " (if the change is meant: python -m tests.reference_outputs --write)"
    )
