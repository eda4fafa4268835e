"""A client's file name is metadata only: what `safe_name` keeps of it can never name a path."""

from __future__ import annotations

import pytest

from ingestq.api.uploads import MAX_NAME, safe_name


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "passwd"),
        ("/etc/shadow", "shadow"),
        ("..\\..\\windows\\win.ini", "win.ini"),
        ("C:\\Users\\me\\notes.md", "notes.md"),
        ("dir/", "upload"),
        ("..", "upload"),
        (".", "upload"),
        ("...", "upload"),
        ("", "upload"),
        ("a\x00b\nc.md", "abc.md"),
        (".bashrc", ".bashrc"),
        ("meeting 10:30.md", "meeting 10:30.md"),
        ("x" * 300 + ".pdf", ("x" * 300 + ".pdf")[-MAX_NAME:]),
        ("evil\u202egpj.exe", "evilgpj.exe"),  # right-to-left override: would display as evilexe.jpg
        ("in\u200bvoice.pdf", "invoice.pdf"),  # zero-width space
        ("..\uff0f..\uff0fetc\uff0fpasswd", "passwd"),  # fullwidth solidus
        ("a\u2028b.md", "ab.md"),  # line separator
        ("/" * 5000, "upload"),
        ("\x00", "upload"),
    ],
)
def test_only_the_last_component_is_kept(given: str, kept: str) -> None:
    name = safe_name(given)
    assert name == kept
    assert "/" not in name
    assert "\\" not in name
    assert name not in ("", ".", "..")
