"""Human identifiers: ticket references such as `TD-1042`, and department slugs."""

from __future__ import annotations

import re
import unicodedata

_REF = re.compile(r"^\s*\[?#?\s*(?:(?P<prefix>[A-Za-z][A-Za-z0-9]{0,9})-)?(?P<number>\d{1,18})\]?\s*$")


def format_ref(prefix: str, ticket_id: int) -> str:
    return f"{prefix}-{ticket_id}"


def parse_ref(prefix: str, text: str) -> int | None:
    """The ticket id in `TD-1042`, `#TD-1042`, `[#TD-1042]` or `1042`; None when it is not ours."""
    match = _REF.match(text)
    if match is None:
        return None
    given = match.group("prefix")
    if given is not None and given.upper() != prefix.upper():
        return None
    return int(match.group("number"))


def slugify(name: str) -> str:
    """`Technical Support` -> `technical-support`; letters of every script are kept."""
    folded = unicodedata.normalize("NFKC", name).casefold()
    words = re.findall(r"\w+", folded)
    return "-".join(words)[:120]
