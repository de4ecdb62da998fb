"""Quoted-history trimming: the part of a reply body worth showing, with earlier mails cut off.

Only the display copy is trimmed; the stored text keeps everything. Every pattern is
anchored at a line start and bounded in length, and only the head of very long bodies
is searched, so hostile bodies cost linear time (a reply parser we tried took minutes on
a few kilobytes of repeated "On ").
"""

from __future__ import annotations

import re

# Quotes further down than this are left in place: display trimming is a courtesy and
# must stay cheap on a 50 MB body.
_SEARCH_WINDOW = 128 * 1024

# "On <date>, <name> wrote:" and its translations; the attribution may wrap over lines,
# which `_attribution_start` walks back over.
_WROTE_WORDS = (
    "wrote",
    "writes",
    "schrieb",
    "a écrit",
    "a ecrit",
    "escribió",
    "escribio",
    "ha scritto",
    "schreef",
    "skrev",
    "kirjoitti",
    "escreveu",
    "napsal",
    "napisał",
    "pisze",
    "írta",
    "yazdı",
    "написал",
    "написала",
    "написал\\(а\\)",
    "пишет",
    "写道",
    "寫道",
    "書きました",
    "작성",
)
# German, Dutch and Scandinavian clients put the name after the verb ("… schrieb Name <a@b>:").
_ATTRIBUTION = re.compile(
    r"[^\n]{0,400}?(?:" + "|".join(_WROTE_WORDS) + r")(?:[ \t][^\n]{0,300})?[:：][ \t]*",
    re.IGNORECASE,
)
_DATE_OR_TIME = re.compile(r"\d{1,4}[./\-年]\d{1,2}|\d{1,2}:\d{2}|\b(?:19|20)\d{2}\b")
# Cheap first pass: only lines ending in a colon can be attributions.
_COLON_LINE_END = re.compile(r"[:：][ \t]*$", re.MULTILINE)

_ORIGINAL_MESSAGE = re.compile(
    r"^[ \t>]*-{2,}[ \t]*(?:original message|ursprüngliche nachricht|message d'origine|mensaje original"
    r"|messaggio originale|oorspronkelijk bericht|исходное сообщение|originalmeddelande|opprinnelig melding"
    r"|alkuperäinen viesti|wiadomość oryginalna|mensagem original|původní zpráva)[ \t]*-{2,}[ \t]*$",
    re.MULTILINE | re.IGNORECASE,
)

# Outlook and webmail put a small header block ("From: … / Sent: … / To: …") above the
# quoted mail; two such lines in a row make it unambiguous.
_FROM_WORDS = r"from|von|de|da|van|от|från|fra|od|lähettäjä|发件人|寄件者|差出人|보낸 사람"
_NEXT_WORDS = (
    r"sent|date|to|subject|cc|gesendet|datum|an|betreff|envoyé|à|objet|enviado|fecha|para|asunto"
    r"|inviato|data|a|oggetto|verzonden|aan|onderwerp|отправлено|дата|кому|тема|skickat|till|ämne"
    r"|sendt|til|emne|wysłano|do|temat|发送时间|收件人|主题|日期|送信日時|宛先|件名|날짜|받는 사람|제목"
)
_HEADER_BLOCK = re.compile(
    r"^[ \t>]*\*?(?:" + _FROM_WORDS + r")\*?[ \t]*[:：][^\n]{0,400}\n"
    r"(?:[^\n]{0,400}\n)?"
    r"[ \t>]*\*?(?:" + _NEXT_WORDS + r")\*?[ \t]*[:：]",
    re.MULTILINE | re.IGNORECASE,
)
_FROM_LABELS = frozenset(_FROM_WORDS.split("|"))
_ORIGINAL_MESSAGE_PHRASES = (
    "original message",
    "ursprüngliche nachricht",
    "message d'origine",
    "mensaje original",
    "messaggio originale",
    "oorspronkelijk bericht",
    "исходное сообщение",
    "originalmeddelande",
    "opprinnelig melding",
    "alkuperäinen viesti",
    "wiadomość oryginalna",
    "mensagem original",
    "původní zpráva",
)
_RULE_LINE = re.compile(r"[ \t]*(?:_{10,}|-{10,}|={10,})[ \t]*")


def trim_quoted(text: str) -> str:
    """`text` without the quoted history below (or, for bottom posts, around) the reply.

    Falls back to the whole text whenever trimming would leave nothing to show.
    """
    head = text[:_SEARCH_WINDOW]
    cut = _earliest_cut(head)
    if cut is not None:
        reply = text[:cut]
        if reply.strip():
            return _strip_trailing_quote(reply).rstrip()
        # The quote came first (a bottom post): show the unquoted lines after it.
        below = _unquoted_lines(text[cut:], skip_first=_first_line_is_attribution(text[cut:]))
        if below.strip():
            return below.strip("\n").rstrip()
        return text.rstrip()
    trimmed = _strip_trailing_quote(text).rstrip()
    return trimmed if trimmed.strip() else text.rstrip()


