import pytest

from actionrec.analysis.paper import PAPER_ROWS, compare, render, rows_for, rows_from
from actionrec.models.registry import MODELS

TABLES = ["STM Table 8", "STM Table 9", "GST Table 1", "GST Table 2", "GST Table 3",
          "StNet Table 1", "StNet Table 3", "MSTI-Net Table 3"]


@pytest.fixture(scope="module")
def results():
    return compare(PAPER_ROWS)


def diff(paper, ours):
    return abs(ours / paper - 1)


def test_every_table_of_the_issue_has_rows_and_every_row_is_built_or_says_why():
    for table in TABLES:
        assert rows_from(table), table
    for row in PAPER_ROWS:
        assert row.params_m is not None or row.gmacs is not None, row.label
        if row.model is None:
            assert row.unbuilt and not row.reading, row.label
        else:
            assert row.model in MODELS and not row.unbuilt, row.label


def test_checked_rows_match_within_2_percent(results):
    checked = [r for r in results if r["row"].checked]
    assert len(checked) >= 25
    for r in checked:
        row = r["row"]
        if row.params_m is not None:
            assert diff(row.params_m, r["params_m"]) <= 0.02, row
        if row.gmacs is not None:
            assert diff(row.gmacs, r["gmacs"]) <= 0.02, row


def test_a_reading_is_only_given_where_ours_really_differs(results):
    """A stale reading (the model changed and now matches) fails here."""
    readings = [r for r in results if r["row"].reading]
    assert {r["row"].model for r in readings} == {"c3d", "p3d", "temporal_conv", "msti"}
    for r in readings:
        row = r["row"]
        worst = max(diff(paper, ours) for paper, ours in
                    [(row.params_m, r["params_m"]), (row.gmacs, r["gmacs"])] if paper is not None)
        assert worst > 0.05, row


def test_unbuilt_rows_are_listed_not_dropped(results):
    text = render(results)
    unbuilt = [r for r in PAPER_ROWS if r.model is None]
    assert any("InceptionResNet-V2" in r.label for r in unbuilt)
    for row in unbuilt:
        line = next(line for line in text.splitlines() if row.label in line
                    and row.describe_input() in line)
        assert line.split()[-1].startswith("[")  # a footnote saying why
    assert "not built: InceptionResNet-V2 backbone" in text


def test_gst_table_1_counts_one_replaced_conv_of_our_resnet50(results):
    block = {r["row"].label.split(":")[0]: r["params_m"] for r in results
             if r["row"].source == "GST Table 1"}
    assert block["C2D"] == pytest.approx(9 * 256 * 256 / 1e6)
    assert block["GST"] == pytest.approx(block["C2D"] * 0.75)
    assert block["P3D"] == pytest.approx((12 * 256 * 256 + 2 * 256) / 1e6)  # + its inner BN


def test_flops_cli_rows_are_whole_models():
    assert all(not r.part for r in rows_for("gst")) and rows_for("gst")


def test_meta_device_counts_equal_real_counts():
    import torch

    from actionrec.analysis.paper import build
    from actionrec.report.flops import count_macs, count_params

    (row,) = [r for r in rows_from("STM Table 8") if r.options.get("temporal_conv")]
    real = build(row)
    with torch.device("meta"):
        meta = build(row)
    assert count_params(real[0]) == count_params(meta[0])
    assert count_macs(*real) == count_macs(*meta)
