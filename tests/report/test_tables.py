from actionrec.report.tables import markdown_table, text_table


def test_text_table_pads_and_right_aligns_numeric_columns():
    text = text_table(["model", "ms"], [["tsn", "1.5"], ["stnet-r101", "-"], ["gst", "+12.25"]])
    lines = text.splitlines()
    assert lines[0] == "model           ms"
    assert lines[1] == "----------  ------"
    assert lines[2] == "tsn            1.5"
    assert lines[3] == "stnet-r101       -"


def test_markdown_table_marks_numeric_columns():
    md = markdown_table(["model", "ms"], [["tsn", "1.5"], ["gst", "-"]])
    assert md.splitlines() == ["| model | ms |", "| --- | ---: |", "| tsn | 1.5 |", "| gst | - |"]
