"""bench/RESULTS.md: each benchmark owns one section between `<!-- bench:NAME:start -->` and
`<!-- bench:NAME:end -->` and rewrites only that. Hand-written notes between
`<!-- bench:NAME:notes:start -->` and `...:notes:end -->` inside a section survive a re-run."""

from __future__ import annotations

from pathlib import Path


def markers(name: str) -> tuple[str, str, str, str]:
    return (f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->",
            f"<!-- bench:{name}:notes:start -->", f"<!-- bench:{name}:notes:end -->")


def write_section(path: Path, name: str, section: str) -> None:
    """Replace section `name` (which `section` must open and close with its markers)."""
    start, end, notes_start, notes_end = markers(name)
    if not (section.startswith(start) and section.rstrip().endswith(end)):
        raise ValueError(f"section {name!r} must start with {start} and end with {end}")
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        old, tail = rest.split(end, 1)
        if notes_start in old and notes_end in old:
            notes = notes_start + old.split(notes_start, 1)[1].split(notes_end, 1)[0] + notes_end
            if notes_start in section and notes_end in section:
                before, after = section.split(notes_start, 1)
                section = before + notes + after.split(notes_end, 1)[1]
            else:
                section = section.replace(end, notes + "\n" + end)
        text = head + section.rstrip("\n") + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n"
    path.write_text(text)
