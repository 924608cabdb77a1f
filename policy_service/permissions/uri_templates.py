"""Does a resource URI fall under a resource template (RFC 6570)? Pure, so tested alone.

A resources/read names a URI; when no listed resource has it, the URI is allowed only if
it matches one of the toolkit's catalogued templates, and that template's permission
applies. Matching is conservative: a simple `{var}` never crosses `/`, `?` or `#`, so a
template cannot be stretched over a path the owner did not publish.
"""

from __future__ import annotations

import re
from functools import lru_cache

_EXPRESSION = re.compile(r"\{([+#./;?&]?)([^{}]*)\}")
# What each RFC 6570 operator may expand to.
_OPERATOR_PATTERN = {
    "": r"[^/?#]+",  # simple string: one path segment's worth
    "+": r".+",  # reserved: may span segments
    "#": r"(?:#.*)?",
    ".": r"(?:\.[^/?#]*)*",
    "/": r"(?:/[^/?#]*)*",
    ";": r"(?:;[^/?#]*)*",
    "?": r"(?:\?[^#]*)?",
    "&": r"(?:&[^#]*)?",
}


@lru_cache(maxsize=4096)
def _compiled(template: str) -> re.Pattern[str] | None:
    parts: list[str] = []
    position = 0
    for match in _EXPRESSION.finditer(template):
        parts.append(re.escape(template[position : match.start()]))
        parts.append(_OPERATOR_PATTERN[match.group(1)])
        position = match.end()
    rest = template[position:]
    if "{" in rest or "}" in rest:
        return None  # not a well-formed template: matches nothing (fail closed)
    parts.append(re.escape(rest))
    return re.compile("".join(parts), re.DOTALL)


def matches(template: str, uri: str) -> bool:
    """True when expanding `template` with some values could give exactly `uri`."""
    pattern = _compiled(template)
    return pattern is not None and pattern.fullmatch(uri) is not None
