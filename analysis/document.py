"""A report as a list of blocks, rendered to Markdown (images as relative links) and to one self-contained
HTML file (images embedded as base64 data URIs). Inline markup understood in both: ``**bold**`` and
```code```."""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Table:
    header: list[str]
    rows: list[list[str]]
    numeric_from: int = 1  # columns from this index on are right-aligned


@dataclass(frozen=True)
class Image:
    path: Path  # a PNG written next to the report
    caption: str


Block = Heading | Paragraph | Table | Image


def to_markdown(blocks: list[Block], base: Path) -> str:
    parts: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            parts.append(f"{'#' * b.level} {b.text}")
        elif isinstance(b, Paragraph):
            parts.append(b.text)
        elif isinstance(b, Table):
            parts.append(_markdown_table(b))
        else:
            rel = Path(b.path).resolve().relative_to(base.resolve()).as_posix()
            parts.append(f"![{b.caption}]({rel})\n\n*{b.caption}*")
        parts.append("")
    return "\n".join(parts)


def _markdown_table(t: Table) -> str:
    def cell(c: str) -> str:
        return c.replace("|", "\\|").replace("\n", " ")

    align = ["---:" if i >= t.numeric_from else ":---" for i in range(len(t.header))]
    lines = ["| " + " | ".join(cell(c) for c in t.header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in t.rows]
    return "\n".join(lines)


def _inline(text: str) -> str:
    out = html.escape(text, quote=False)
    out = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", out)
    out = re.sub(r"`(.+?)`", r"<code>\1</code>", out)
    return out


STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1200px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}
th,td{border:1px solid #ccc;padding:0.3em 0.6em}th{background:#f3f3f3}td.num{text-align:right}
tr:nth-child(even){background:#fafafa}code{background:#f3f3f3;padding:0 0.2em}
figure{margin:1.5em 0}img{max-width:100%;border:1px solid #eee}figcaption{font-style:italic;color:#555}
"""


def to_html(blocks: list[Block], title: str) -> str:
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{STYLE}</style></head><body>"]
    for b in blocks:
        if isinstance(b, Heading):
            parts.append(f"<h{b.level}>{_inline(b.text)}</h{b.level}>")
        elif isinstance(b, Paragraph):
            parts.append(f"<p>{_inline(b.text)}</p>")
        elif isinstance(b, Table):
            head = "".join(f"<th>{_inline(c)}</th>" for c in b.header)
            body = "".join(
                "<tr>" + "".join(
                    f"<td class='num'>{_inline(c)}</td>" if i >= b.numeric_from else f"<td>{_inline(c)}</td>"
                    for i, c in enumerate(row)
                ) + "</tr>"
                for row in b.rows
            )
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        else:
            data = base64.b64encode(Path(b.path).read_bytes()).decode("ascii")
            parts.append(f"<figure><img alt='{html.escape(b.caption)}' src='data:image/png;base64,{data}'>"
                         f"<figcaption>{_inline(b.caption)}</figcaption></figure>")
    parts.append("</body></html>")
    return "\n".join(parts)
