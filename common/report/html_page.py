"""One self-contained HTML page: a title, a table, notes and PNG figures embedded as base64.

Nothing on the page refers to another file or to the network (styles inline, images as
``data:`` URLs), so the page opens offline and can be mailed or archived as one file.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["Figure", "render_page"]

_STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222;
       margin: 2em auto; max-width: 1150px; padding: 0 1.5em; }
h1 { font-size: 1.6em; margin-bottom: 0.1em; }
h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
.sub { color: #666; margin-top: 0; font-size: 0.9em; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 0.88em; }
th, td { padding: 0.35em 0.7em; border-bottom: 1px solid #e5e5e5; white-space: nowrap; }
th { background: #f4f4f4; text-align: left; border-bottom: 2px solid #ccc; }
td.right, th.right { text-align: right; font-variant-numeric: tabular-nums; }
tr:hover td { background: #fafafa; }
td.up { color: #1a7f37; font-weight: 600; }
td.down { color: #c0392b; font-weight: 600; }
td.warn { color: #c0392b; font-weight: 600; }
ul.legend { color: #444; font-size: 0.88em; padding-left: 1.2em; }
ul.legend li { margin: 0.25em 0; }
code { background: #f2f2f2; padding: 0 0.25em; border-radius: 3px; font-size: 0.95em; }
figure { margin: 1em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; margin-top: 0.3em; }
"""


@dataclass
class Figure:
    """A PNG image and its caption."""

    title: str
    png: bytes
    caption: str = ""


def _inline(text: str) -> str:
    """Escaped text, with ``code`` spans in backticks rendered as <code>."""
    parts = re.split(r"`([^`]*)`", text)
    return "".join(
        f"<code>{html.escape(p)}</code>" if i % 2 else html.escape(p) for i, p in enumerate(parts)
    )


def _table(
    header: Sequence[str],
    align: Sequence[str],
    rows: Sequence[Sequence[str]],
    cell_class: Callable[[str, str], str] | None,
) -> list[str]:
    """The table's lines; ``cell_class(column, text)`` gives an extra CSS class to a cell."""
    out = ['<div class="scroll"><table>', "<thead><tr>"]
    out += [f'<th class="{a}">{html.escape(h)}</th>' for h, a in zip(header, align)]
    out.append("</tr></thead><tbody>")
    for row in rows:
        cells = []
        for column, a, text in zip(header, align, row):
            extra = cell_class(column, text) if cell_class else ""
            css = f"{a} {extra}".strip()
            cells.append(f'<td class="{css}">{html.escape(text)}</td>')
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table></div>")
    return out


def render_page(
    title: str,
    subtitle: str,
    header: Sequence[str],
    align: Sequence[str],
    rows: Sequence[Sequence[str]],
    legend: Sequence[str] = (),
    figures: Sequence[Figure] = (),
    cell_class: Callable[[str, str], str] | None = None,
) -> str:
    """The page's HTML: title, subtitle, table, legend items (backticks as code), figures."""
    lines = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{_STYLE}</style>",
        "</head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="sub">{_inline(subtitle)}</p>',
        "<h2>Table</h2>",
        *_table(header, align, rows, cell_class),
    ]
    if legend:
        lines.append('<ul class="legend">')
        lines += [f"<li>{_inline(item)}</li>" for item in legend]
        lines.append("</ul>")
    for fig in figures:
        data = base64.b64encode(fig.png).decode("ascii")
        lines += [
            f"<h2>{html.escape(fig.title)}</h2>",
            "<figure>",
            f'<img alt="{html.escape(fig.title)}" src="data:image/png;base64,{data}">',
            f"<figcaption>{_inline(fig.caption)}</figcaption>" if fig.caption else "",
            "</figure>",
        ]
    lines.append("</body></html>")
    return "\n".join(line for line in lines if line) + "\n"
