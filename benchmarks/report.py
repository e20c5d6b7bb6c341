"""What every benchmark script shares: writing its own section of docs/benchmarks.md."""

import pathlib


def write_section(path, section, begin_marker, end_marker):
    """Replaces the section between the markers in ``path`` (or appends it), atomically.

    The file is re-read right before writing, since other benchmarks write their own
    sections of the same file.

    Args:
        path: The Markdown file (``docs/benchmarks.md``).
        section: The new section, starting with ``begin_marker`` and ending with ``end_marker``.
        begin_marker: The comment line that opens this benchmark's section.
        end_marker: The comment line that closes it.
    """
    path = pathlib.Path(path)
    text = path.read_text(encoding="utf-8") if path.is_file() else "# Benchmarks\n"
    if begin_marker in text and end_marker in text:
        before, rest = text.split(begin_marker, 1)
        text = before + section + rest.split(end_marker, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    temporary_path = path.with_name(f".{path.name}.tmp")
    temporary_path.write_text(text, encoding="utf-8")
    temporary_path.replace(path)
