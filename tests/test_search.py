"""Text search over subjects and bodies in every script our customers write, on both back ends.

Every text lives twice: in a Billing ticket and in a Technical twin. The
searching agent (`bill`) is in Billing only, so every search also proves that
another department's tickets never come back.
"""

from __future__ import annotations

import base64
import json
import unicodedata
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

import pytest
import pytest_asyncio

from core import Desk, queues
from core.errors import BadArgument
from core.views import QueueFilter
from storage.database import Database
from tests.desk_fixtures import add_agents, add_departments, module_db_url, new_ticket  # noqa: F401

pytestmark = pytest.mark.asyncio(loop_scope="module")

# name: (subject, body). Subjects and bodies hold different words so each side is tested.
TEXTS: dict[str, tuple[str, str]] = {
    "thai": ("ผมต้องการคืนเงินค่าสินค้า", "สินค้าชำรุดตั้งแต่วันแรกที่ได้รับครับ"),
    "vietnamese": ("Tôi chưa nhận được hóa đơn tháng này", "Xin vui lòng gửi lại biên lai thanh toán"),
    "russian": ("Ошибка в счёт-фактуре", "Прошу исправить сумму в ДОГОВОРЕ номер семь"),
    "danish": ("Blåbær-syltetøj ankom knust", "Æblemost og ØLLEBRØD mangler i pakken"),
    "chinese": ("我想申请退款，订单号12345", "包裹在运输途中损坏了"),
    "japanese": ("注文した商品がまだ届きません", "配送状況を確認してください"),
    "english": ("Please refund order 77 today", "The order was late; refund it and cancel the rest"),
    "english-apart": ("Order arrived, want a refund", "Nothing else"),
    "percent": ("Discount 50% off was not applied", "I expected a_b pricing"),
    "no-percent": ("Discount 5000 units", "Expected axb pricing"),
    "short": ("Ticket about ID badge", "It is at level B2 of the car park"),
}


@dataclass
class SearchDesk:
    desk: Desk
    billing: dict[str, str]  # name -> ref in Billing
    technical: dict[str, str]  # name -> ref of the Technical twin


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def searchable(module_db_url: str) -> AsyncIterator[SearchDesk]:  # noqa: F811
    desk = Desk(Database(module_db_url))
    await desk.init()
    await add_departments(desk)
    await add_agents(desk)
    billing: dict[str, str] = {}
    technical: dict[str, str] = {}
    for name, (subject, body) in TEXTS.items():
        billing[name] = (await new_ticket(desk, "Billing", subject, body, contact=f"{name}@example.org")).ref
        technical[name] = (await new_ticket(desk, "Technical", subject, body, contact=f"{name}@example.org")).ref
    # A later thread entry is searchable too, not only the first message.
    await desk.note("bill", billing["english-apart"], "Customer mentions the zeppelin incident")
    await desk.note("tech", technical["english-apart"], "Customer mentions the zeppelin incident")
    yield SearchDesk(desk, billing, technical)
    await desk.close()


async def search(desk: Desk, who: str, text: str) -> set[str]:
    page = await desk.queue(who, QueueFilter(text=text, limit=500))
    return {row.ref for row in page.rows}


