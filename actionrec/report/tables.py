"""Tables for the terminal and for Markdown files, from the same rows of cells."""

from __future__ import annotations


def _is_number(cell: str) -> bool:
    return cell.lstrip("+-").replace(".", "", 1).replace("%", "").strip().isdigit()


def _numeric_columns(rows: list[list[str]]) -> list[bool]:
    """A column is numeric when every cell is a number or "-" (and at least one is a number)."""
    columns = list(zip(*rows, strict=True)) if rows else []
    return [any(map(_is_number, col)) and all(_is_number(c) or c == "-" for c in col)
            for col in columns]


def text_table(headers: list[str], rows: list[list[str]]) -> str:
    """Columns padded to their widest cell; numeric columns right-aligned."""
    widths = [max(len(c) for c in column) for column in zip(headers, *rows, strict=True)]
    right = _numeric_columns(rows) or [False] * len(headers)

    def line(cells):
        return "  ".join(c.rjust(w) if r else c.ljust(w)
                         for c, w, r in zip(cells, widths, right, strict=True)).rstrip()

    return "\n".join([line(headers), "  ".join("-" * w for w in widths), *map(line, rows)])


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    right = _numeric_columns(rows) or [False] * len(headers)
    align = ["---:" if r else "---" for r in right]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in [headers, align, *rows])
