"""The demo desk: realistic, deterministic departments, agents, customers and ticket threads in five languages.

`build_demo()` creates departments, agents and memberships through the Desk's
admin calls, so they carry counters and events like on any desk. Tickets,
messages, tags and their history are generated in Python from a seeded random
generator and written in large batches (storage.bulk), because the same code
builds the million-ticket benchmark desk; the queue counters are rebuilt from
the tickets at the end. Threads are written in English, Vietnamese, Russian,
Thai and Danish from small phrase banks of real sentences about orders,
invoices, refunds, logins and shipping.

What a generated ticket looks like, so the data stays self-consistent:
- ids grow with `created_at` (like a real desk), spread over the last
  `DAYS` days before `now`;
- the thread starts with the customer's message; agent replies, internal
  notes and customer follow-ups alternate after it; `first_response_at`,
  `last_*`, `resolved_at`, `closed_at` and `updated_at` are the times of the
  entries and events that set them;
- the assignee and every agent who writes in the ticket are members of the
  department the ticket was in at that moment (a transferred ticket's early
  notes come from the first department);
- every change has its event with the same `data` shape `core.tickets`
  writes, and `version` is 1 plus the number of changes, as after real calls.
"""

from __future__ import annotations

import random
import time
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, select

from core.desk import Desk
from core.policy import Actor
from core.refs import slugify
from core.reports import durations
from storage import bulk
from storage.models import Contact, Event, Message, Tag, Ticket, TicketTag
from storage.types import Priority, utcnow

DAYS = 120
COMPANY = "Northwind Trading"
DOMAIN = "northwind.example"
TOPICS = ("order", "invoice", "refund", "login", "shipping")

# Tickets per write transaction: big enough that commit and statement
# overhead vanish, small enough that the WAL of one transaction stays modest.
BATCH = 10_000

# -- phrase banks -------------------------------------------------------------


@dataclass(frozen=True)
class Language:
    """What customers and agents of one language write: a phrase bank and names."""

    code: str
    subjects: Mapping[str, tuple[str, ...]]
    customer: Mapping[str, tuple[str, ...]]
    replies: Mapping[str, tuple[str, ...]]
    opening: tuple[str, ...]  # how a customer starts a mail
    sign_off: tuple[str, ...]  # {customer}
    greeting: tuple[str, ...]  # how an agent addresses the customer: {name}
    regards: tuple[str, ...]  # {agent}
    follow_ups: tuple[str, ...]
    thanks: tuple[str, ...]
    notes: tuple[str, ...]
    products: tuple[str, ...]
    carriers: tuple[str, ...]
    currency: Callable[[int], str]
    # (native, ascii, female) and (native male, native female, ascii male, ascii female)
    given: tuple[tuple[str, str, bool], ...]
    family: tuple[tuple[str, str, str, str], ...]
    mail_domains: tuple[str, ...]
    country: str

    def full_name(self, given: str, family: str, female: bool) -> str:
        if self.code == "vi":  # family name first, with the customary middle name
            return f"{family} {'Thị' if female else 'Văn'} {given}"
        return f"{given} {family}"


_CYRILLIC = dict(
    zip(
        "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
        "a b v g d e e zh z i y k l m n o p r s t u f kh ts ch sh shch - y - e yu ya".split(),
        strict=True,
    )
)


def romanise(text: str) -> str:
    """ASCII letters for handles and addresses: `Jørgensen` → `joergensen`, `Đặng` → `dang`."""
    out = []
    for char in text.lower():
        if char in _CYRILLIC:
            out.append(_CYRILLIC[char].strip("-"))
        elif char in "æøå":
            out.append({"æ": "ae", "ø": "oe", "å": "aa"}[char])
        elif char == "đ":
            out.append("d")
        else:
            out.append(char)
    plain = unicodedata.normalize("NFKD", "".join(out))
    return "".join(char for char in plain if "a" <= char <= "z")


def _given(names: str, female: bool) -> tuple[tuple[str, str, bool], ...]:
    return tuple((name, romanise(name), female) for name in names.split())


def _family(names: str) -> tuple[tuple[str, str, str, str], ...]:
    return tuple((name, name, romanise(name), romanise(name)) for name in names.split())


def _grouped(amount: int, sep: str) -> str:
    return f"{amount:,}".replace(",", sep)


ENGLISH = Language(
    code="en",
    subjects={
        "order": (
            "Question about order {order}",
            "Can I change my order {order}?",
            "Order {order} still not confirmed",
            "Wrong item in order {order}",
        ),
        "invoice": (
            "Invoice {invoice} is wrong",
            "Need a copy of invoice {invoice}",
            "Charged twice for order {order}",
            "VAT number missing on invoice {invoice}",
        ),
        "refund": (
            "Refund for order {order}",
            "Still waiting for my refund",
            "Return and refund of {product}",
            "Refund not received after {days} days",
        ),
        "login": (
            "Can't log in to my account",
            "Password reset email never arrives",
            "Two-factor code not accepted",
            "Account locked after password change",
        ),
        "shipping": (
            "Where is my package? Order {order}",
            "Delivery delayed for order {order}",
            "Parcel marked delivered but not received",
            "Change delivery address for order {order}",
        ),
    },
    customer={
        "order": (
            "I placed order {order} on Monday and have not received a confirmation yet.",
            "Could you change the size on order {order} before it ships?",
            "I ordered the {product} but received something else.",
            "Please let me know whether order {order} can still be cancelled.",
        ),
        "invoice": (
            "The amount on invoice {invoice} is {amount}, but the price at checkout was lower.",
            "Could you send me a copy of invoice {invoice} as a PDF?",
            "My card was charged twice for order {order}.",
            "Our VAT number is missing from invoice {invoice}; we need it for our accounts.",
        ),
        "refund": (
            "I returned the {product} {days} days ago and the refund of {amount} has not arrived.",
            "Your website says refunds take five working days, but it has been two weeks.",
            "Please refund the damaged {product} to my original payment method.",
            "Can I get store credit instead of a refund?",
        ),
        "login": (
            "When I try to log in I get the message 'invalid credentials', although the password is correct.",
            "The password reset email never arrives, not even in the spam folder.",
            "The app does not accept my two-factor code anymore.",
            "My account was locked after I changed my password this morning.",
        ),
        "shipping": (
            "The tracking page for order {order} has not changed for {days} days.",
            "{carrier} says the parcel was delivered, but nothing was left at my door.",
            "I have moved; can you send order {order} to my new address?",
            "The box arrived damaged and the {product} is scratched.",
        ),
    },
    replies={
        "order": (
            "I have checked order {order}: it was confirmed today and leaves our warehouse tomorrow.",
            "I have updated the order as requested; you will receive a new confirmation by email.",
            "I am sorry about the mix-up. The correct {product} is on its way, and you can keep the other item.",
        ),
        "invoice": (
            "I have attached a corrected invoice; the difference of {amount} has been credited.",
            "The second charge is only a card authorisation and will disappear within three working days.",
            "I have added your VAT number and reissued invoice {invoice}.",
        ),
        "refund": (
            "Your refund of {amount} was issued today; depending on your bank it takes three to five working days.",
            "We have received the returned {product} and the refund is on its way.",
            "I have converted the refund into store credit, which is already available in your account.",
        ),
        "login": (
            "I have reset your password; please use the link in the email we just sent.",
            "Your account is unlocked again. Please clear your browser cache and try once more.",
            "I have switched off two-factor authentication for now, so you can log in and set it up again.",
        ),
        "shipping": (
            "I have opened an investigation with {carrier}; we will hear back within {days} working days.",
            "The parcel is held up at the sorting centre and should arrive within two days.",
            "I have changed the delivery address for order {order}.",
        ),
    },
    opening=("Hello,", "Hi,", "Good morning,", "Dear support team,"),
    sign_off=("Thanks,\n{customer}", "Best regards,\n{customer}", "Kind regards,\n{customer}"),
    greeting=("Hi {name},", "Hello {name},", "Dear {name},"),
    regards=("Best regards,\n{agent}", "Kind regards,\n{agent}", "Have a nice day!\n{agent}"),
    follow_ups=(
        "Is there any update on this?",
        "I am still waiting for an answer.",
        "I tried again this morning and it still does not work.",
    ),
    thanks=("Thank you, that solved it!", "Great, thanks for the quick help."),
    notes=(
        "Customer called about this as well; promised an answer today.",
        "Checked with the warehouse: stock arrives on Thursday.",
        "Possibly a duplicate of an earlier ticket from the same customer.",
        "Escalated to second-level support.",
        "Waiting for the carrier's reply before answering.",
    ),
    products=("wireless headphones", "standing desk", "coffee grinder", "hiking boots", "smart watch", "winter jacket"),
    carriers=("DHL", "UPS", "GLS"),
    currency=lambda amount: f"${amount:,}.00",
    given=_given("Emma Olivia Sarah Grace Chloe Hannah", True)
    + _given("Oliver James Daniel Michael Thomas Ben", False),
    family=_family("Smith Johnson Brown Taylor Wilson Davies Clarke Walker Wright Robinson"),
    mail_domains=("gmail.com", "outlook.com", "yahoo.co.uk", "icloud.com"),
    country="GB",
)