CASES: list[tuple[str, str, set[str]]] = [
    # id, query, names expected among Billing's tickets
    ("thai-subject-no-spaces", "คืนเงิน", {"thai"}),
    ("thai-body", "ชำรุด", {"thai"}),
    ("vietnamese-words", "hóa đơn", {"vietnamese"}),
    ("vietnamese-phrase", '"hóa đơn"', {"vietnamese"}),
    ("vietnamese-upper", "HÓA ĐƠN", {"vietnamese"}),
    ("vietnamese-decomposed-accents", unicodedata.normalize("NFD", "hóa đơn"), {"vietnamese"}),
    ("vietnamese-body", "biên lai", {"vietnamese"}),
    ("russian-case-folding", "СЧЁТ", {"russian"}),
    ("russian-body-lower-finds-upper", "договоре", {"russian"}),
    ("danish-subject", "blåbær", {"danish"}),
    ("danish-upper", "BLÅBÆR", {"danish"}),
    ("danish-body", "æblemost", {"danish"}),
    ("danish-body-lower-finds-upper", "øllebrød", {"danish"}),
    ("chinese-four", "申请退款", {"chinese"}),
    ("chinese-body", "运输途中", {"chinese"}),
    ("japanese", "届きません", {"japanese"}),
    ("japanese-body", "配送状況", {"japanese"}),
    ("two-chars-chinese", "退款", {"chinese"}),
    ("two-chars-japanese", "商品", {"japanese"}),
    ("two-chars-thai", "คื", {"thai"}),
    ("two-chars-ascii", "B2", {"short"}),
    ("two-chars-ascii-other-case", "b2", {"short"}),
    ("two-chars-cyrillic-other-case", "ОШ", {"russian"}),
    ("two-chars-danish-other-case", "øl", {"danish"}),
    ("two-chars-vietnamese-other-case", "ĐƠ", {"vietnamese"}),
    ("one-char", "ø", {"danish"}),
    ("one-char-other-case", "Æ", {"danish"}),
    ("short-and-long-terms", "ID badge", {"short"}),
    ("words-anywhere", "refund order", {"english", "english-apart"}),
    ("quoted-phrase", '"refund order"', {"english"}),
    ("phrase-in-body", '"refund it and cancel"', {"english"}),
    ("later-note", "zeppelin", {"english-apart"}),
    ("percent-literal", "50%", {"percent"}),
    ("percent-alone", "%", {"percent"}),
    ("underscore-literal", "a_b", {"percent"}),
    ("underscore-alone", "_", {"percent"}),
    ("backslash", "\\", set()),
    ("no-match", "zzzxqv", set()),
    ("fts-syntax-is-text", "refund OR zeppelin", set()),
    ("fts-star", "refun*", set()),
    ("fts-column-filter", "subject:refund", set()),
    ("unbalanced-quote", '"refund order', {"english"}),
    ("parentheses", "(refund)", set()),
]


@pytest.mark.parametrize(("query", "expected"), [(q, e) for _, q, e in CASES], ids=[i for i, _, _ in CASES])
async def test_search_finds_substrings_in_every_script_and_only_in_own_departments(
    searchable: SearchDesk, query: str, expected: set[str]
) -> None:
    found = await search(searchable.desk, "bill", query)
    assert found == {searchable.billing[name] for name in expected}
    assert not found & set(searchable.technical.values()), "another department's ticket came back"


@pytest.mark.parametrize(("query", "expected"), [(q, e) for _, q, e in CASES], ids=[i for i, _, _ in CASES])
async def test_agent_of_both_departments_finds_both_twins(
    searchable: SearchDesk, query: str, expected: set[str]
) -> None:
    found = await search(searchable.desk, "both", query)
    assert found == {searchable.billing[name] for name in expected} | {searchable.technical[name] for name in expected}


@pytest.mark.parametrize("handle", ["nobody", "boss"])
async def test_search_for_an_agent_without_those_departments_finds_nothing(searchable: SearchDesk, handle: str) -> None:
    for query in ("คืนเงิน", "hóa đơn", "退款", "refund", "%"):
        assert await search(searchable.desk, handle, query) == set()


async def test_search_combines_with_the_department_filter_and_paging(searchable: SearchDesk) -> None:
    desk = searchable.desk
    first = await desk.queue("both", QueueFilter(text="refund", department="Technical", limit=1))
    assert len(first.rows) == 1 and first.next_cursor is not None
    second = await desk.queue(
        "both", QueueFilter(text="refund", department="Technical", limit=1, cursor=first.next_cursor)
    )
    refs = {first.rows[0].ref, *(row.ref for row in second.rows)}
    assert refs == {searchable.technical["english"], searchable.technical["english-apart"]}
    assert second.next_cursor is None


async def test_search_sees_a_changed_thread_at_once(searchable: SearchDesk) -> None:
    desk = searchable.desk
    ref = searchable.billing["short"]
    assert ref not in await search(desk, "bill", "kumquat")
    await desk.reply("bill", ref, "We found your kumquat parcel")
    assert await search(desk, "bill", "kumquat") == {ref}
    assert await search(desk, "tech", "kumquat") == set()


async def test_text_stored_with_decomposed_accents_is_found_by_composed_query(searchable: SearchDesk) -> None:
    desk = searchable.desk
    subject = unicodedata.normalize("NFD", "Thanh toán thất bại")
    ref = (await new_ticket(desk, "Billing", subject, "x", contact="nfd@example.org")).ref
    assert ref in await search(desk, "bill", "toán thất")


# Paging through text search: the walk over the hits, newest matching entry first.

PAGED_TERM = "walrus"


