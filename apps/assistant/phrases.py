"""The fixed sentences the assistant itself says to a customer, in the customer's language.

One mechanism: each sentence is a gettext message (locale/<code>/LC_MESSAGES/django.po), said
with `phrase(key, language, **kw)` under the conversation's language
(apps/conversations/language.py `spoken`). Keys, not English text, are the API, so callers do
not break when a sentence is reworded. Placeholders are `%(name)s`."""

from __future__ import annotations

from typing import Any

from django.utils import translation
from django.utils.translation import gettext, gettext_noop

from apps.conversations.language import spoken

PHRASES: dict[str, str] = {
    "dont_know": gettext_noop("I don't know that one, sorry. Would you like to talk to a person?"),
    # A `clarify` answer: the topics follow as suggestion buttons (PROTOCOL.md §2 `suggestions`).
    "clarify": gettext_noop("I want to make sure I answer the right question. Which of these is it about?"),
    "apology": gettext_noop("Sorry, I can't answer right now. Would you like to talk to a person?"),
    "over_limit": gettext_noop(
        "I've answered a lot of questions for you this hour. Would you like to talk to a person?"
    ),
    # Retrieval found no article in the customer's language and answers from the default help
    # center: said before that answer, `fallback` the code of the help center answering ("en").
    "kb_fallback": gettext_noop(
        "I have no article on this in your language, so I'm answering from the %(fallback)s help center."
    ),
    "offer_person": gettext_noop("Would you like to talk to a person?"),
    # Tool outcomes (apps/assistant/providers/builtin_tools.py).
    "tool_approve": gettext_noop("%(question)s Please approve or decline above."),
    "tool_declined": gettext_noop("OK, I won't do that; nothing was changed."),
    "tool_not_found_order": gettext_noop(
        "I couldn't find order %(order)s on your account. Could you check the number? "
        "Would you like to talk to a person?"
    ),
    "tool_not_found": gettext_noop(
        "I couldn't find that on your account. Could you check the number? "
        "Would you like to talk to a person?"
    ),
    "tool_rejected": gettext_noop(
        "Sorry, %(system)s could not do that: %(reason)s Would you like to talk to a person?"
    ),
    "tool_unreachable": gettext_noop(
        "Sorry, I couldn't get that from %(system)s just now. Would you like to talk to a person?"
    ),
    "our_systems": gettext_noop("our systems"),
    "order_status": gettext_noop("Order %(number)s is %(status)s."),
    "order_status_lines": gettext_noop("Order %(number)s is %(status)s (%(lines)s, total %(total)s)."),
    "order_not_shipped": gettext_noop("Order %(number)s has not shipped yet (it is %(status)s)."),
    "order_shipment": gettext_noop("Order %(number)s is %(status)s: it %(shipped)s."),
    "shipped_it": gettext_noop("It %(shipped)s."),
    "shipped": gettext_noop("shipped on %(date)s with %(carrier)s, tracking number %(tracking)s"),
    "shipped_delivered": gettext_noop("%(shipped)s, and was delivered on %(date)s"),
    "shipped_expected": gettext_noop("%(shipped)s, expected by %(date)s"),
    "order_line": gettext_noop("%(quantity)s × %(name)s"),
    "orders_none": gettext_noop("I can't find any orders on your account."),
    "orders_one": gettext_noop(
        "You have 1 order: %(listed)s. Ask me about one by its number for the details."
    ),
    "orders_many": gettext_noop(
        "You have %(count)s orders: %(listed)s. Ask me about one by its number for the details."
    ),
    "orders_item": gettext_noop("%(number)s (%(status)s, placed %(placed)s)"),
    "stock_none": gettext_noop("I couldn't find a product by that name."),
    "stock_in": gettext_noop("%(name)s (%(sku)s) is in stock (%(stock)s available)."),
    "stock_out": gettext_noop("%(name)s (%(sku)s) is out of stock right now."),
    "ticket_opened": gettext_noop(
        "Done: I opened ticket %(id)s “%(subject)s”. Our team will get back to you."
    ),
    "ticket_status": gettext_noop("Ticket %(id)s “%(subject)s” is %(status)s."),
    "refund_done": gettext_noop("Done: refund %(id)s of %(amount)s for order %(order)s is %(status)s."),
    "cancel_done": gettext_noop("Done: order %(number)s is %(status)s; %(amount)s will be refunded."),
    "profile": gettext_noop("Your account: %(name)s, %(email)s, %(tier)s member since %(since)s."),
    "found": gettext_noop("Here is what I found: %(shown)s."),
    "done": gettext_noop("Done."),
    # Status words the CRM sends, said in the customer's language (unknown ones as they come).
    "status_processing": gettext_noop("processing"),
    "status_shipped": gettext_noop("shipped"),
    "status_delivered": gettext_noop("delivered"),
    "status_cancelled": gettext_noop("cancelled"),
    "status_pending": gettext_noop("pending"),
    "status_open": gettext_noop("open"),
    "status_closed": gettext_noop("closed"),
    "status_requested": gettext_noop("requested"),
    "status_approved": gettext_noop("approved"),
    "status_refunded": gettext_noop("refunded"),
}

# Kept for callers that want the English sentence itself (part B's tests, older imports).
DONT_KNOW = PHRASES["dont_know"]
CLARIFY = PHRASES["clarify"]


def phrase(key: str, language: str | None, /, **kw: Any) -> str:
    """The sentence `key` in `language` (a settings.LANGUAGES code; "" = the default language),
    its `%(name)s` placeholders filled from `kw`. An unknown key is a bug: KeyError."""
    with spoken(language):
        text = gettext(PHRASES[key])
        if kw:
            # `fallback=<code>` is said as that language's name, in the customer's language.
            text = text % {k: language_name(v) if k == "fallback" else v for k, v in kw.items()}
    return text


def language_name(code: str, *, in_english: bool = False) -> str:
    """A language's name: in English ("Chinese (Simplified)"), or in the active language."""
    try:
        info = translation.get_language_info(code)
    except KeyError:
        return code
    return str(info["name"] if in_english else info["name_translated"])


def status_word(status: Any, language: str | None) -> str:
    """A CRM status word ("shipped") in `language`; one Kefu has no word for stays as it is."""
    key = f"status_{status}"
    return phrase(key, language) if key in PHRASES else str(status)
