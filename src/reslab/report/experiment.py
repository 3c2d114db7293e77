"""Experiment reports: one section per claim (claim, figures, table, verdict), written as
report.md and as a self-contained report.html with the figures inlined."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path

from reslab.io import atomic_write_text
from reslab.report.markdown import markdown_table
from reslab.run.directory import RunDir


@dataclass
class Section:
    title: str
    claim: str  # empty for a section that only reports, such as the runs' times
    verdict: str  # computed from the data: supported / not supported / inconclusive ...
    evidence: str  # one or two sentences with the numbers behind the verdict
    figures: list[Path] = field(default_factory=list)  # PNGs in the report folder
    headers: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    captions: list[str] = field(default_factory=list)  # one per figure; else the title
    # An open verdict (inconclusive at this budget): the runs it rests on, by their grid names,
    # where more seeds may decide it (`reslab experiment --more-seeds`); empty otherwise.
    open_runs: list[str] = field(default_factory=list)

    def caption(self, i: int) -> str:
        return self.captions[i] if i < len(self.captions) else self.title


def _rel(path: Path, root: Path | None) -> str:
    try:
        return path.relative_to(root).as_posix() if root else path.name
    except ValueError:
        return path.as_posix()


def to_markdown(title: str, intro: str, sections: list[Section], root: Path | None = None) -> str:
    """Figures are linked relative to `root`, the folder report.md is written to."""
    parts = [f"# {title}\n\n{intro}\n"]
    for s in sections:
        figs = "".join(f"![{s.caption(i)}]({_rel(f, root)})\n\n" for i, f in enumerate(s.figures))
        table = markdown_table(s.headers, s.rows) + "\n" if s.headers else ""
        claim = f"**Claim.** {s.claim}\n\n" if s.claim else ""
        verdict = f"**Verdict: {s.verdict}.** " if s.verdict else ""
        parts.append(f"## {s.title}\n\n{claim}{verdict}{s.evidence}\n\n{figs}{table}")
    return "\n".join(parts)


def _html_table(headers: list[str], rows: list[list[str]]) -> str:
    if not headers:
        return ""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _img(path: Path, caption: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'


def to_html(title: str, intro: str, sections: list[Section]) -> str:
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto;line-height:1.45}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;"
        "padding:3px 8px;text-align:right}img{max-width:100%}.v{font-weight:bold}"
    )
    parts = [
        f"<!doctype html><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style><h1>{html.escape(title)}</h1><p>{html.escape(intro)}</p>"
    ]
    for s in sections:
        claim = f"<p><b>Claim.</b> {html.escape(s.claim)}</p>" if s.claim else ""
        verdict = f"<p class='v'>Verdict: {html.escape(s.verdict)}.</p>" if s.verdict else ""
        parts.append(
            f"<h2>{html.escape(s.title)}</h2>{claim}{verdict}<p>{html.escape(s.evidence)}</p>"
            + "".join(_img(f, s.caption(i)) for i, f in enumerate(s.figures))
            + _html_table(s.headers, s.rows)
        )
    return "\n".join(parts)


def write_experiment_report(out: Path, title: str, intro: str, sections: list[Section]) -> Path:
    """report.md and report.html in `out`, named as a run directory names its report."""
    folder = RunDir(out)
    atomic_write_text(folder.report_html, to_html(title, intro, sections))
    return atomic_write_text(folder.report, to_markdown(title, intro, sections, out))