@dataclass
class PagedSearch:
    desk: Desk
    billing: list[str]  # refs of Billing tickets holding the term somewhere
    technical: list[str]  # refs of Technical tickets holding it
    subject_only: str  # a Billing ticket with the term in its subject only
    many_hits: str  # a Billing ticket with the term in its first and in its newest message


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def paged_search(searchable: SearchDesk) -> PagedSearch:
    """Billing and Technical tickets holding PAGED_TERM in subjects, first messages and later notes, interleaved."""
    desk = searchable.desk
    billing: list[str] = []
    technical: list[str] = []
    for index in range(14):
        for department, refs in (("Billing", billing), ("Technical", technical)):
            subject, body = f"Question {index}", f"Nothing to see {index}"
            if index % 3 == 0:
                subject = f"The {PAGED_TERM.upper()} case {index}"  # a subject hit
            if index % 3 != 1:
                body = f"Our {PAGED_TERM} number {index} arrived"  # a body hit in the first message
            refs.append((await new_ticket(desk, department, subject, body, contact=f"p{index}@example.org")).ref)
    # Tickets without a hit so far get one in a later note, in an order unlike their creation.
    for index in (10, 1, 7, 4, 13):
        await desk.note("both", billing[index], f"Later: the {PAGED_TERM} is back ({index})")
        await desk.note("both", technical[index], f"Later: the {PAGED_TERM} is back ({index})")
    subject_only = (await new_ticket(desk, "Billing", f"Re: {PAGED_TERM} only here", "No match in the body")).ref
    # The oldest ticket matches again in its newest message: it must come first, once.
    await desk.note("both", billing[0], f"Still about the {PAGED_TERM}")
    await desk.note("both", technical[0], f"Still about the {PAGED_TERM}")
    billing = [ref for index, ref in enumerate(billing) if index % 3 != 1 or index in (10, 1, 7, 4, 13)]
    technical = [ref for index, ref in enumerate(technical) if index % 3 != 1 or index in (10, 1, 7, 4, 13)]
    billing.append(subject_only)
    return PagedSearch(desk, billing, technical, subject_only, billing[0])


async def newest_first(desk: Desk, refs: list[str], term: str) -> list[str]:
    """The order text search promises, computed from the threads: newest matching entry first.

    A body hit counts at its message id, a subject hit at the ticket's first message.
    """
    keys: dict[str, int] = {}
    for ref in refs:
        detail = await desk.ticket("both", ref)
        positions = [message.id for message in detail.messages if term in message.body.casefold()]
        if term in detail.ticket.subject.casefold():
            positions.append(min(message.id for message in detail.messages))
        keys[ref] = max(positions)
    return sorted(refs, key=lambda ref: keys[ref], reverse=True)


async def all_pages(desk: Desk, who: str, wanted: QueueFilter) -> list[str]:
    """Follow next_cursor from `wanted.cursor` to the end; the refs in the order shown."""
    seen: list[str] = []
    cursor = wanted.cursor
    for _ in range(200):
        page = await desk.queue(who, replace(wanted, cursor=cursor))
        assert len(page.rows) <= wanted.limit
        seen.extend(row.ref for row in page.rows)
        cursor = page.next_cursor
        if cursor is None:
            return seen
        assert len(page.rows) == wanted.limit, "only the last page may be short"
    raise AssertionError("paging never ended")


WALKS = {
    "walk": {},
    "small-chunks": {"WALK_FIRST_CHUNK": 1, "WALK_MAX_CHUNK": 2},
    "falls-back-at-once": {"WALK_FIRST_CHUNK": 1, "WALK_MAX_CHUNK": 1, "WALK_BUDGET": 0},
    "falls-back-midway": {"WALK_FIRST_CHUNK": 1, "WALK_MAX_CHUNK": 1, "WALK_BUDGET": 5},
}


@pytest.mark.parametrize("walk", list(WALKS))
@pytest.mark.parametrize("limit", [1, 3, 7, 50])
async def test_search_pages_cover_every_match_once_newest_first(
    paged_search: PagedSearch, monkeypatch: pytest.MonkeyPatch, walk: str, limit: int
) -> None:
    for name, value in WALKS[walk].items():
        monkeypatch.setattr(queues, name, value)
    desk = paged_search.desk
    seen = await all_pages(desk, "bill", QueueFilter(text=PAGED_TERM, limit=limit))
    assert len(seen) == len(set(seen)), "a ticket appeared twice"
    assert seen == await newest_first(desk, paged_search.billing, PAGED_TERM)
    assert paged_search.subject_only in seen
    assert not set(seen) & set(paged_search.technical), "another department's ticket came back"
    both = await all_pages(desk, "both", QueueFilter(text=PAGED_TERM, limit=limit))
    assert both == await newest_first(desk, paged_search.billing + paged_search.technical, PAGED_TERM)