VIETNAMESE = Language(
    code="vi",
    subjects={
        "order": (
            "Hỏi về đơn hàng {order}",
            "Tôi muốn thay đổi đơn hàng {order}",
            "Đơn hàng {order} chưa được xác nhận",
            "Nhận sai sản phẩm trong đơn hàng {order}",
        ),
        "invoice": (
            "Hóa đơn {invoice} bị sai",
            "Xin gửi lại hóa đơn {invoice}",
            "Bị trừ tiền hai lần cho đơn hàng {order}",
            "Hóa đơn {invoice} thiếu mã số thuế",
        ),
        "refund": (
            "Hoàn tiền cho đơn hàng {order}",
            "Tôi vẫn chưa nhận được tiền hoàn lại",
            "Trả hàng và hoàn tiền {product}",
            "Chưa nhận được tiền hoàn sau {days} ngày",
        ),
        "login": (
            "Không đăng nhập được vào tài khoản",
            "Không nhận được email đặt lại mật khẩu",
            "Mã xác thực hai bước không hợp lệ",
            "Tài khoản bị khóa sau khi đổi mật khẩu",
        ),
        "shipping": (
            "Gói hàng của tôi đang ở đâu? Đơn {order}",
            "Đơn hàng {order} bị giao chậm",
            "Đơn báo đã giao nhưng tôi chưa nhận được",
            "Đổi địa chỉ giao hàng cho đơn {order}",
        ),
    },
    customer={
        "order": (
            "Tôi đã đặt đơn hàng {order} từ thứ Hai nhưng vẫn chưa nhận được xác nhận.",
            "Bạn có thể đổi kích cỡ trong đơn hàng {order} trước khi giao không?",
            "Tôi đặt {product} nhưng lại nhận được sản phẩm khác.",
            "Xin cho tôi biết đơn hàng {order} còn hủy được không.",
        ),
        "invoice": (
            "Số tiền trên hóa đơn {invoice} là {amount}, nhưng giá lúc thanh toán thấp hơn.",
            "Bạn có thể gửi cho tôi bản PDF của hóa đơn {invoice} không?",
            "Thẻ của tôi bị trừ tiền hai lần cho đơn hàng {order}.",
            "Hóa đơn {invoice} thiếu mã số thuế của công ty chúng tôi.",
        ),
        "refund": (
            "Tôi đã gửi trả {product} cách đây {days} ngày nhưng chưa nhận được {amount} tiền hoàn.",
            "Trang web ghi hoàn tiền trong năm ngày làm việc, nhưng đã hai tuần rồi.",
            "Vui lòng hoàn tiền cho {product} bị hỏng vào thẻ tôi đã thanh toán.",
            "Tôi có thể nhận phiếu mua hàng thay vì hoàn tiền không?",
        ),
        "login": (
            "Khi đăng nhập, tôi nhận được thông báo sai mật khẩu dù mật khẩu đúng.",
            "Email đặt lại mật khẩu không bao giờ đến, kể cả trong thư mục thư rác.",
            "Ứng dụng không chấp nhận mã xác thực hai bước của tôi nữa.",
            "Tài khoản của tôi bị khóa sau khi tôi đổi mật khẩu sáng nay.",
        ),
        "shipping": (
            "Trang theo dõi đơn hàng {order} không thay đổi đã {days} ngày.",
            "{carrier} báo đã giao hàng, nhưng tôi không nhận được gì.",
            "Tôi đã chuyển nhà; bạn có thể giao đơn hàng {order} đến địa chỉ mới không?",
            "Hộp hàng bị móp và {product} bị trầy xước.",
        ),
    },
    replies={
        "order": (
            "Tôi đã kiểm tra đơn hàng {order}: đơn đã được xác nhận hôm nay và sẽ xuất kho vào ngày mai.",
            "Tôi đã cập nhật đơn hàng theo yêu cầu; bạn sẽ nhận được email xác nhận mới.",
            "Chúng tôi xin lỗi vì sự nhầm lẫn. {product} đúng đang được gửi đến bạn.",
        ),
        "invoice": (
            "Tôi đã đính kèm hóa đơn đã điều chỉnh; khoản chênh lệch {amount} đã được hoàn lại.",
            "Khoản trừ tiền thứ hai chỉ là tạm giữ và sẽ tự hủy trong ba ngày làm việc.",
            "Tôi đã thêm mã số thuế và xuất lại hóa đơn {invoice}.",
        ),
        "refund": (
            "Khoản hoàn tiền {amount} đã được chuyển hôm nay; "
            "tùy ngân hàng, bạn sẽ nhận được sau ba đến năm ngày làm việc.",
            "Chúng tôi đã nhận được {product} bạn gửi trả và đang hoàn tiền.",
            "Tôi đã chuyển khoản hoàn tiền thành phiếu mua hàng trong tài khoản của bạn.",
        ),
        "login": (
            "Tôi đã đặt lại mật khẩu; vui lòng dùng đường dẫn trong email vừa gửi.",
            "Tài khoản của bạn đã được mở khóa. Vui lòng xóa bộ nhớ đệm trình duyệt và thử lại.",
            "Tôi đã tạm tắt xác thực hai bước để bạn đăng nhập và cài đặt lại.",
        ),
        "shipping": (
            "Tôi đã yêu cầu {carrier} kiểm tra; chúng tôi sẽ có phản hồi trong {days} ngày làm việc.",
            "Gói hàng đang bị chậm tại trung tâm phân loại và sẽ đến trong hai ngày tới.",
            "Tôi đã đổi địa chỉ giao hàng cho đơn {order}.",
        ),
    },
    opening=("Xin chào,", "Chào bạn,", "Kính gửi bộ phận hỗ trợ,"),
    sign_off=("Cảm ơn,\n{customer}", "Trân trọng,\n{customer}"),
    greeting=("Chào {name},", "Xin chào anh/chị {name},"),
    regards=("Trân trọng,\n{agent}", "Chúc bạn một ngày tốt lành!\n{agent}"),
    follow_ups=("Có cập nhật gì mới không ạ?", "Tôi vẫn đang chờ phản hồi.", "Tôi đã thử lại nhưng vẫn không được."),
    thanks=("Cảm ơn, vấn đề đã được giải quyết!", "Cảm ơn bạn đã hỗ trợ nhanh chóng."),
    notes=(
        "Khách hàng cũng đã gọi điện; đã hứa trả lời trong hôm nay.",
        "Đã hỏi kho: hàng về vào thứ Năm.",
        "Có thể trùng với yêu cầu trước của cùng khách hàng.",
        "Đã chuyển lên bộ phận kỹ thuật cấp hai.",
    ),
    products=(
        "tai nghe không dây",
        "bàn làm việc đứng",
        "máy xay cà phê",
        "giày leo núi",
        "đồng hồ thông minh",
        "áo khoác mùa đông",
    ),
    carriers=("Viettel Post", "Giao Hàng Nhanh", "VNPost"),
    currency=lambda amount: _grouped(amount * 25_000, ".") + " ₫",
    given=_given("Lan Hương Mai Thảo Ngọc Trang", True) + _given("Minh Hùng Tuấn Dũng Quang Khoa", False),
    family=_family("Nguyễn Trần Lê Phạm Hoàng Vũ Đặng Bùi Đỗ Phan"),
    mail_domains=("gmail.com", "yahoo.com.vn", "outlook.com"),
    country="VN",
)

