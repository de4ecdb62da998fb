"""Rule conditions: every operator, case folding across scripts, and the validation of rules (table-driven)."""

from __future__ import annotations

import unicodedata

import pytest

from core.errors import BadArgument
from core.rules.match import number_matches, text_matches
from core.rules.model import from_toml, parse_rule, to_toml

VI_DECOMPOSED = unicodedata.normalize("NFD", "Tiếng Việt")

# (operator, actual text, wanted, holds)
TEXT = [
    ("contains", "Refund for order 77", "REFUND", True),
    ("contains", "Refund for order 77", "invoice", False),
    ("not_contains", "Refund for order 77", "invoice", True),
    ("not_contains", "Refund for order 77", "ORDER", False),
    ("starts", "Refund for order 77", "refund", True),
    ("starts", "Refund for order 77", "order", False),
    ("ends", "Refund for order 77", "ORDER 77", True),
    ("ends", "Refund for order 77", "refund", False),
    ("equals", "Billing", "billing", True),
    ("equals", "Billing", "bill", False),
    ("not_equals", "Billing", "Returns", True),
    ("not_equals", "Billing", "BILLING", False),
    ("regex", "Order #12345 arrived broken", r"order #\d{5}", True),
    ("regex", "Order #1234 arrived broken", r"order #\d{5}\b", False),
    # German: casefold makes ß and SS equal (lower() would not).
    ("equals", "Straße", "STRASSE", True),
    ("contains", "Lieferung an die GROSSSTRASSE", "großstraße", True),
    ("regex", "Hauptstraße 5", "STRASSE", True),
    # Russian
    ("contains", "ВОЗВРАТ заказа 77", "возврат", True),
    ("starts", "Здравствуйте, хочу вернуть товар", "ЗДРАВСТВУЙТЕ", True),
    ("ends", "Хочу вернуть ТОВАР", "товар", True),
    ("equals", "Возврат", "ВОЗВРАТ", True),
    ("not_contains", "Счёт на оплату", "возврат", True),
    ("regex", "Заказ №4521", r"заказ №\d+", True),
    # Vietnamese: precomposed and decomposed accents are the same text, and case folds.
    ("contains", "Tôi muốn TRẢ HÀNG", "trả hàng", True),
    ("equals", VI_DECOMPOSED, "TIẾNG VIỆT", True),
    ("starts", "Đơn hàng bị hỏng", "đơn hàng", True),
    ("ends", "Xin cảm ơn", "CẢM ƠN", True),
    ("not_contains", "Xin cảm ơn", "trả hàng", True),
    ("regex", "Mã đơn: VN-889", r"mã đơn: vn-\d+", True),
    ("contains", "Tôi muốn trả hàng", "tra hang", False),  # accents matter: no accent stripping
    # Thai has no case: text compares as written.
    ("contains", "ต้องการคืนสินค้า ด่วน", "คืนสินค้า", True),
    ("starts", "สวัสดีครับ ขอคืนเงิน", "สวัสดี", True),
    ("ends", "ขอคืนเงิน", "คืนเงิน", True),
    ("equals", "คืนเงิน", "คืนเงิน", True),
    ("not_contains", "สอบถามราคา", "คืนเงิน", True),
    ("regex", "หมายเลขคำสั่งซื้อ 5521", r"คำสั่งซื้อ \d+", True),
    ("contains", "สอบถามราคา", "คืนเงิน", False),
]


@pytest.mark.parametrize(("op", "actual", "wanted", "holds"), TEXT)
def test_text_operators_fold_case_in_every_script(op: str, actual: str, wanted: str, holds: bool) -> None:
    assert text_matches(op, [actual], wanted) is holds


