"""Deterministic generator of realistic help-desk mail for the benchmarks: same seed, same bytes.

The mix imitates a support inbox: sizes from ~1 KB to ~50 KB averaging ~7 KB;
bodies in UTF-8, ISO-8859-1, Windows-1251, KOI8-R, GB18030, Shift_JIS and
ISO-2022-JP (header encoded words in the body's charset, as real clients
write them); plain text, multipart/alternative, HTML-only, some with small
attachments; ~30% replies whose In-Reply-To/References name earlier generated
mails (some also carry a `[#TD-n]` subject reference, with quoted history);
and a few auto-replies. Bodies and MIME come from `email.message.EmailMessage`.

    .venv/bin/python bench/mailgen.py --messages 100 --out /tmp/mail   # writes 000001.eml …
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import policy
from email.header import Header
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

# The addresses of the departments the benchmark desk creates (bench/ingest.py).
DEPARTMENT_ADDRESSES = (
    ("Technical", "support@example.com"),
    ("Billing", "billing@example.com"),
    ("Sales", "sales@example.com"),
)
REF_PREFIX = "TD"
START = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Language:
    charsets: tuple[str, ...]
    words: tuple[str, ...]
    names: tuple[str, ...]
    spaced: bool = True  # CJK text has no spaces between words
    wrote: str = "On {date}, {name} wrote:"


_ENGLISH = Language(
    ("utf-8",),
    tuple(
        "the printer invoice order account password login error page refund shipping customer please help "
        "thanks again since yesterday cannot open report attached screenshot update version server slow "
        "payment card declined subscription renew cancel support team question urgent when will this "
        "be fixed we tried restarting but nothing changed our office network shows message timeout".split()
    ),
    ("Alice Martin", "Bob Chen", "Carol White", "Dan O'Neil", "Eve Johnson", "Frank Miller"),
)
_LATIN = Language(
    ("iso-8859-1", "utf-8"),
    tuple(
        "la facture commande compte mot de passe problème réessayé déjà été livraison remboursement "
        "merci beaucoup depuis hier impossible ouvrir rapport pièce jointe über größe Straße bestätigen "
        "Rückerstattung Grüße schön später für Kündigung año señor información teléfono".split()
    ),
    ("Zoë Lefèvre", "Jürgen Groß", "Renée Dubois", "Ángel Núñez", "Søren Ærø"),
    wrote="Le {date}, {name} a écrit :",
)
_RUSSIAN = Language(
    ("windows-1251", "koi8-r", "utf-8"),
    tuple(
        "здравствуйте принтер счёт заказ пароль ошибка страница возврат доставка клиент пожалуйста помогите "
        "спасибо вчера не могу открыть отчёт вложение снимок экрана обновление сервер медленно оплата "
        "карта подписка отменить поддержка вопрос срочно когда исправите мы перезагрузили ничего".split()
    ),
    ("Иван Петров", "Мария Иванова", "Ольга Смирнова", "Сергей Кузнецов"),
    wrote="{date}, {name} пишет:",
)
_CHINESE = Language(
    ("gb18030", "utf-8"),
    tuple("您好 打印机 发票 订单 账户 密码 错误 页面 退款 发货 客户 请 帮助 谢谢 昨天 无法 打开 报告 附件 截图 更新 服务器 很慢 付款 订阅 取消 支持 问题 紧急".split()),  # noqa: E501 - one word list
    ("王伟", "李娜", "张敏", "刘洋"),
    spaced=False,
    wrote="{name} 于 {date} 写道：",
)
_JAPANESE = Language(
    ("shift_jis", "iso-2022-jp", "utf-8"),
    tuple(
        "お世話になっております プリンター 請求書 注文 アカウント パスワード エラー 返金 配送 お客様 "
        "よろしくお願いします 昨日から 開けません 報告書 添付 更新 サーバー 遅い 支払い 解約 サポート 質問 至急".split()
    ),
    ("山田太郎", "佐藤花子", "鈴木一郎", "高橋美咲"),
    spaced=False,
    wrote="{date}、{name} さんは書きました:",
)
# Weighted like a European desk with some international customers.
_LANGUAGES = (_ENGLISH,) * 10 + (_LATIN,) * 3 + (_RUSSIAN,) * 3 + (_CHINESE,) * 2 + (_JAPANESE,) * 2

# Body size buckets (bytes of text before MIME encoding): mean ≈ 7 KB, like the corpus mix.
_SIZE_BUCKETS = ((0.50, 700, 3_000), (0.30, 3_000, 10_000), (0.15, 10_000, 25_000), (0.05, 25_000, 48_000))
_ATTACHMENT_TYPES = (
    ("application", "pdf", "invoice-{n}.pdf"),
    ("image", "png", "screenshot {n}.png"),
    ("text", "csv", "export-{n}.csv"),
    ("application", "octet-stream", "Отчёт-{n}.bin"),  # a non-ASCII name: RFC 2231 on the wire
)


@dataclass
class _Sent:
    """What a later reply needs to know about an earlier generated mail."""

    message_id: str
    subject: str
    references: tuple[str, ...]
    ticket: int  # the ticket number it most likely opened or joined (new mails open them in order)
    name: str
    address: str
    text: str
    language: Language


class MailGenerator:
    """Yields raw messages; the n-th message depends only on the seed and n."""

    def __init__(self, seed: int = 1) -> None:
        self.rng = random.Random(seed)
        self.sent: list[_Sent] = []
        self.tickets = 0
        self.index = 0

    def __iter__(self) -> Iterator[bytes]:
        while True:
            yield self.next()

    def next(self) -> bytes:
        rng = self.rng
        self.index += 1
        index = self.index
        date = START + timedelta(minutes=3 * index, seconds=rng.randrange(180))
        unique = rng.getrandbits(40)
        host = rng.choice(("mail.example.org", "customer.example.net", "mx.example.ru"))
        message_id = f"gen.{index}.{unique:010x}@{host}"
        roll = rng.random()
        parent = self.sent[rng.randrange(len(self.sent))] if self.sent and roll < 0.32 else None
        automatic = parent is not None and roll < 0.02

        if parent is not None:
            language, name, address = parent.language, parent.name, parent.address
            kind, charset, cte, size = self._shape(language, automatic)
            body_text = self._reply_text(language, parent, date, size)
            subject = parent.subject if parent.subject.startswith("Re: ") else f"Re: {parent.subject}"
            if rng.random() < 0.35 and f"[#{REF_PREFIX}-" not in subject:
                subject = f"Re: [#{REF_PREFIX}-{parent.ticket}] {parent.subject.removeprefix('Re: ')}"
            if automatic:
                subject = f"Automatic reply: {subject.removeprefix('Re: ')}"
                body_text = self._paragraph(language, 200)
            references = (*parent.references[-8:], parent.message_id)
            ticket = parent.ticket
        else:
            language = rng.choice(_LANGUAGES)
            name = rng.choice(language.names)
            number = rng.randrange(4000)
            domain = rng.choice(("example.org", "example.net", "example.ru", "example.cn", "example.jp"))
            address = f"customer{number}@{domain}"
            subject = self._sentence(language, rng.randint(3, 9)).rstrip(".。")
            kind, charset, cte, size = self._shape(language, automatic)
            body_text = self._text(language, size)
            references = ()
            self.tickets += 1
            ticket = self.tickets
        department_address = rng.choices([address for _, address in DEPARTMENT_ADDRESSES], weights=(6, 3, 1))[0]

        body = self._body(body_text, kind, charset, cte)
        head = [
            f"Return-Path: <{'' if automatic and rng.random() < 0.3 else address}>",
            f"Received: from mx{rng.randrange(9)}.example.net (mx.example.net [192.0.2.{rng.randrange(1, 255)}])"
            f"\r\n\tby mail.example.com with ESMTPS id {rng.getrandbits(48):012X}\r\n\tfor <{department_address}>;"
            f" {format_datetime(date)}",
            f"From: {_encoded(name, charset)} <{address}>",
            "To: "
            + rng.choice((department_address, f"<{department_address}>", f"Example Support <{department_address}>")),
            f"Subject: {_encoded(subject, charset)}",
            f"Date: {format_datetime(date)}",
            f"Message-ID: <{message_id}>",
        ]
        if references:
            head.append(f"In-Reply-To: <{references[-1]}>")
            head.append("References: " + "\r\n ".join(f"<{ref}>" for ref in references))
        if automatic:
            head.append("Auto-Submitted: auto-replied")
            head.append("X-Auto-Response-Suppress: All")
        mailer = rng.choice(("Thunderbird 115.8", "Microsoft Outlook 16.0", "Apple Mail", "Roundcube"))
        head.append(f"X-Mailer: {mailer}")
        raw = "\r\n".join(head).encode("ascii") + b"\r\n" + body
        if not automatic:
            self.sent.append(_Sent(message_id, subject, references, ticket, name, address, body_text[:600], language))
        return raw

    # -- bodies ----------------------------------------------------------------------

    def _shape(self, language: Language, automatic: bool) -> tuple[str, str, str | None, int]:
        """MIME kind, charset, transfer encoding, and how much text makes the drawn size on the wire."""
        rng = self.rng
        kinds = ("plain", "alternative", "html", "attachment")
        kind = "plain" if automatic else rng.choices(kinds, (50, 30, 10, 10))[0]
        charset = rng.choice(language.charsets)
        # Clients send Latin text raw or quoted-printable, other scripts raw or base64
        # (quoted-printable would triple them); ISO-2022-JP is 7-bit by design.
        if charset == "iso-2022-jp":
            cte = None
        elif language.words is _ENGLISH.words or language.words is _LATIN.words:
            cte = rng.choice(("8bit", "quoted-printable"))
        else:
            cte = rng.choice(("8bit", "base64"))
        growth = (1.37 if cte == "base64" else 1.05) * {"alternative": 2.3, "html": 1.2}.get(kind, 1.0)
        size = self._target_size()
        if kind == "attachment":
            size = max(400, size - 6_000)  # the attachments bring their own bytes
        return kind, charset, cte, max(300, int(size / growth))

    def _body(self, text: str, kind: str, charset: str, cte: str | None) -> bytes:
        """MIME headers and body from EmailMessage (its own headers follow ours in the header block)."""
        rng = self.rng
        message = EmailMessage(policy=policy.SMTP)
        if kind == "html":
            message.set_content(_html(text), subtype="html", charset=charset, cte=cte)
        else:
            message.set_content(text, charset=charset, cte=cte)
            if kind == "alternative":
                message.add_alternative(_html(text), subtype="html", charset=charset, cte=cte)
        if kind == "attachment":
            for _ in range(rng.choice((1, 1, 2))):
                maintype, subtype, filename = rng.choice(_ATTACHMENT_TYPES)
                message.add_attachment(
                    rng.randbytes(rng.randrange(1_000, 8_000)),
                    maintype=maintype,
                    subtype=subtype,
                    filename=filename.format(n=rng.randrange(10_000)),
                )
        if message.is_multipart():
            # The stdlib draws boundaries from the global random generator and the clock.
            message.set_boundary(f"=_td_{rng.getrandbits(64):016x}")
        return message.as_bytes()

    def _target_size(self) -> int:
        pick = self.rng.random()
        for share, low, high in _SIZE_BUCKETS:
            if pick < share:
                return self.rng.randrange(low, high)
            pick -= share
        return _SIZE_BUCKETS[-1][2]

    def _sentence(self, language: Language, words: int) -> str:
        chosen = [self.rng.choice(language.words) for _ in range(words)]
        if language.spaced:
            sentence = " ".join(chosen)
            return sentence[:1].upper() + sentence[1:] + self.rng.choice((".", ".", "?", "!"))
        return "".join(chosen) + "。"

    def _paragraph(self, language: Language, size: int) -> str:
        pieces: list[str] = []
        length = 0
        while length < size:
            sentence = self._sentence(language, self.rng.randint(5, 16))
            pieces.append(sentence)
            length += len(sentence.encode("utf-8"))
        return _wrap(" ".join(pieces) if language.spaced else "".join(pieces), 72 if language.spaced else 36)

    def _text(self, language: Language, size: int) -> str:
        paragraphs: list[str] = []
        length = 0
        while length < size:
            paragraph = self._paragraph(language, min(size - length, self.rng.randrange(200, 900)))
            paragraphs.append(paragraph)
            length += len(paragraph.encode("utf-8")) + 2
        greeting = self.rng.choice(language.names).split()[0]
        return "\n\n".join(paragraphs) + f"\n\n-- \n{greeting}\n"

    def _reply_text(self, language: Language, parent: _Sent, date: datetime, size: int) -> str:
        own = self._text(language, max(300, size // 2))
        quoted = "\n".join(f"> {line}" if line else ">" for line in parent.text.splitlines())
        attribution = language.wrote.format(date=format_datetime(date - timedelta(hours=5)), name=parent.name)
        return f"{own}\n{attribution}\n{quoted}\n"


def _wrap(text: str, width: int) -> str:
    """Hard-wrapped lines like a mail client sends (and short enough for 8bit transfer)."""
    lines: list[str] = []
    line = ""
    for word in text.split(" ") if " " in text else [text[i : i + width] for i in range(0, len(text), width)]:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    if line:
        lines.append(line)
    return "\n".join(lines)


def _html(text: str) -> str:
    from html import escape

    paragraphs = "\n".join(
        f"<p style=\"margin:0 0 1em 0\">{escape(paragraph).replace(chr(10), '<br>')}</p>"
        for paragraph in text.split("\n\n")
    )
    return (
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><style>body{font-family:Arial,sans-serif}</style>"
        f"</head><body><div dir=\"ltr\">{paragraphs}</div>"
        "<table><tr><td><b>Example Customer Ltd.</b></td><td><a href=\"https://example.org\">example.org</a>"
        "</td></tr></table></body></html>"
    )


def _encoded(text: str, charset: str) -> str:
    """A header value as the sender's client writes it: RFC 2047 words in its own charset when not ASCII."""
    if text.isascii():
        return text
    return Header(text, charset, maxlinelen=76, header_name="Subject").encode(linesep="\r\n")


def generate(count: int, seed: int = 1) -> list[bytes]:
    """`count` raw messages; the same (count, seed) gives the same bytes on every run."""
    generator = MailGenerator(seed)
    return [generator.next() for _ in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True, help="folder for NNNNNN.eml files")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for number, raw in enumerate(generate(args.messages, args.seed), start=1):
        (args.out / f"{number:06d}.eml").write_bytes(raw)


if __name__ == "__main__":
    main()