RUSSIAN = Language(
    code="ru",
    subjects={
        "order": (
            "Вопрос по заказу {order}",
            "Можно ли изменить заказ {order}?",
            "Заказ {order} до сих пор не подтверждён",
            "В заказе {order} не тот товар",
        ),
        "invoice": (
            "Ошибка в счёте {invoice}",
            "Пришлите копию счёта {invoice}",
            "Деньги за заказ {order} списали дважды",
            "В счёте {invoice} нет нашего ИНН",
        ),
        "refund": (
            "Возврат денег за заказ {order}",
            "До сих пор не получил возврат",
            "Возврат товара: {product}",
            "Возврат не пришёл через {days} дней",
        ),
        "login": (
            "Не могу войти в личный кабинет",
            "Не приходит письмо для сброса пароля",
            "Код двухфакторной аутентификации не принимается",
            "Аккаунт заблокирован после смены пароля",
        ),
        "shipping": (
            "Где моя посылка? Заказ {order}",
            "Задержка доставки заказа {order}",
            "Посылка отмечена как доставленная, но я её не получил",
            "Изменить адрес доставки заказа {order}",
        ),
    },
    customer={
        "order": (
            "Я оформил заказ {order} в понедельник, но подтверждения до сих пор нет.",
            "Можно ли поменять размер в заказе {order} до отправки?",
            "Я заказывал {product}, а получил совсем другой товар.",
            "Подскажите, пожалуйста, можно ли ещё отменить заказ {order}?",
        ),
        "invoice": (
            "В счёте {invoice} указана сумма {amount}, а при оформлении цена была ниже.",
            "Пришлите, пожалуйста, копию счёта {invoice} в формате PDF.",
            "С моей карты дважды списали деньги за заказ {order}.",
            "В счёте {invoice} нет ИНН нашей компании, он нужен для бухгалтерии.",
        ),
        "refund": (
            "Я вернул {product} {days} дней назад, но возврат {amount} так и не пришёл.",
            "На сайте написано, что возврат занимает пять рабочих дней, но прошло уже две недели.",
            "Прошу вернуть деньги за повреждённый товар ({product}) на мою карту.",
            "Можно ли получить бонусы на счёт вместо возврата денег?",
        ),
        "login": (
            "При входе появляется сообщение «неверный пароль», хотя пароль правильный.",
            "Письмо для сброса пароля не приходит, даже в папку «Спам».",
            "Приложение больше не принимает мой код подтверждения.",
            "Мой аккаунт заблокировали после того, как я сменил пароль сегодня утром.",
        ),
        "shipping": (
            "Статус отслеживания заказа {order} не меняется уже {days} дней.",
            "{carrier} пишет, что посылка доставлена, но у двери ничего не было.",
            "Я переехал; можно отправить заказ {order} на новый адрес?",
            "Коробка пришла помятой, и товар внутри поцарапан.",
        ),
    },
    replies={
        "order": (
            "Я проверил заказ {order}: сегодня он подтверждён и завтра будет отправлен со склада.",
            "Я изменил заказ, как вы просили; новое подтверждение придёт на почту.",
            "Приносим извинения за путаницу. Правильный товар уже отправлен, а тот можно оставить себе.",
        ),
        "invoice": (
            "Во вложении исправленный счёт; разница {amount} возвращена на вашу карту.",
            "Второе списание — это только блокировка средств, она снимется в течение трёх рабочих дней.",
            "Я добавил ИНН и заново выставил счёт {invoice}.",
        ),
        "refund": (
            "Возврат {amount} оформлен сегодня; в зависимости от банка деньги придут за три–пять рабочих дней.",
            "Мы получили возвращённый товар, возврат денег уже в пути.",
            "Я перевёл сумму возврата в бонусы, они уже доступны в вашем аккаунте.",
        ),
        "login": (
            "Я сбросил ваш пароль; воспользуйтесь ссылкой из письма, которое мы только что отправили.",
            "Ваш аккаунт снова разблокирован. Очистите кэш браузера и попробуйте ещё раз.",
            "Я временно отключил двухфакторную аутентификацию, чтобы вы могли войти и настроить её заново.",
        ),
        "shipping": (
            "Я отправил запрос в {carrier}; ответ придёт в течение {days} рабочих дней.",
            "Посылка задержалась в сортировочном центре и придёт в течение двух дней.",
            "Я изменил адрес доставки для заказа {order}.",
        ),
    },
    opening=("Здравствуйте!", "Добрый день!", "Уважаемая служба поддержки,"),
    sign_off=("Спасибо,\n{customer}", "С уважением,\n{customer}"),
    greeting=("Здравствуйте, {name}!", "Добрый день, {name}!"),
    regards=("С уважением,\n{agent}", "Хорошего дня!\n{agent}"),
    follow_ups=(
        "Есть ли новости по моему вопросу?",
        "Я всё ещё жду ответа.",
        "Попробовал ещё раз — всё равно не работает.",
    ),
    thanks=("Спасибо, всё заработало!", "Большое спасибо за быструю помощь."),
    notes=(
        "Клиент также звонил по телефону; обещали ответить сегодня.",
        "Уточнил на складе: товар поступит в четверг.",
        "Возможно, дубликат предыдущего обращения этого клиента.",
        "Передано на вторую линию поддержки.",
    ),
    # Inanimate nouns whose accusative equals the nominative, so "Я вернул {product}" stays grammatical.
    products=(
        "беспроводные наушники",
        "стол для работы стоя",
        "походные ботинки",
        "умные часы",
        "зимний пуховик",
        "электрический чайник",
    ),
    carriers=("СДЭК", "Почта России", "Boxberry"),
    currency=lambda amount: _grouped(amount * 90, " ") + " ₽",
    given=_given("Анна Ольга Екатерина Мария Наталья Татьяна", True)
    + _given("Дмитрий Сергей Алексей Иван Михаил Андрей", False),
    family=tuple(
        (name, name + "а", romanise(name), romanise(name + "а"))
        for name in "Иванов Смирнов Кузнецов Попов Соколов Лебедев Козлов Новиков Морозов Волков".split()
    ),
    mail_domains=("yandex.ru", "mail.ru", "gmail.com"),
    country="RU",
)

THAI = Language(
    code="th",
    subjects={
        "order": (
            "สอบถามเรื่องคำสั่งซื้อ {order}",
            "ขอเปลี่ยนแปลงคำสั่งซื้อ {order}",
            "คำสั่งซื้อ {order} ยังไม่ได้รับการยืนยัน",
            "ได้รับสินค้าผิดในคำสั่งซื้อ {order}",
        ),
        "invoice": (
            "ใบแจ้งหนี้ {invoice} ไม่ถูกต้อง",
            "ขอสำเนาใบแจ้งหนี้ {invoice}",
            "ถูกตัดเงินซ้ำสองครั้งสำหรับคำสั่งซื้อ {order}",
            "ใบกำกับภาษี {invoice} ไม่มีเลขประจำตัวผู้เสียภาษี",
        ),
        "refund": (
            "ขอคืนเงินคำสั่งซื้อ {order}",
            "ยังไม่ได้รับเงินคืน",
            "คืนสินค้าและขอคืนเงินค่า{product}",
            "ผ่านไป {days} วันแล้วยังไม่ได้รับเงินคืน",
        ),
        "login": (
            "เข้าสู่ระบบบัญชีไม่ได้",
            "ไม่ได้รับอีเมลรีเซ็ตรหัสผ่าน",
            "รหัสยืนยันสองขั้นตอนใช้ไม่ได้",
            "บัญชีถูกล็อกหลังจากเปลี่ยนรหัสผ่าน",
        ),
        "shipping": (
            "พัสดุของฉันอยู่ที่ไหน คำสั่งซื้อ {order}",
            "การจัดส่งคำสั่งซื้อ {order} ล่าช้า",
            "สถานะแจ้งว่าจัดส่งแล้วแต่ยังไม่ได้รับพัสดุ",
            "ขอเปลี่ยนที่อยู่จัดส่งคำสั่งซื้อ {order}",
        ),
    },
    customer={
        "order": (
            "ฉันสั่งซื้อสินค้าคำสั่งซื้อ {order} ตั้งแต่วันจันทร์แต่ยังไม่ได้รับอีเมลยืนยันเลยค่ะ",
            "ช่วยเปลี่ยนขนาดสินค้าในคำสั่งซื้อ {order} ก่อนจัดส่งได้ไหมครับ",
            "ฉันสั่ง{product}แต่ได้รับสินค้าอื่นมาแทน",
            "รบกวนแจ้งด้วยว่าคำสั่งซื้อ {order} ยังยกเลิกได้หรือไม่",
        ),
        "invoice": (
            "ยอดเงินในใบแจ้งหนี้ {invoice} คือ {amount} แต่ราคาตอนชำระเงินถูกกว่านี้",
            "รบกวนส่งสำเนาใบแจ้งหนี้ {invoice} เป็นไฟล์ PDF ให้ด้วยครับ",
            "บัตรของฉันถูกตัดเงินสองครั้งสำหรับคำสั่งซื้อ {order}",
            "ใบกำกับภาษี {invoice} ไม่มีเลขประจำตัวผู้เสียภาษีของบริษัทเรา",
        ),
        "refund": (
            "ฉันส่ง{product}คืนไปเมื่อ {days} วันก่อนแต่ยังไม่ได้รับเงินคืน {amount}",
            "เว็บไซต์แจ้งว่าคืนเงินภายในห้าวันทำการ แต่ตอนนี้ผ่านไปสองสัปดาห์แล้ว",
            "กรุณาคืนเงินค่า{product}ที่ชำรุดเข้าบัตรที่ใช้ชำระเงิน",
            "ขอรับเป็นเครดิตร้านค้าแทนการคืนเงินได้ไหมคะ",
        ),
        "login": (
            "เวลาเข้าสู่ระบบขึ้นข้อความว่ารหัสผ่านไม่ถูกต้องทั้งที่รหัสผ่านถูก",
            "ไม่ได้รับอีเมลรีเซ็ตรหัสผ่านเลย แม้แต่ในโฟลเดอร์สแปม",
            "แอปไม่รับรหัสยืนยันสองขั้นตอนของฉันแล้ว",
            "บัญชีของฉันถูกล็อกหลังจากเปลี่ยนรหัสผ่านเมื่อเช้านี้",
        ),
        "shipping": (
            "สถานะพัสดุของคำสั่งซื้อ {order} ไม่เปลี่ยนมา {days} วันแล้ว",
            "{carrier} แจ้งว่าส่งพัสดุแล้ว แต่ไม่มีของอยู่หน้าบ้านเลย",
            "ฉันย้ายบ้านแล้ว ช่วยส่งคำสั่งซื้อ {order} ไปที่อยู่ใหม่ได้ไหม",
            "กล่องพัสดุบุบและ{product}มีรอยขีดข่วน",
        ),
    },
    replies={
        "order": (
            "ตรวจสอบคำสั่งซื้อ {order} แล้ว ได้รับการยืนยันวันนี้และจะจัดส่งออกจากคลังสินค้าพรุ่งนี้ค่ะ",
            "ได้แก้ไขคำสั่งซื้อตามที่แจ้งแล้ว ท่านจะได้รับอีเมลยืนยันใหม่ครับ",
            "ขออภัยในความผิดพลาด เราได้ส่ง{product}ที่ถูกต้องไปให้แล้ว",
        ),
        "invoice": (
            "แนบใบแจ้งหนี้ที่แก้ไขแล้ว และได้คืนส่วนต่าง {amount} ให้เรียบร้อยแล้ว",
            "รายการตัดเงินครั้งที่สองเป็นเพียงการกันวงเงิน จะหายไปภายในสามวันทำการ",
            "ได้เพิ่มเลขประจำตัวผู้เสียภาษีและออกใบกำกับภาษี {invoice} ใหม่แล้ว",
        ),
        "refund": (
            "ได้ดำเนินการคืนเงิน {amount} วันนี้แล้ว ขึ้นอยู่กับธนาคาร จะได้รับภายในสามถึงห้าวันทำการ",
            "เราได้รับ{product}ที่ส่งคืนแล้วและกำลังดำเนินการคืนเงิน",
            "ได้เปลี่ยนเงินคืนเป็นเครดิตร้านค้าในบัญชีของท่านแล้ว",
        ),
        "login": (
            "ได้รีเซ็ตรหัสผ่านให้แล้ว กรุณาใช้ลิงก์ในอีเมลที่เพิ่งส่งไป",
            "ปลดล็อกบัญชีของท่านแล้ว กรุณาล้างแคชของเบราว์เซอร์แล้วลองใหม่อีกครั้ง",
            "ได้ปิดการยืนยันสองขั้นตอนชั่วคราวเพื่อให้ท่านเข้าสู่ระบบและตั้งค่าใหม่ได้",
        ),
        "shipping": (
            "ได้แจ้งให้{carrier}ตรวจสอบแล้ว จะได้รับคำตอบภายใน {days} วันทำการ",
            "พัสดุล่าช้าที่ศูนย์คัดแยกสินค้าและจะถึงภายในสองวัน",
            "ได้เปลี่ยนที่อยู่จัดส่งของคำสั่งซื้อ {order} แล้ว",
        ),
    },
    opening=("สวัสดีค่ะ", "สวัสดีครับ", "เรียนฝ่ายบริการลูกค้า"),
    sign_off=("ขอบคุณค่ะ\n{customer}", "ขอบคุณครับ\n{customer}"),
    greeting=("เรียนคุณ{name}", "สวัสดีค่ะคุณ{name}"),
    regards=("ขอแสดงความนับถือ\n{agent}", "ขอบคุณที่ติดต่อเรา\n{agent}"),
    follow_ups=("มีความคืบหน้าบ้างไหมคะ", "ยังรอคำตอบอยู่ครับ", "ลองใหม่อีกครั้งแล้วแต่ยังใช้ไม่ได้"),
    thanks=("ขอบคุณมาก ใช้งานได้แล้ว", "ขอบคุณที่ช่วยเหลืออย่างรวดเร็วค่ะ"),
    notes=(
        "ลูกค้าโทรมาสอบถามด้วย สัญญาว่าจะตอบภายในวันนี้",
        "สอบถามคลังสินค้าแล้ว สินค้าจะเข้าวันพฤหัสบดี",
        "อาจซ้ำกับเรื่องก่อนหน้าของลูกค้ารายนี้",
        "ส่งต่อให้ทีมเทคนิคระดับสอง",
    ),
    products=("หูฟังไร้สาย", "โต๊ะทำงานแบบยืน", "เครื่องบดกาแฟ", "รองเท้าเดินป่า", "นาฬิกาอัจฉริยะ", "เสื้อแจ็กเก็ตกันหนาว"),
    carriers=("Kerry Express", "ไปรษณีย์ไทย", "Flash Express"),
    currency=lambda amount: f"฿{amount * 35:,}",
    given=(
        ("สุภาพร", "supaporn", True),
        ("วิไลวรรณ", "wilaiwan", True),
        ("กมลชนก", "kamonchanok", True),
        ("อรุณี", "arunee", True),
        ("พิมพ์ชนก", "pimchanok", True),
        ("สมชาย", "somchai", False),
        ("ธนพล", "thanaphon", False),
        ("ณัฐวุฒิ", "nattawut", False),
        ("ปิยะพงษ์", "piyapong", False),
        ("อนุชา", "anucha", False),
    ),
    family=tuple(
        (native, native, latin, latin)
        for native, latin in (
            ("ศรีสุข", "srisuk"),
            ("วงศ์ใหญ่", "wongyai"),
            ("แก้วมณี", "kaewmanee"),
            ("ทองดี", "thongdee"),
            ("บุญมา", "boonma"),
            ("สุขสวัสดิ์", "suksawat"),
            ("จันทร์เพ็ญ", "chanpen"),
        )
    ),
    mail_domains=("gmail.com", "hotmail.co.th", "outlook.co.th"),
    country="TH",
)

