"""File names as text a person can read: printable, unambiguous, valid UTF-8."""

from __future__ import annotations


def printable_name(name: str) -> str:
    """``name`` as valid, printable UTF-8 that stands for this one name only.

    Undecodable bytes (kept by Python as surrogates) become ``\\xNN``, control characters
    their escapes (``\\n``, ``\\t``, ``\\x7f``) and a backslash is always doubled
    (``\\\\``): the file ``new<LF>line.jpg`` shows as ``new\\nline.jpg`` and a
    file literally named ``new\\nline.jpg`` as ``new\\\\nline.jpg`` — never the same text.
    Printable names without a backslash (the usual case) are shown as they are.
    """
    if name.isprintable() and "\\" not in name:
        return name
    return "".join(_escaped(ch) for ch in name)


def _escaped(ch: str) -> str:
    code = ord(ch)
    if ch == "\\":
        return "\\\\"
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte, as os.fsdecode keeps it
        return f"\\x{code - 0xDC00:02x}"
    return ch if ch.isprintable() else repr(ch)[1:-1]


def is_utf8_name(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