@pytest.mark.parametrize(
    ("op", "actual", "wanted", "holds"),
    [
        ("equals", ["vip", "refund"], ["REFUND"], True),  # a ticket with several tags
        ("equals", ["vip"], ["refund", "vip"], True),  # a list of wanted values: any
        ("not_equals", ["vip", "refund"], "refund", False),  # none of them may equal
        ("not_contains", [], "refund", True),  # no tags at all
        ("contains", [], "refund", False),
        ("ends", ["a@shop.example", "b@desk.example"], "@desk.example", True),
    ],
)
def test_several_values(op: str, actual: list[str], wanted: str | list[str], holds: bool) -> None:
    assert text_matches(op, actual, wanted) is holds


@pytest.mark.parametrize(
    ("op", "actual", "wanted", "holds"),
    [("gt", 5.0, 4, True), ("gt", 4.0, 4, False), ("ge", 4.0, 4, True), ("lt", 3.5, 4, True), ("le", 4.5, 4, False),
     ("equals", 2.0, 2, True), ("not_equals", 2.0, 2, False), ("gt", None, 1, False), ("not_equals", None, 1, True)],
)
def test_number_operators(op: str, actual: float | None, wanted: float, holds: bool) -> None:
    assert number_matches(op, actual, wanted) is holds


GOOD = {
    "name": "Route social",
    "trigger": "ticket_created",
    "when": [[{"field": "channel", "op": "equals", "value": "facebook"}],
             [{"field": "channel", "op": "equals", "value": "twitter"}]],
    "actions": [{"do": "transfer", "department": "Marketing"}, {"do": "assign", "how": "round-robin"}],
}


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"name": ""}, "needs a name"),
        ({"trigger": "whenever"}, "trigger must be one of"),
        ({"trigger": {"on": "time", "since": "created"}}, "hours"),
        ({"trigger": {"on": "time", "since": "birthday", "hours": 2}}, "since"),
        ({"trigger": {"on": "sla_due_in"}}, "minutes"),
        ({"trigger": {"on": "sla_due_in", "minutes": 0}}, "minutes"),
        ({"when": [[{"field": "colour", "op": "equals", "value": "red"}]]}, "not a condition field"),
        ({"when": [[{"field": "subject", "op": "gt", "value": "x"}]]}, "does not apply"),
        ({"when": [[{"field": "subject", "op": "regex", "value": "(unclosed"}]]}, "does not compile"),
        ({"when": [[{"field": "hours_since_created", "op": "gt", "value": "two"}]]}, "number of hours"),
        ({"when": [[{"field": "business_hours", "op": "equals", "value": "maybe"}]]}, "open"),
        ({"actions": []}, "at least one action"),
        ({"actions": [{"do": "explode"}]}, "do one of"),
        ({"actions": [{"do": "transfer"}]}, "needs department"),
        ({"actions": [{"do": "assign", "how": "agent"}]}, "needs agent"),
        ({"actions": [{"do": "assign", "how": "random"}]}, "how = one of"),
        ({"actions": [{"do": "add_tag", "tags": []}]}, "tags"),
        ({"actions": [{"do": "mark_spam", "really": True}]}, "takes no options"),
        ({"colour": "red"}, "unknown key"),
    ],
)
def test_bad_rules_are_one_sentence_naming_the_rule(change: dict, words: str) -> None:
    with pytest.raises(BadArgument, match=words):
        parse_rule({**GOOD, **change})


def test_a_flat_condition_list_is_one_group_and_toml_round_trips() -> None:
    rule = parse_rule({**GOOD, "when": [{"field": "subject", "op": "contains", "value": "возврат \"срочно\"\n"}]})
    assert len(rule.groups) == 1
    other = parse_rule({**rule.to_dict(), "name": "Другое правило", "note": "ไทย\ttab", "order": 5, "stop": True})
    rules = [parse_rule(GOOD), other]
    text = to_toml(rules)
    assert from_toml(text) == rules


def test_toml_files_are_checked() -> None:
    with pytest.raises(BadArgument, match="not valid TOML"):
        from_toml("[[rule]\nname=")
    with pytest.raises(BadArgument, match="twice"):
        from_toml(to_toml([parse_rule(GOOD), parse_rule(GOOD)]))
    with pytest.raises(BadArgument, match=r"\[\[rule\]\] tables only"):
        from_toml("title = 'x'")