DANISH = Language(
    code="da",
    subjects={
        "order": (
            "Spørgsmål til ordre {order}",
            "Kan jeg ændre min ordre {order}?",
            "Ordre {order} er stadig ikke bekræftet",
            "Forkert vare i ordre {order}",
        ),
        "invoice": (
            "Fejl i faktura {invoice}",
            "Kopi af faktura {invoice}",
            "Trukket to gange for ordre {order}",
            "CVR-nummer mangler på faktura {invoice}",
        ),
        "refund": (
            "Refusion for ordre {order}",
            "Jeg venter stadig på min refusion",
            "Returnering og refusion af {product}",
            "Ingen refusion efter {days} dage",
        ),
        "login": (
            "Kan ikke logge ind på min konto",
            "Mail til nulstilling af adgangskode kommer aldrig",
            "Tofaktorkoden bliver ikke godkendt",
            "Kontoen er låst efter skift af adgangskode",
        ),
        "shipping": (
            "Hvor er min pakke? Ordre {order}",
            "Forsinket levering af ordre {order}",
            "Pakken står som leveret, men jeg har ikke fået den",
            "Ændring af leveringsadresse for ordre {order}",
        ),
    },
    customer={
        "order": (
            "Jeg bestilte ordre {order} i mandags og har stadig ikke fået en bekræftelse.",
            "Kan I ændre størrelsen på ordre {order}, før den bliver sendt?",
            "Jeg bestilte {product}, men modtog noget helt andet.",
            "Kan ordre {order} stadig annulleres?",
        ),
        "invoice": (
            "Beløbet på faktura {invoice} er {amount}, men prisen ved betalingen var lavere.",
            "Vil I sende mig en kopi af faktura {invoice} som PDF?",
            "Mit kort er blevet trukket to gange for ordre {order}.",
            "Vores CVR-nummer mangler på faktura {invoice}, og det skal bruges til bogføringen.",
        ),
        "refund": (
            "Jeg returnerede {product} for {days} dage siden, men refusionen på {amount} er ikke kommet.",
            "Der står på jeres hjemmeside, at refusion tager fem hverdage, men der er gået to uger.",
            "Refundér venligst det beskadigede produkt ({product}) til mit betalingskort.",
            "Kan jeg få et tilgodebevis i stedet for pengene tilbage?",
        ),
        "login": (
            "Når jeg logger ind, får jeg beskeden »forkert adgangskode«, selvom den er rigtig.",
            "Mailen til nulstilling af adgangskoden kommer aldrig, heller ikke i spamfilteret.",
            "Appen godkender ikke længere min tofaktorkode.",
            "Min konto blev låst, efter jeg skiftede adgangskode i morges.",
        ),
        "shipping": (
            "Sporingen af ordre {order} har ikke ændret sig i {days} dage.",
            "{carrier} skriver, at pakken er leveret, men der stod intet ved døren.",
            "Jeg er flyttet; kan I sende ordre {order} til min nye adresse?",
            "Kassen kom frem med buler, og varen er ridset.",
        ),
    },
    replies={
        "order": (
            "Jeg har tjekket ordre {order}: den er bekræftet i dag og afsendes fra vores lager i morgen.",
            "Jeg har rettet ordren som ønsket; du får en ny ordrebekræftelse på mail.",
            "Beklager forvekslingen. Den rigtige vare er sendt, og du må beholde den anden.",
        ),
        "invoice": (
            "Jeg har vedhæftet en rettet faktura; differencen på {amount} er krediteret.",
            "Den dobbelte trækning er kun en reservation og forsvinder inden for tre hverdage.",
            "Jeg har tilføjet jeres CVR-nummer og udstedt faktura {invoice} igen.",
        ),
        "refund": (
            "Din refusion på {amount} er sendt i dag; afhængigt af din bank tager det tre til fem hverdage.",
            "Vi har modtaget den returnerede vare, og refusionen er på vej.",
            "Jeg har lavet refusionen om til et tilgodebevis, som allerede ligger på din konto.",
        ),
        "login": (
            "Jeg har nulstillet din adgangskode; brug linket i den mail, vi lige har sendt.",
            "Din konto er låst op igen. Ryd venligst browserens cache, og prøv igen.",
            "Jeg har midlertidigt slået tofaktorgodkendelse fra, så du kan logge ind og sætte den op igen.",
        ),
        "shipping": (
            "Jeg har oprettet en efterlysning hos {carrier}; vi får svar inden for {days} hverdage.",
            "Pakken er forsinket på sorteringscentralen og bør være fremme inden for to dage.",
            "Jeg har ændret leveringsadressen for ordre {order}.",
        ),
    },
    opening=("Hej,", "Hej med jer,", "Kære kundeservice,"),
    sign_off=("Tak,\n{customer}", "Venlig hilsen\n{customer}", "Mvh.\n{customer}"),
    greeting=("Hej {name},", "Kære {name},"),
    regards=("Venlig hilsen\n{agent}", "Hav en god dag!\n{agent}"),
    follow_ups=(
        "Er der nyt i sagen?",
        "Jeg venter stadig på svar.",
        "Jeg har prøvet igen, men det virker stadig ikke.",
    ),
    thanks=("Tak, nu virker det!", "Tusind tak for den hurtige hjælp."),
    notes=(
        "Kunden har også ringet; lovet svar i dag.",
        "Tjekket med lageret: varen kommer på torsdag.",
        "Muligvis dublet af en tidligere sag fra samme kunde.",
        "Sendt videre til 2nd level-support.",
    ),
    products=("trådløse høretelefoner", "hæve-sænkebord", "kaffekværn", "vandrestøvler", "smartwatch", "vinterjakke"),
    carriers=("PostNord", "GLS", "DAO"),
    currency=lambda amount: _grouped(amount * 7, ".") + ",00 kr.",
    given=_given("Mette Sofie Freja Ida Anne Karen", True) + _given("Lars Mads Rasmus Søren Jørgen Anders", False),
    family=_family("Jensen Nielsen Hansen Pedersen Andersen Christensen Larsen Sørensen Rasmussen Jørgensen"),
    mail_domains=("gmail.com", "hotmail.dk", "mail.dk", "outlook.dk"),
    country="DK",
)

