"""Text that may reach an XML document (CAP): what XML 1.0 allows, checked at input and enforced at output.

XML 1.0 (§2.2, production ``Char``) allows tab, newline, carriage return and
the code points from U+0020 up, except the surrogates (U+D800-U+DFFF) and
U+FFFE/U+FFFF. Anything else makes the document unparsable, and lxml refuses to
write it at all. Every officer- or admin-given text that can end up in CAP (area
names, notes, display names) is checked at input (:data:`XmlText`, a 422 that
names the character); what is already stored, or comes from elsewhere, is made
safe when written (:func:`xml_safe` puts U+FFFD in place of each character that
is not allowed), so one bad value cannot break the documents that inherit it.

Examples:
    >>> xml_text_problem("善福寺川\\tZenpukuji")
    >>> xml_text_problem("bad\\x07bell")
    'character U+0007 at position 3 is not allowed in XML text'
    >>> xml_safe("bad\\x07bell \\ud800 \\uffff")
    'bad\\ufffdbell \\ufffd \\ufffd'
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
#: Put in place of a character XML cannot carry.
REPLACEMENT = "\ufffd"


def xml_text_problem(text: str) -> str | None:
    """What makes ``text`` unfit for XML (the first such character), or ``None``."""
    found = _NOT_XML.search(text)
    if found is None:
        return None
    return f"character U+{ord(found.group()):04X} at position {found.start()} is not allowed in XML text"


def xml_safe(text: str) -> str:
    """``text`` with every character XML 1.0 does not allow replaced by U+FFFD."""
    return _NOT_XML.sub(REPLACEMENT, text)


def _check(text: str) -> str:
    problem = xml_text_problem(text)
    if problem is not None:
        raise ValueError(f"{problem} (control characters other than tab, newline and carriage return, unpaired "
                         "surrogates and U+FFFE/U+FFFF are refused)")
    return text


#: A string that XML 1.0 can carry: for every input text that may reach CAP.
XmlText = Annotated[str, AfterValidator(_check)]

__all__ = ["REPLACEMENT", "XmlText", "xml_safe", "xml_text_problem"]
