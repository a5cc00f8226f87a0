"""`budget`: a sum and its currency ("$3000", "3k euros", "under 2,500 GBP"), and whether it is
given per person."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import ValidationError

from waypoint_orchestrator.extract.reading import _UNIT_AFTER, _fold, _Pattern, _Scan, _word_set
from waypoint_orchestrator.models import Budget

_CURRENCY_SYMBOLS: dict[str, str] = {
    "US$": "USD",
    "AU$": "AUD",
    "A$": "AUD",
    "CA$": "CAD",
    "C$": "CAD",
    "NZ$": "NZD",
    "R$": "BRL",
    "$": "USD",
    "€": "EUR",
    "£": "GBP",
    "¥": "JPY",
    "₹": "INR",
}
_CURRENCY_WORDS: dict[str, str] = {
    "dollar": "USD",
    "dollars": "USD",
    "bucks": "USD",
    "us dollars": "USD",
    "american dollars": "USD",
    "canadian dollars": "CAD",
    "australian dollars": "AUD",
    "new zealand dollars": "NZD",
    "euro": "EUR",
    "euros": "EUR",
    "pound": "GBP",
    "pounds": "GBP",
    "quid": "GBP",
    "yen": "JPY",
    "franc": "CHF",
    "francs": "CHF",
    "swiss francs": "CHF",
    "reais": "BRL",
    "rupees": "INR",
    "kronor": "SEK",
}
# ISO 4217 codes recognised next to an amount; the gate decides which ones it can convert.
_CURRENCY_CODES = _word_set(
    "USD EUR GBP JPY CHF CAD AUD NZD SEK NOK DKK ISK MXN BRL ARS CLP PEN COP INR CNY HKD TWD KRW SGD"
    " THB VND IDR MYR PHP ZAR EGP MAD KES AED ILS TRY PLN CZK HUF RON"
)

_LOWER_CASE_CODES = _word_set("USD EUR GBP JPY CHF CAD AUD NZD SEK NOK DKK MXN BRL ARS CLP INR")

_AMOUNT = r"\d{1,3}(?:[,.]\d{3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d+)?"
_SCALE = r"(?:\s?(?P<scale>k|thousand|grand)\b)?"
_SYMBOL = "|".join(re.escape(s.lower()) for s in sorted(_CURRENCY_SYMBOLS, key=len, reverse=True))
_CURRENCY_WORD = "|".join(sorted(_CURRENCY_WORDS, key=len, reverse=True))

_MONEY_SYMBOL_FIRST = _Pattern(rf"(?<![A-Za-z])(?P<sym>{_SYMBOL})\s?(?P<num>{_AMOUNT}){_SCALE}")
_MONEY_CODE_FIRST = _Pattern(rf"\b(?P<code>[A-Za-z]{{3}})\s?(?P<num>{_AMOUNT}){_SCALE}")
_MONEY_UNIT_AFTER = _Pattern(
    rf"(?<![\w.,])(?P<num>{_AMOUNT}){_SCALE}\s?(?:(?P<word>{_CURRENCY_WORD})\b|(?P<sym>[€£¥₹$])"
    rf"|(?P<code>[A-Za-z]{{3}})\b)",
)
_MONEY_THOUSANDS = _Pattern(
    rf"(?<![\w.,])(?P<num>\d+(?:[.,]\d+)?)\s?(?P<scale>k|thousand|grand)\b{_UNIT_AFTER}"
)
_MONEY_CUED_NUMBER = _Pattern(
    r"\b(?:budget(?:\s+(?:of|is|around|about))?:?|under|below|max(?:imum)?|up to|less than|at most"
    rf"|no more than|within|spend(?:ing)?)\s+(?P<num>{_AMOUNT})\b{_SCALE}{_UNIT_AFTER}",
)
_BUDGET_CUE_BEFORE = re.compile(
    r"\b(?:budget|under|below|max(?:imum)?|up to|less than|at most|no more than|within|total|spend"
    r"|spending|cap(?:ped)?|afford)\b[\s:]*(?:\w+\s+){0,2}$",
    re.I,
)
# One of them is in (the folded) text wherever _BUDGET_CUE_BEFORE matches: a quick test first.
_BUDGET_CUE_WORDS = _word_set("budget under below max within total spend cap afford") | {
    "up to",
    "less than",
    "at most",
    "no more than",
}
# Matched at the end of a sum (`.match(text, end)`), hence no `^`.
_BUDGET_CUE_AFTER = re.compile(r"\s*+(?:total\s++)?budget\b", re.I)
_PER_PERSON = re.compile(
    r"\s*+(?:per\s+(?:person|head|travell?er|adult)|a\s+(?:person|head)|each|pp|/\s*+person)\b", re.I
)
_THOUSANDS_SEPARATED = re.compile(r"\d{1,3}(?:([,.])\d{3})(?:\1\d{3})*+")
_COMMA_THOUSANDS_POINT_CENTS = re.compile(r"\d{1,3}(?:,\d{3})++\.\d{1,2}")
_POINT_THOUSANDS_COMMA_CENTS = re.compile(r"\d{1,3}(?:\.\d{3})++,\d{1,2}")
_SEPARATOR = re.compile(r"[,.]")


def _amount(text: str, scale: str | None) -> float:
    """'3,000' or '3.000' is three thousand; '2.5' or '2,5' two and a half; 'k' multiplies.

    Separators used some other way ('1,000.000', '1.000.00') are thousands, except a last group
    of one or two digits, which is cents.
    """
    if _THOUSANDS_SEPARATED.fullmatch(text):
        value = float(_SEPARATOR.sub("", text))
    elif _COMMA_THOUSANDS_POINT_CENTS.fullmatch(text):
        value = float(text.replace(",", ""))
    elif _POINT_THOUSANDS_COMMA_CENTS.fullmatch(text):
        value = float(text.replace(".", "").replace(",", "."))
    elif len(_SEPARATOR.findall(text)) <= 1:
        value = float(text.replace(",", "."))
    else:
        *groups, last = _SEPARATOR.split(text)
        value = float("".join(groups) + ("." if len(last) <= 2 else "") + last)
    if scale is not None:
        value *= 1000
    return value


@dataclass(frozen=True, slots=True)
class _Money:
    start: int
    end: int
    amount: float
    currency: str
    assumed_currency: bool


def _money_mentions(scan: _Scan) -> list[_Money]:
    found: list[_Money] = []

    def add(match: re.Match[str], currency: str | None, *, assumed: bool = False, group: str = "") -> None:
        """Record a sum; `group` narrows the masked span (a cue word like "under" stays readable)."""
        if currency is None:
            return
        amount = _amount(match["num"], match["scale"])
        if assumed and amount < 50:  # "under 3" is not a budget
            return
        start, end = (match.start(group), match.end(group)) if group else (match.start(), match.end())
        found.append(_Money(start, end, amount, currency, assumed))
        scan.consume(start, end)

    for match in scan.find(_MONEY_SYMBOL_FIRST):
        add(match, _CURRENCY_SYMBOLS.get(match["sym"].upper()))
    for match in scan.find(_MONEY_CODE_FIRST):
        add(match, _currency_code(match["code"]))
    for match in scan.find(_MONEY_UNIT_AFTER):
        if match["word"]:
            add(match, _CURRENCY_WORDS[" ".join(_fold(match["word"]).split())])
        elif match["sym"]:
            add(match, _CURRENCY_SYMBOLS[match["sym"]])
        else:
            add(match, _currency_code(match["code"]))
    for match in scan.find(_MONEY_THOUSANDS):
        add(match, "USD", assumed=True)
    for match in scan.find(_MONEY_CUED_NUMBER):
        add(match, "USD", assumed=True, group="num")
    return sorted(found, key=lambda m: m.start)


def _currency_code(word: str) -> str | None:
    """An ISO code next to an amount; in lower case only the common ones ("try 3" is no lira)."""
    code = word.upper()
    if code not in _CURRENCY_CODES or (word != code and code not in _LOWER_CASE_CODES):
        return None
    return code


def _read_budget(scan: _Scan) -> tuple[Budget | None, bool]:
    """The budget, and whether it was given per person."""
    mentions = _money_mentions(scan)
    if not mentions:
        return None, False

    def cued(m: _Money) -> bool:
        start = max(0, m.start - 40)
        folded = scan.folded_text[start : m.start]
        before = any(word in folded for word in _BUDGET_CUE_WORDS) and _BUDGET_CUE_BEFORE.search(
            scan.text[start : m.start]
        )
        return bool(before or _BUDGET_CUE_AFTER.match(scan.text, m.end))

    chosen = next((m for m in mentions if cued(m)), mentions[0])
    written = scan.text[chosen.start : chosen.end].strip()
    budget = _budget(scan, chosen.amount, chosen.currency, written)
    if budget is not None and chosen.assumed_currency:
        scan.note("budget", f"budget currency assumed USD for '{written}'")
    return budget, bool(_PER_PERSON.match(scan.text, chosen.end))


def _budget(scan: _Scan, amount: float, currency: str, written: str) -> Budget | None:
    """A Budget, or None (with a note) for an amount the model refuses (nothing, or over a million)."""
    try:
        return Budget(amount=round(amount, 2), currency=currency)
    except ValidationError:
        scan.note("budget", f"budget '{written}' ignored: it must be more than 0 and at most 1,000,000")
        return None