LANGUAGES: dict[str, Language] = {lang.code: lang for lang in (ENGLISH, VIETNAMESE, RUSSIAN, THAI, DANISH)}

SPAM_SUBJECTS = (
    "Congratulations! You have won a $500 gift card",
    "SEO services for {domain}",
    "Увеличим продажи вашего сайта в 10 раз",
    "Crypto opportunity: 30% monthly returns, guaranteed",
    "Final notice: your mailbox storage is full",
)
SPAM_BODIES = (
    "Click the link below to claim your prize before midnight.",
    "We can bring your website to the first page of Google within one week. Reply for a free audit.",
    "Только сегодня: скидка 90% на продвижение. Напишите нам в Telegram.",
    "Verify your account now or it will be deleted: http://mail-verify.example/login",
)

# Why a ticket moved, as the transferring agent writes it in the internal note.
TRANSFER_REASONS = {
    "order": "this is about changing an order",
    "invoice": "the customer asks about an invoice",
    "refund": "refund request, Returns handles these",
    "login": "login problem, needs Technical",
    "shipping": "delivery question for the shipping team",
}

TOPIC_TAGS = {
    "order": ("order", "order-change", "wrong-item"),
    "invoice": ("invoice", "double-charge", "vat"),
    "refund": ("refund", "return", "store-credit"),
    "login": ("login", "password-reset", "2fa"),
    "shipping": ("shipping", "delivery-delay", "address-change", "damaged"),
}
GENERAL_TAGS = ("follow-up", "feedback", "escalated", "repeat-customer", "phone-callback")


# -- departments ----------------------------------------------------------------


@dataclass(frozen=True)
class DepartmentPlan:
    name: str
    tagline: str
    volume: int  # relative share of tickets
    topics: tuple[int, int, int, int, int]  # weights over TOPICS
    languages: Mapping[str, int]  # weights over LANGUAGES
    tag: str | None = None  # every ticket of the department carries it

    @property
    def email(self) -> str:
        return f"{slugify(self.name)}@{DOMAIN}"

    @property
    def sender_name(self) -> str:
        return f"{COMPANY} {self.name}"

    @property
    def signature(self) -> str:
        return f"{self.sender_name}\n{self.tagline}\n{self.email} · +45 70 20 30 40 · https://{DOMAIN}/help"


_ALL_LANGUAGES = {"en": 40, "vi": 15, "ru": 15, "th": 15, "da": 15}
BASE_DEPARTMENTS = (
    DepartmentPlan("Sales", "Questions before you buy, Monday to Saturday 08–18", 12, (5, 1, 1, 1, 2), _ALL_LANGUAGES),
    DepartmentPlan("Billing", "Invoices, payments and refunds, weekdays 09–17", 14, (1, 6, 3, 0, 1), _ALL_LANGUAGES),
    DepartmentPlan("Technical", "Accounts, logins and the app, every day 07–22", 18, (1, 0, 0, 7, 1), _ALL_LANGUAGES),
    DepartmentPlan("Returns", "Returns and exchanges within 30 days", 10, (2, 0, 6, 0, 3), _ALL_LANGUAGES),
    DepartmentPlan(
        "Wholesale", "Business accounts and volume orders", 5, (5, 3, 0, 0, 2), {"en": 60, "da": 30, "vi": 10}, "b2b"
    ),
    DepartmentPlan("VIP", "Your personal desk, answered within the hour", 3, (2, 2, 2, 2, 2), _ALL_LANGUAGES, "vip"),
)
REGIONS: tuple[tuple[str, Mapping[str, int]], ...] = (
    ("EMEA", {"en": 50, "ru": 25, "da": 25}),
    ("APAC", {"en": 30, "th": 35, "vi": 35}),
    ("Americas", {"en": 100}),
    ("Nordics", {"da": 75, "en": 25}),
    ("DACH", {"en": 100}),
    ("LATAM", {"en": 100}),
    ("CIS", {"ru": 90, "en": 10}),
    ("Vietnam", {"vi": 90, "en": 10}),
    ("Thailand", {"th": 90, "en": 10}),
    ("Benelux", {"en": 100}),
    ("Iberia", {"en": 100}),
    ("ANZ", {"en": 100}),
)


# Canned responses every department gets, then those of a department by name (templates: core.canned).
COMMON_CANNED = (
    ("Greeting", "Hello {{ contact_name }},\n\nthank you for writing to {{ department }} about {{ ticket_ref }}.\n"),
    ("Closing", "\nIf anything is still unclear, just reply to this mail.\n\nBest regards,\n{{ agent_name }}"),
    ("Need more details", "Hello {{ contact_name }},\n\nto help you with \"{{ subject }}\" we need a little more: "
     "your order number, and a screenshot if something looks wrong.\n\n{{ agent_name }}"),
)
DEPARTMENT_CANNED: dict[str, tuple[tuple[str, str], ...]] = {
    "Billing": (
        ("Refund issued", "Hello {{ contact_name }},\n\nwe have refunded the charge; it reaches your account "
         "within 3–5 banking days.\n\n{{ agent_name }}"),
        ("Invoice copy", "Hello {{ contact_name }},\n\na copy of your invoice is attached to this reply "
         "({{ ticket_ref }}).\n\n{{ agent_name }}"),
    ),
    "Technical": (
        ("Password reset", "Hello {{ contact_name }},\n\nplease use \"Forgot password\" on the sign-in page; the "
         "link in the mail works for one hour.\n\n{{ agent_name }}"),
        ("Clear the app cache", "Please sign out, clear the app's cache (Settings → Storage) and sign in again. "
         "Does the problem stay?"),
    ),
    "Returns": (
        ("Return label", "Hello {{ contact_name }},\n\nyour prepaid return label for {{ ticket_ref }} is "
         "attached. Drop the parcel at any post office within 14 days.\n\n{{ agent_name }}"),
    ),
    "Sales": (
        ("Quote follow-up", "Hello {{ contact_name }},\n\nhere is the quote you asked for. It is valid for 30 "
         "days.\n\n{{ agent_name }}"),
    ),
}


def department_plans(count: int) -> list[DepartmentPlan]:
    """The six base departments, then regional desks (EMEA, APAC, …), then numbered regions."""
    plans = list(BASE_DEPARTMENTS[:count])
    for index in range(len(plans), count):
        region = index - len(BASE_DEPARTMENTS)
        if region < len(REGIONS):
            name, languages = REGIONS[region]
        else:
            name, languages = f"Region {region + 1}", _ALL_LANGUAGES
        plans.append(DepartmentPlan(name, f"Customers in {name}", 6, (2, 2, 2, 2, 2), languages))
    return plans


# -- the summary ------------------------------------------------------------------


@dataclass(frozen=True)
class DemoSummary:
    """What build_demo made, and whom to log in as to look at it."""

    supervisor: str  # a supervisor in several departments
    admin: str  # the admin, a member of every department
    departments: int
    agents: int
    contacts: int
    tickets: int
    messages: int
    events: int
    seconds: float
    long_thread_ref: str | None = None  # the ticket given `long_thread` messages, if asked
    department_names: tuple[str, ...] = field(default=())


# -- generation ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Person:
    given: str
    name: str
    email: str
    language: str