def _earliest_cut(head: str) -> int | None:
    cuts: list[int] = []
    colon_cut = _first_colon_cut(head) if "：" not in head else _first_colon_cut_by_regex(head)
    if colon_cut is not None:
        cuts.append(colon_cut)
    if "--" in head:
        lowered = head.lower()
        if any(phrase in lowered for phrase in _ORIGINAL_MESSAGE_PHRASES):
            separator = _ORIGINAL_MESSAGE.search(head)
            if separator is not None:
                cuts.append(separator.start())
    return min(cuts) if cuts else None


def _first_colon_cut(head: str) -> int | None:
    """The first header block or attribution, found by walking the lines that hold a colon.

    `str.find` jumps between colons far faster than a regex scans every position, and
    both kinds of quote start are lines with a colon.
    """
    colon = head.find(":")
    while colon != -1:
        line_start = head.rfind("\n", 0, colon) + 1
        line_end = head.find("\n", colon)
        if line_end == -1:
            line_end = len(head)
        label = head[line_start:colon].strip(" \t>*").lower()
        if label in _FROM_LABELS and _HEADER_BLOCK.match(head, line_start) is not None:
            return _include_rule_above(head, line_start)
        line = head[line_start:line_end].rstrip(" \t\r")
        if line.endswith(":") and _ATTRIBUTION.fullmatch(line) is not None:
            start = _attribution_start(head, line_start)
            if _looks_like_attribution(head, start, line_start + len(line)):
                return start
        colon = head.find(":", line_end)
    return None


def _first_colon_cut_by_regex(head: str) -> int | None:
    """The same search for text with full-width colons (CJK clients), by regex."""
    cuts: list[int] = []
    for colon in _COLON_LINE_END.finditer(head):
        line_start = head.rfind("\n", 0, colon.start()) + 1
        if _ATTRIBUTION.fullmatch(head, line_start, colon.end()) is None:
            continue
        start = _attribution_start(head, line_start)
        if _looks_like_attribution(head, start, colon.end()):
            cuts.append(start)
            break
    block = _HEADER_BLOCK.search(head)
    if block is not None:
        cuts.append(_include_rule_above(head, block.start()))
    return min(cuts) if cuts else None


def _attribution_start(head: str, line_start: int) -> int:
    """Walk back over at most two wrapped lines of an attribution ("On …, Name <\\nx@y> wrote:")."""
    start = line_start
    for _ in range(2):
        line = head[start : head.find("\n", start) if head.find("\n", start) != -1 else len(head)]
        continuation = line.count(">") > line.count("<") or line.strip().lower().rstrip(":：").strip() in {
            w.replace("\\", "") for w in _WROTE_WORDS
        }
        if not continuation or start == 0:
            break
        previous = head.rfind("\n", 0, start - 1)
        previous_line = head[previous + 1 : start - 1]
        if not previous_line.strip():
            break
        start = previous + 1
    return start


def _looks_like_attribution(head: str, start: int, end: int) -> bool:
    """A "…wrote:" line counts when it names a date or an address, or a quote follows it.

    ("I wrote 3 steps:" in a reply is not an attribution.)
    """
    block = head[start:end]
    if "@" in block or _DATE_OR_TIME.search(block):
        return True
    rest = head[end:].lstrip("\r\n \t")
    return rest.startswith(">")


def _include_rule_above(head: str, start: int) -> int:
    """Outlook draws a line of underscores above its header block: cut there too."""
    if start == 0:
        return start
    previous = head.rfind("\n", 0, start - 1)
    line = head[previous + 1 : start - 1]
    if _RULE_LINE.fullmatch(line):
        return previous + 1
    return start


def _first_line_is_attribution(tail: str) -> bool:
    first = tail.split("\n", 1)[0].rstrip("\r")
    return _ATTRIBUTION.fullmatch(first) is not None or _ORIGINAL_MESSAGE.match(first) is not None


def _unquoted_lines(tail: str, *, skip_first: bool) -> str:
    lines = tail.split("\n")
    if skip_first:
        lines = lines[1:]
    return "\n".join(line for line in lines if not line.lstrip().startswith(">"))


def _strip_trailing_quote(text: str) -> str:
    """Drop a run of ">"-quoted (and blank) lines that ends the text."""
    end = len(text)
    cut = end
    while cut > 0:
        line_start = text.rfind("\n", 0, cut - 1) + 1 if cut > 1 else 0
        line = text[line_start:cut].strip()
        if line and not line.startswith(">"):
            break
        cut = line_start
        if line_start == 0:
            break
    remainder = text[:cut]
    if cut < end and remainder.strip():
        return remainder
    return text