async def test_a_ticket_matching_in_several_messages_comes_once_at_its_newest_match(paged_search: PagedSearch) -> None:
    desk = paged_search.desk
    seen = await all_pages(desk, "bill", QueueFilter(text=PAGED_TERM, limit=1))
    assert seen.count(paged_search.many_hits) == 1
    assert seen[0] == paged_search.many_hits  # its newest note is the newest hit of all


@pytest.mark.parametrize("walk", ["walk", "falls-back-midway"])
async def test_search_paging_combines_with_status_and_tag_filters(
    paged_search: PagedSearch, monkeypatch: pytest.MonkeyPatch, walk: str
) -> None:
    for name, value in WALKS[walk].items():
        monkeypatch.setattr(queues, name, value)
    desk = paged_search.desk
    tagged = paged_search.billing[1::2]
    for ref in tagged:
        await desk.tag("bill", ref, add=["walrus-watch"])
    try:
        seen = await all_pages(desk, "both", QueueFilter(text=PAGED_TERM, tag="walrus-watch", limit=2))
        assert seen == await newest_first(desk, tagged, PAGED_TERM)
        opened = paged_search.billing[::3]
        for ref in opened:
            await desk.set_status("bill", ref, "open")
        try:
            seen = await all_pages(
                desk, "both", QueueFilter(text=PAGED_TERM, statuses=("open",), department="Billing", limit=2)
            )
            assert seen == await newest_first(desk, opened, PAGED_TERM)
        finally:
            for ref in opened:
                await desk.set_status("bill", ref, "new")
    finally:
        for ref in tagged:
            await desk.tag("bill", ref, remove=["walrus-watch"])


async def test_matches_written_while_paging_neither_repeat_nor_hide_tickets(searchable: SearchDesk) -> None:
    desk = searchable.desk
    refs = [
        (await new_ticket(desk, "Billing", f"Quokka sighting {index}", "Body", contact=f"q{index}@example.org")).ref
        for index in range(6)
    ]
    first = await desk.queue("bill", QueueFilter(text="quokka", limit=2))
    assert [row.ref for row in first.rows] == refs[::-1][:2]
    await desk.note("bill", refs[5], "The quokka is back")  # shown already: must not come again
    await desk.note("bill", refs[0], "Another quokka")  # not shown yet: must still come, once
    seen = [row.ref for row in first.rows] + await all_pages(
        desk, "bill", QueueFilter(text="quokka", limit=2, cursor=first.next_cursor)
    )
    assert sorted(seen) == sorted(refs) and len(seen) == len(set(seen))


def _cursor(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor!",
        _cursor({"w": 1}),
        _cursor(["w", 10, 10, 5]),  # too short
        _cursor(["w", 10, 10, 5, 5, 1]),  # too long
        _cursor(["r", 10, 10, 5, 5]),  # a set-plan cursor without its keyset
        _cursor(["x", 10, 10, 5, 5]),
        _cursor(["w", 10, 10, -1, 5]),
        _cursor(["w", 10, 10, True, 5]),
        _cursor(["w", 10, 10, "5", 5]),
        _cursor(["w", 10, 10, 12, 5]),  # starts above its own top
        _cursor(["w", 10**30, 10, 5, 5]),
        _cursor([{"t": "2030-01-01T00:00:00+00:00"}, 3]),  # a cursor of the `updated` order
    ],
)
async def test_bad_search_cursor_is_a_bad_argument(searchable: SearchDesk, cursor: str) -> None:
    with pytest.raises(BadArgument):
        await searchable.desk.queue("bill", QueueFilter(text="refund", cursor=cursor))


async def test_a_search_cursor_is_refused_by_a_queue_without_text(searchable: SearchDesk) -> None:
    page = await searchable.desk.queue("both", QueueFilter(text="refund", limit=1))
    assert page.next_cursor is not None
    with pytest.raises(BadArgument):
        await searchable.desk.queue("both", QueueFilter(cursor=page.next_cursor))