@dataclass
class _Batch:
    tickets: list[dict[str, Any]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    ticket_tags: list[dict[str, int]] = field(default_factory=list)


def _weighted(weights: Mapping[Any, int] | Sequence[tuple[Any, int]]) -> tuple[Any, ...]:
    """A tuple where each choice repeats by its weight: rng.choice() on it is a weighted pick, and fast."""
    items = weights.items() if isinstance(weights, Mapping) else weights
    return tuple(choice for choice, weight in items for _ in range(weight))


# Status by the ticket's age: recent tickets are still being worked, old ones closed.
_STATUS_BY_AGE = (
    (1.0, _weighted({"new": 40, "open": 30, "pending": 20, "resolved": 10})),
    (3.0, _weighted({"new": 12, "open": 35, "pending": 25, "resolved": 28})),
    (14.0, _weighted({"new": 2, "open": 18, "pending": 15, "resolved": 55, "closed": 10})),
    (float("inf"), _weighted({"open": 2, "pending": 2, "resolved": 16, "closed": 80})),
)
_PRIORITIES = _weighted({Priority.LOW: 15, Priority.NORMAL: 60, Priority.HIGH: 20, Priority.URGENT: 5})
_VIP_PRIORITIES = _weighted({Priority.NORMAL: 40, Priority.HIGH: 45, Priority.URGENT: 15})
_CHANNELS = _weighted({"email": 70, "web": 15, "chat": 8, "phone": 5, "api": 2})
# SLA targets (hours) by priority: first response, resolution.
_FIRST_RESPONSE_HOURS = {0: 24, 1: 8, 2: 4, 3: 1}
_RESOLUTION_HOURS = {0: 120, 1: 72, 2: 24, 3: 8}
SPAM_SHARE = 0.015
TRANSFER_SHARE = 0.07
HOUR = 3600.0
DAY = 86400.0


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat()


class _Generator:
    """Makes the rows of tickets, their threads, tags and history; pure Python, no database."""

    def __init__(
        self,
        rng: random.Random,
        *,
        now: datetime,
        tickets: int,
        messages_per_ticket: float,
        departments: list[tuple[int, DepartmentPlan]],
        workers: dict[int, list[tuple[int, str, str]]],  # department id -> (agent id, handle, given name)
        contacts: list[tuple[int, _Person]],
        tag_ids: dict[str, int],
        first_ticket_id: int,
        first_message_id: int,
        long_thread: int,
    ) -> None:
        self.rng = rng
        self.now = now.timestamp()
        self.total = tickets
        self.start = self.now - DAYS * DAY
        self.step = (DAYS * DAY) / max(tickets, 1)
        # Extra entries after the first two of a worked ticket follow a geometric
        # law; its mean is what makes the desk average `messages_per_ticket`.
        extra = max(messages_per_ticket - 2.0, 0.0)
        self.more = extra / (1.0 + extra)
        self.departments = departments
        self.department_pool = _weighted([(index, plan.volume) for index, (_, plan) in enumerate(departments)])
        self.language_pools = [_weighted(plan.languages) for _, plan in departments]
        self.topic_pools = [_weighted(list(zip(TOPICS, plan.topics, strict=True))) for _, plan in departments]
        self.names = {department_id: plan.name for department_id, plan in departments}
        self.workers = workers
        self.contacts_by_language: dict[str, list[tuple[int, _Person]]] = {code: [] for code in LANGUAGES}
        for contact in contacts:
            self.contacts_by_language[contact[1].language].append(contact)
        self.tag_ids = tag_ids
        self.ticket_id = first_ticket_id
        self.message_id = first_message_id
        self.long_thread_index = int(tickets * 0.9) if long_thread else -1
        self.long_thread = long_thread
        self.long_thread_id: int | None = None

    # -- small pieces --------------------------------------------------------------

    def _contact(self, department_index: int) -> tuple[int, _Person]:
        pool = self.contacts_by_language[self.rng.choice(self.language_pools[department_index])]
        if not pool:
            pool = next(people for people in self.contacts_by_language.values() if people)
        # A few customers write often; most write once or twice.
        return pool[int(len(pool) * self.rng.random() ** 1.6)]

    def _status(self, created: float) -> str:
        age = (self.now - created) / DAY
        for limit, pool in _STATUS_BY_AGE:
            if age < limit:
                return str(self.rng.choice(pool))
        raise AssertionError("the last age bucket is unbounded")

    def _context(self, lang: Language) -> dict[str, str]:
        rng = self.rng
        return {
            "order": str(rng.randrange(1_000_000, 9_999_999)),
            "invoice": f"INV-{rng.randrange(2024, 2027)}-{rng.randrange(10_000, 99_999)}",
            "amount": lang.currency(rng.randrange(19, 1500)),
            "product": rng.choice(lang.products),
            "carrier": rng.choice(lang.carriers),
            "days": str(rng.randrange(3, 21)),
            "domain": DOMAIN,
        }

    def _customer_text(self, lang: Language, topic: str, person: _Person, context: dict[str, str]) -> str:
        lines = self.rng.sample(lang.customer[topic], 2 if self.rng.random() < 0.4 else 1)
        body = " ".join(line.format_map(context) for line in lines)
        return f"{self.rng.choice(lang.opening)}\n\n{body}\n\n" + self.rng.choice(lang.sign_off).format(
            customer=person.name
        )

    def _follow_up_text(self, lang: Language, person: _Person, thanks: bool) -> str:
        line = self.rng.choice(lang.thanks if thanks else lang.follow_ups)
        return f"{line}\n\n" + self.rng.choice(lang.sign_off).format(customer=person.name)

    def _reply_text(self, lang: Language, topic: str, person: _Person, agent: str, context: dict[str, str]) -> str:
        lines = self.rng.sample(lang.replies[topic], 2 if self.rng.random() < 0.3 else 1)
        body = " ".join(line.format_map(context) for line in lines)
        return (
            lang.greeting[self.rng.randrange(len(lang.greeting))].format(name=person.given)
            + f"\n\n{body}\n\n"
            + self.rng.choice(lang.regards).format(agent=agent)
        )

    def _note_text(self, lang: Language) -> str:
        # Teams often write internal notes in English even when the customer does not.
        source = lang if self.rng.random() < 0.6 else ENGLISH
        return self.rng.choice(source.notes)

    def _entry_times(self, created: float, count: int, status: str) -> list[float]:
        """When each thread entry was written: the first at creation, the rest in order after it."""
        if status in ("resolved", "closed"):
            span = min(self.now - created - 60.0, self.rng.uniform(0.5 * HOUR, 6 * DAY))
        else:
            span = (self.now - created - 60.0) * self.rng.uniform(0.3, 1.0)
        span = max(span, 60.0)
        later = sorted(created + 30.0 + self.rng.random() * span for _ in range(count - 1))
        return [created, *later]

    def _kinds(self, count: int, status: str) -> list[str]:
        """The thread's shape: customer first, then replies, follow-ups and notes taking turns."""
        if status == "new":
            return ["customer"] * count
        kinds = ["customer"]
        rng = self.rng
        while len(kinds) < count:
            last = kinds[-1]
            if last == "customer":
                kinds.append("note" if rng.random() < 0.15 else "reply")
            elif last == "note":
                kinds.append("reply")
            else:
                kinds.append("note" if rng.random() < 0.1 else "customer")
        if "reply" not in kinds and count > 1:
            kinds[-1] = "reply"
        if status == "pending" and kinds[-1] != "reply":
            kinds[-1] = "reply"  # pending means the agent answered and waits for the customer
        return kinds

    # -- one ticket ----------------------------------------------------------------

    def ticket(self, index: int, batch: _Batch) -> None:
        rng = self.rng
        ticket_id = self.ticket_id
        self.ticket_id += 1
        created = self.start + (index + rng.random()) * self.step
        final_index = rng.choice(self.department_pool)
        final_id, plan = self.departments[final_index]
        contact_id, person = self._contact(final_index)
        lang = LANGUAGES[person.language]
        channel = rng.choice(_CHANNELS)
        spam = rng.random() < SPAM_SHARE
        status = "spam" if spam else self._status(created)
        long_thread = index == self.long_thread_index
        if long_thread:
            status = "open"
            self.long_thread_id = ticket_id
        topic = rng.choice(self.topic_pools[final_index])
        context = self._context(lang)
        priority = int(rng.choice(_VIP_PRIORITIES if plan.tag == "vip" else _PRIORITIES))

        # Thread length: a worked ticket has the customer's mail and at least one answer.
        if long_thread:
            count = self.long_thread
        elif status in ("new", "spam"):
            count = 2 if status == "new" and rng.random() < 0.2 else 1
        else:
            count = 2
            while count < 40 and rng.random() < self.more:
                count += 1
        kinds = self._kinds(count, status)
        times = self._entry_times(created, count, status)

        # Transfer: after the customer's first message, before anyone answered, with a note
        # from the first department saying why.
        transferred = not spam and len(self.departments) > 1 and rng.random() < TRANSFER_SHARE
        first_id = final_id
        transfer_at = 0.0
        if transferred:
            while first_id == final_id:
                first_id = self.departments[rng.randrange(len(self.departments))][0]
            if count > 1:
                transfer_at = created + (times[1] - created) * rng.uniform(0.2, 0.8)
            else:
                transfer_at = min(created + rng.uniform(5 * 60.0, HOUR), self.now - 30.0)
            kinds.insert(1, "transfer")
            times.insert(1, transfer_at)

        workers = self.workers[final_id]
        assignee = None
        if not spam and (rng.random() < (0.45 if status == "new" else 0.9) or long_thread):
            assignee = rng.choice(workers)

        subject = (
            rng.choice(SPAM_SUBJECTS).format_map(context)
            if spam
            else rng.choice(lang.subjects[topic]).format_map(context)
        )
        contact_domain = person.email.rsplit("@", 1)[1]
        history: list[tuple[float, int, dict[str, Any]]] = []  # (at, order, event row)
        order = 0

        def event(
            at: float,
            kind: str,
            actor: tuple[int, str, str] | None,
            department: int,
            data: dict[str, Any],
            prior: int | None = None,
        ) -> None:
            nonlocal order
            order += 1
            at = min(at, self.now)
            history.append(
                (
                    at,
                    order,
                    {
                        "at": datetime.fromtimestamp(at, UTC),
                        "kind": kind,
                        "actor_id": actor[0] if actor else None,
                        "ticket_id": ticket_id,
                        "department_id": department,
                        "prior_department_id": prior,
                        "data": {"by": actor[1] if actor else "system", **data},
                    },
                )
            )

        def department_at(at: float) -> int:
            return first_id if transferred and at < transfer_at else final_id

        event(
            created,
            "ticket.created",
            None,
            first_id,
            {
                "channel": channel,
                "department": self.names[first_id],
                "contact": person.email,
            },
        )

        message_count = 0
        first_response: float | None = None
        last_customer: float | None = None
        last_reply: float | None = None
        last_message_id: str | None = None
        current_status = "new"
        messages = batch.messages

        def add_message(
            at: float,
            kind: str,
            author: tuple[int, str, str] | None,
            body: str,
            mail_id: str | None = None,
            reply_to: str | None = None,
        ) -> int:
            nonlocal message_count
            message_id = self.message_id
            self.message_id += 1
            message_count += 1
            messages.append(
                {
                    "id": message_id,
                    "ticket_id": ticket_id,
                    "kind": kind,
                    "author_agent_id": author[0] if author else None,
                    "author_contact_id": None if author else contact_id,
                    "body_text": body,
                    "body_html": None,
                    "message_id": mail_id,
                    "in_reply_to": reply_to,
                    "references": reply_to,
                    "delivery_status": "sent" if kind == "reply" and channel == "email" else None,
                    "created_at": datetime.fromtimestamp(at, UTC),
                }
            )
            return message_id

        assign_at = None
        if assignee is not None:
            after = transfer_at if transferred else created
            first_reply_at = next((t for t, k in zip(times, kinds, strict=True) if k == "reply"), None)
            limit = first_reply_at if first_reply_at is not None else min(after + 4 * HOUR, self.now - 20.0)
            assign_at = after + (limit - after) * rng.uniform(0.1, 0.9)

        last = len(kinds) - 1
        for position, (at, kind) in enumerate(zip(times, kinds, strict=True)):
            department = department_at(at)
            if kind == "customer":
                if spam:
                    body = rng.choice(SPAM_BODIES)
                elif position == 0:
                    body = self._customer_text(lang, topic, person, context)
                else:
                    thanks = position == last and status in ("resolved", "closed")
                    body = self._follow_up_text(lang, person, thanks)
                mail_id = f"<{rng.getrandbits(64):016x}.{ticket_id}@{contact_domain}>" if channel == "email" else None
                add_message(at, "customer", None, body, mail_id, last_message_id)
                last_message_id = mail_id or last_message_id
                last_customer = at
                continue
            if kind == "transfer":
                mover = rng.choice(self.workers[first_id])
                note_id = add_message(
                    at, "note", mover, f"Moving to {self.names[final_id]}: {TRANSFER_REASONS[topic]}."
                )
                event(
                    at,
                    "ticket.transferred",
                    mover,
                    final_id,
                    {
                        "changes": {
                            "department_id": {"before": first_id, "after": final_id},
                            "message_count": {"before": message_count - 1, "after": message_count},
                        },
                        "from": self.names[first_id],
                        "to": self.names[final_id],
                        "note_id": note_id,
                    },
                    prior=first_id,
                )
                continue
            author = assignee if kind == "reply" and assignee is not None else rng.choice(self.workers[department])
            if kind == "note":
                message_id = add_message(at, "note", author, self._note_text(lang))
                event(
                    at,
                    "ticket.noted",
                    author,
                    department,
                    {
                        "changes": {"message_count": {"before": message_count - 1, "after": message_count}},
                        "message_id": message_id,
                    },
                )
                continue
            # An agent reply: our Message-ID, threaded under the customer's last mail.
            our_id = f"<td-{ticket_id}-{self.message_id}@{DOMAIN}>" if channel == "email" else None
            message_id = add_message(
                at, "reply", author, self._reply_text(lang, topic, person, author[2], context), our_id, last_message_id
            )
            changes: dict[str, Any] = {
                "message_count": {"before": message_count - 1, "after": message_count},
                "last_agent_reply_at": {"before": _iso(last_reply) if last_reply else None, "after": _iso(at)},
            }
            if first_response is None:
                first_response = at
                changes["first_response_at"] = {"before": None, "after": _iso(at)}
            target = None
            if position == last and status in ("pending", "resolved", "closed"):
                target = "pending" if status == "pending" else "resolved"  # "reply and set status"
            elif current_status == "new":
                target = "open"
            if target is not None and target != current_status:
                changes["status"] = {"before": current_status, "after": target}
                if target == "resolved":
                    changes["resolved_at"] = {"before": None, "after": _iso(at)}
                current_status = target
            last_reply = at
            last_message_id = our_id or last_message_id
            event(at, "ticket.replied", author, department, {"changes": changes, "message_id": message_id})

        resolved_at: float | None = None
        closed_at: float | None = None
        if current_status == "resolved":
            resolved_at = last_reply
        end = times[-1]
        if status in ("resolved", "closed") and current_status != "resolved":
            resolved_at = min(end + rng.uniform(5 * 60.0, 4 * HOUR), self.now - 10.0)
            event(
                resolved_at,
                "ticket.status",
                assignee or rng.choice(workers),
                final_id,
                {
                    "changes": {
                        "status": {"before": current_status, "after": "resolved"},
                        "resolved_at": {"before": None, "after": _iso(resolved_at)},
                    },
                },
            )
            current_status = "resolved"
        if status == "closed":
            assert resolved_at is not None
            # Closed by the scheduler a few days after resolution.
            closed_at = max(resolved_at, min(resolved_at + rng.uniform(1 * DAY, 4 * DAY), self.now - 5.0))
            event(
                closed_at,
                "ticket.status",
                None,
                final_id,
                {
                    "changes": {
                        "status": {"before": "resolved", "after": "closed"},
                        "closed_at": {"before": None, "after": _iso(closed_at)},
                    },
                },
            )
        if status == "open" and current_status == "new":
            opener = assignee or rng.choice(workers)
            event(
                end + 60.0,
                "ticket.status",
                opener,
                final_id,
                {"changes": {"status": {"before": "new", "after": "open"}}},
            )
        if spam:
            marker = rng.choice(workers)
            event(
                created + rng.uniform(60.0, 2 * HOUR),
                "ticket.status",
                marker,
                final_id,
                {"changes": {"status": {"before": "new", "after": "spam"}}},
            )

        if assignee is not None and assign_at is not None:
            by = assignee if rng.random() < 0.6 else rng.choice(workers)
            event(
                assign_at,
                "ticket.assigned",
                by,
                final_id,
                {
                    "changes": {"assignee_id": {"before": None, "after": assignee[0]}},
                    "assignee": assignee[1],
                },
            )

        tags: list[str] = []
        if not spam:
            if plan.tag:
                tags.append(plan.tag)
            if rng.random() < 0.7:
                tags.append(rng.choice(TOPIC_TAGS[topic]))
            if rng.random() < 0.15:
                tags.append(rng.choice(GENERAL_TAGS))
        if tags:
            tagger = assignee or rng.choice(workers)
            tag_at = min(created + rng.uniform(10 * 60.0, 3 * HOUR), self.now - 15.0)
            if transferred and tag_at < transfer_at:
                tag_at = transfer_at + 60.0
            event(tag_at, "ticket.tagged", tagger, final_id, {"changes": {}, "added": sorted(tags), "removed": []})
            batch.ticket_tags.extend({"ticket_id": ticket_id, "tag_id": self.tag_ids[name]} for name in tags)

        if not spam and priority != int(Priority.NORMAL) and rng.random() < 0.3:
            at = min(created + rng.uniform(60.0, HOUR), self.now - 25.0)
            changer = (
                assignee
                if assignee is not None and department_at(at) == final_id
                else rng.choice(self.workers[department_at(at)])
            )
            event(
                at,
                "ticket.priority",
                changer,
                department_at(at),
                {"changes": {"priority": {"before": int(Priority.NORMAL), "after": priority}}},
            )

        history.sort(key=lambda item: (item[0], item[1]))
        batch.events.extend(row for _, _, row in history)
        updated = max(history[-1][0], times[-1], transfer_at)
        due_first = created + _FIRST_RESPONSE_HOURS[priority] * HOUR
        due_resolution = created + _RESOLUTION_HOURS[priority] * HOUR
        waiting = status == "open" and kinds[-1] == "customer" and last_customer is not None
        # The running clocks of a new or open ticket, as core.sla sets them: (at-risk moment, due), at risk
        # after 80% of each target.
        running: list[tuple[float, float]] = []
        if status in ("new", "open"):
            if first_response is None:
                running.append((created + 0.8 * (due_first - created), due_first))
            elif waiting and last_customer is not None:
                allowed = _FIRST_RESPONSE_HOURS[priority] * HOUR
                running.append((last_customer + 0.8 * allowed, last_customer + allowed))
            running.append((created + 0.8 * (due_resolution - created), due_resolution))
        waits = status in ("new", "open") and (
            last_reply is None or last_customer is None or last_customer > last_reply
        )
        batch.tickets.append(
            {
                "id": ticket_id,
                "subject": subject,
                "department_id": final_id,
                "assignee_id": assignee[0] if assignee else None,
                "contact_id": contact_id,
                "status": status,
                "priority": priority,
                "channel": channel,
                "created_at": datetime.fromtimestamp(created, UTC),
                "updated_at": datetime.fromtimestamp(updated, UTC),
                "first_response_at": _moment(first_response),
                "resolved_at": _moment(resolved_at),
                "closed_at": _moment(closed_at),
                "last_customer_message_at": _moment(last_customer),
                "last_agent_reply_at": _moment(last_reply),
                "first_response_due": datetime.fromtimestamp(due_first, UTC),
                "next_response_due": _moment(
                    last_customer + _FIRST_RESPONSE_HOURS[priority] * HOUR if waiting and last_customer else None
                ),
                "resolution_due": datetime.fromtimestamp(due_resolution, UTC),
                "sla_risk_at": _moment(min((risk for risk, _ in running), default=None)),
                "sla_breach_at": _moment(min((due for _, due in running), default=None)),
                "waiting_since": _moment((last_customer if last_customer is not None else created) if waits else None),
                "message_count": message_count,
                "version": len(history),  # 1 for the creation, +1 per change after it
            }
        )


def _moment(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


# -- people -------------------------------------------------------------------------


def _person(rng: random.Random, lang: Language) -> tuple[str, str, str, str]:
    """(given name, full name, ascii given, ascii family) of someone writing in `lang`."""
    given, given_ascii, female = rng.choice(lang.given)
    male_family, female_family, male_ascii, female_ascii = rng.choice(lang.family)
    family, family_ascii = (female_family, female_ascii) if female else (male_family, male_ascii)
    return given, lang.full_name(given, family, female), given_ascii, family_ascii


def _contacts(
    rng: random.Random, count: int, first_id: int, now: datetime
) -> tuple[list[dict[str, Any]], list[tuple[int, _Person]]]:
    languages = _weighted(_ALL_LANGUAGES)
    rows: list[dict[str, Any]] = []
    people: list[tuple[int, _Person]] = []
    oldest = now - timedelta(days=DAYS + 365)
    for index in range(count):
        lang = LANGUAGES[rng.choice(languages)]
        given, name, given_ascii, family_ascii = _person(rng, lang)
        contact_id = first_id + index
        # The contact number keeps addresses unique across a million customers.
        email = f"{given_ascii}.{family_ascii}{contact_id}@{rng.choice(lang.mail_domains)}"
        since = oldest + timedelta(seconds=rng.random() * 365 * DAY)
        rows.append(
            {
                "id": contact_id,
                "email": email,
                "name": name,
                "attributes": {"language": lang.code, "country": lang.country},
                "notes": "",
                "created_at": since,
                "updated_at": since,
            }
        )
        people.append((contact_id, _Person(given=given, name=name, email=email, language=lang.code)))
    return rows, people


@dataclass(frozen=True)
class _AgentPlan:
    handle: str
    name: str
    given: str
    role: str
    departments: tuple[str, ...]


def _agent_plans(rng: random.Random, count: int, departments: list[str]) -> list[_AgentPlan]:
    """One admin in every department, a few supervisors over two or three, agents with a home and sometimes more."""
    languages = _weighted(_ALL_LANGUAGES)
    supervisors = max(1, round(count * 0.1)) if count > 1 else 0
    plans: list[_AgentPlan] = []
    taken: set[str] = set()
    for index in range(count):
        lang = LANGUAGES[rng.choice(languages)]
        given, name, given_ascii, family_ascii = _person(rng, lang)
        handle = f"{given_ascii}.{family_ascii}"
        suffix = 2
        while handle in taken:
            handle = f"{given_ascii}.{family_ascii}{suffix}"
            suffix += 1
        taken.add(handle)
        if index == 0:
            role, member_of = "admin", list(departments)
            handle = "admin"  # easy to remember on the demo's login line
        elif index <= supervisors:
            role = "supervisor"
            home = (index - 1) % len(departments)
            member_of = [departments[(home + step) % len(departments)] for step in range(min(3, len(departments)))]
            if index > 1:
                member_of = member_of[: rng.choice((2, 3))]
        else:
            role = "agent"
            home = (index - 1 - supervisors) % len(departments)
            member_of = [departments[home]]
            for chance in (0.25, 0.08):
                if rng.random() < chance:
                    extra = departments[rng.randrange(len(departments))]
                    if extra not in member_of:
                        member_of.append(extra)
        plans.append(_AgentPlan(handle, name, given, role, tuple(member_of)))
    return plans


# -- the build ------------------------------------------------------------------------


async def build_demo(
    desk: Desk,
    *,
    tickets: int = 2000,
    departments: int = 6,
    agents: int = 20,
    messages_per_ticket: float = 3.0,
    seed: int = 7,
    progress: Callable[[int, int], None] | None = None,
    now: datetime | None = None,
    long_thread: int = 0,
    batch_size: int = BATCH,
) -> DemoSummary:
    """Fill an empty, migrated desk with a realistic help desk; the same seed (and `now`) makes the same desk.

    `progress(done, total)` is called after each batch of tickets is written.
    `long_thread` > 0 gives one open ticket that many messages (the benchmark
    opens it); its ref is in the summary.
    """
    if tickets < 0 or departments < 1 or agents < 1 or messages_per_ticket < 1:
        raise ValueError("build_demo needs tickets >= 0, departments >= 1, agents >= 1, messages_per_ticket >= 1")
    began = time.perf_counter()
    rng = random.Random(seed)
    moment = (now or utcnow()).astimezone(UTC).replace(microsecond=0)
    system = Actor.system()

    plans = department_plans(departments)
    department_ids: list[tuple[int, DepartmentPlan]] = []
    for plan in plans:
        view = await desk.add_department(
            system, plan.name, email=plan.email, sender_name=plan.sender_name, signature=plan.signature
        )
        department_ids.append((view.id, plan))
        for name, body in COMMON_CANNED + DEPARTMENT_CANNED.get(plan.name, ()):
            await desk.add_canned(system, plan.name, name, body)
    names = [plan.name for plan in plans]
    id_of = {plan.name: department_id for department_id, plan in department_ids}

    agent_plans = _agent_plans(rng, agents, names)
    members: dict[int, list[tuple[int, str, str]]] = {department_id: [] for department_id, _ in department_ids}
    for agent in agent_plans:
        added = await desk.add_agent(
            system,
            agent.handle,
            name=agent.name,
            email=f"{agent.handle}@{DOMAIN}",
            role=agent.role,
            departments=list(agent.departments),
        )
        for department in agent.departments:
            members[id_of[department]].append((added.id, added.handle, agent.given))
    supervisor = next(
        (agent.handle for agent in agent_plans if agent.role == "supervisor" and len(agent.departments) > 1),
        next((agent.handle for agent in agent_plans if agent.role == "supervisor"), agent_plans[0].handle),
    )

    # Declarative `__table__` is typed FromClause; these models are mapped to Tables.
    tables = [cast(Table, model.__table__) for model in (Ticket, Message, Contact, Tag)]
    ticket_table, message_table, contact_table, tag_table = tables
    async with desk.db.writing() as session:
        first_ticket = await bulk.next_id(session, ticket_table)
        first_message = await bulk.next_id(session, message_table)
        first_contact = await bulk.next_id(session, contact_table)
        first_tag = await bulk.next_id(session, tag_table)
        existing = {name: tag_id for name, tag_id in await session.execute(select(Tag.name, Tag.id))}
        wanted = sorted(
            {tag for group in TOPIC_TAGS.values() for tag in group}
            | set(GENERAL_TAGS)
            | {plan.tag for plan in plans if plan.tag}
        )
        new_tags = [name for name in wanted if name not in existing]
        tag_rows: list[dict[str, Any]] = [
            {"id": first_tag + index, "name": name} for index, name in enumerate(new_tags)
        ]
        await bulk.insert_rows(session, tag_table, tag_rows)
        tag_ids = {**existing, **{row["name"]: row["id"] for row in tag_rows}}

    contact_count = max(10, int(tickets * 0.6))
    contact_rows, people = _contacts(rng, contact_count, first_contact, moment)
    for start in range(0, len(contact_rows), 50_000):
        async with desk.db.writing() as session:
            await bulk.insert_rows(session, contact_table, contact_rows[start : start + 50_000])
    del contact_rows

    generator = _Generator(
        rng,
        now=moment,
        tickets=tickets,
        messages_per_ticket=messages_per_ticket,
        departments=department_ids,
        # Replies, notes and assignments come from the departments' own people,
        # not from the admin who is a member everywhere (unless nobody else is).
        workers={
            department_id: [person for person in people if person[1] != agent_plans[0].handle] or people
            for department_id, people in members.items()
        },
        contacts=people,
        tag_ids=tag_ids,
        first_ticket_id=first_ticket,
        first_message_id=first_message,
        long_thread=long_thread,
    )

    async with desk.db.reading() as session:
        calendars = await durations.calendars_of(session)

    def make_batch(start: int) -> _Batch:
        batch = _Batch()
        for index in range(start, min(start + batch_size, tickets)):
            generator.ticket(index, batch)
        # The report durations a live desk stores as things happen (core.reports.durations).
        durations.fill_rows(calendars, batch.tickets, batch.messages, batch.events)
        return batch

    # The FTS rebuild re-reads every message of the desk, the triggers only the
    # new ones but at about 4.5 times the cost per row (measured: 50k tickets,
    # 22 s of triggers against a 5 s rebuild); so suspend unless the desk
    # already holds several times what this load adds.
    tickets_before = first_ticket - 1
    message_total = event_total = 0
    async with bulk.text_index_suspended(desk.db, enabled=tickets * 4 >= tickets_before):
        for start in range(0, tickets, batch_size):
            batch = make_batch(start)
            async with desk.db.writing() as session:
                await bulk.tune_for_bulk(session)
                await bulk.insert_rows(session, ticket_table, batch.tickets)
                await bulk.insert_rows(session, message_table, batch.messages)
                await bulk.insert_rows(session, cast(Table, TicketTag.__table__), batch.ticket_tags)
                await bulk.insert_rows(session, cast(Table, Event.__table__), batch.events)
            message_total += len(batch.messages)
            event_total += len(batch.events)
            if progress is not None:
                progress(min(start + batch_size, tickets), tickets)

    async with desk.db.writing() as session:
        await bulk.reset_sequences(session, tables)
    await desk.check_counters(repair=True)
    await bulk.analyse(desk.db)

    return DemoSummary(
        supervisor=supervisor,
        admin=agent_plans[0].handle,
        departments=len(plans),
        agents=len(agent_plans),
        contacts=contact_count,
        tickets=tickets,
        messages=message_total,
        events=event_total,
        seconds=time.perf_counter() - began,
        long_thread_ref=desk.ref(generator.long_thread_id) if generator.long_thread_id else None,
        department_names=tuple(names),
    )
