"""Finding personal data in text: the detectors behind ``pii_redaction``.

Every detector checks structure, not only shape, so that near misses are left alone:

=========  ==========================================================================================
kind       what counts
=========  ==========================================================================================
email      ``local@domain.tld`` with an alphabetic top-level domain of 2 to 24 letters
phone      ``+`` and 8-15 digits; ``00`` and 8-15 digits; a national number with trunk prefix ``0`` and
           9-11 digits that does not read as a date; a North American number written ``(212) 555-0199``,
           ``212-555-0199`` or ``212.555.0199`` (area code and exchange starting 2-9). A bare run of digits
           without ``+`` or a leading ``0`` is never a phone number.
card       13-19 digits, plain or grouped with one kind of separator, passing the Luhn check, starting
           with a card network's prefix (2-6) and not one repeated digit
iban       a country's registered IBAN length, passing the ISO 13616 mod-97 check
ip         IPv4 in dotted-quad form (each part 0-255, no leading zeros); IPv6 accepted by Python's
           ``ipaddress``, with at least one digit (so ``dead::beef`` in prose is left alone)
au_tfn     Australian tax file number: 9 digits passing the ATO weighted mod-11 check; grouped ``123 456 782``,
           or bare only after "TFN" or "tax file" within 40 characters
au_abn     Australian business number: 11 digits passing the ABR mod-89 check; grouped ``51 824 753 556``,
           or bare only after "ABN" or "business number" within 40 characters
us_ssn     US social security number ``AAA-GG-SSSS`` (hyphens or spaces) with the SSA's structure rules: area
           not 000, 666 or 900-999, group not 00, serial not 0000; bare 9 digits only after "SSN" or
           "social security" within 40 characters
uk_nino    UK National Insurance number: two prefix letters (not D, F, I, Q, U, V; second not O; not BG, GB,
           KN, NK, NT, TN, ZZ), six digits, a suffix letter A-D; spaces allowed. Format only: there is no checksum
=========  ==========================================================================================

Where two findings overlap, the earlier kind in :data:`KINDS` wins.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

__all__ = ["KINDS", "Finding", "find", "iban_valid", "luhn_valid"]

KINDS = ("email", "iban", "card", "ip", "us_ssn", "uk_nino", "au_abn", "au_tfn", "phone")
"""Every kind of personal data found, in order of precedence."""

_CONTEXT_WINDOW = 40
_CONTEXT = {
    "au_tfn": ("tfn", "tax file"),
    "au_abn": ("abn", "business number"),
    "us_ssn": ("ssn", "social security"),
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One piece of personal data in a text.

    Attributes:
        kind: one of :data:`KINDS`.
        start: its first character's index.
        end: the index after its last character.
        canonical: the value in one canonical spelling (digits only, upper-case, compressed IP), so
            that different spellings of one value are pseudonymised alike.

    """

    kind: str
    start: int
    end: int
    canonical: str


# ---- checksums ---------------------------------------------------------------------------------


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check used by payment cards."""
    total = 0
    for i, char in enumerate(reversed(digits)):
        d = int(char)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
    "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29,
    "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28,
    "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
    "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29,
    "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip


def iban_valid(iban: str) -> bool:
    """An IBAN (no spaces) with its country's length and a valid ISO 13616 mod-97 check."""
    iban = iban.upper()
    if _IBAN_LENGTHS.get(iban[:2]) != len(iban) or not iban[2:4].isdigit() or not iban.isalnum():
        return False
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def _tfn_valid(digits: str) -> bool:
    weights = (1, 4, 3, 7, 5, 8, 6, 9, 10)
    return len(digits) == 9 and sum(int(d) * w for d, w in zip(digits, weights, strict=True)) % 11 == 0


def _abn_valid(digits: str) -> bool:
    if len(digits) != 11 or digits[0] == "0":
        return False
    weights = (10, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19)
    values = [int(digits[0]) - 1, *map(int, digits[1:])]
    return sum(v * w for v, w in zip(values, weights, strict=True)) % 89 == 0


def _ssn_valid(digits: str) -> bool:
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    if area in ("000", "666") or area >= "900" or group == "00" or serial == "0000":
        return False
    return digits not in ("078051120", "219099999")  # numbers published in advertising, never issued


# ---- text patterns -----------------------------------------------------------------------------

_EMAIL = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9](?:[A-Za-z0-9._%+-]{0,62}[A-Za-z0-9_%+-])?"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-]|\.[A-Za-z0-9])"
)
_IBAN_START = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?=[ ]?[A-Za-z0-9])")
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?!\w|\.\d)")
_IPV6 = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?(?![\w:])")
_NINO = re.compile(
    r"(?<![A-Za-z0-9])(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]"
    r" ?\d{2} ?\d{2} ?\d{2} ?[A-D](?![A-Za-z0-9])"
)
# A run of digits joined by single separators (space, dot, hyphen) and parentheses, maybe after "+".
_RUN = re.compile(r"(?<![\w+])(?:\+ ?)?\(?\d(?:\)?[ .\-]?\(?\d)*\)?")
_GROUP = re.compile(r"\d+")
# Text shaped like an IBAN (grouped in fours after country and check digits) whose check fails is
# still a bank account, not a phone or card number.
_IBAN_SHAPE = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?![A-Za-z0-9])")
_MAX_GROUPS = 12

_CARD_FORMAT = re.compile(r"^\d+(?:([ \-])\d+(?:\1\d+)*)?$")
_SSN_FORMAT = re.compile(r"^\d{3}([ \-])\d{2}\1\d{4}$")
_TFN_FORMAT = re.compile(r"^\d{3}([ \-])\d{3}\1\d{3}$")
_ABN_FORMAT = re.compile(r"^\d{2} \d{3} \d{3} \d{3}$")
_NANP_FORMAT = re.compile(r"^(?:\+?1[ .\-]?)?(?:\([2-9]\d\d\) ?|[2-9]\d\d[ .\-])[2-9]\d\d[ .\-]\d{4}$")
_DATE_PREFIX = re.compile(r"^\d{1,2}[ .\-]\d{1,2}[ .\-](?:19|20)\d\d(?!\d)")
_TRUNK_FORMAT = re.compile(r"^(?:\(0\d+\)[ .\-]?\d[\d .\-]*|0(?!\.)[\d .\-]*)$")


def _context(text: str, start: int, kind: str) -> bool:
    before = text[max(0, start - _CONTEXT_WINDOW) : start].lower()
    return any(word in before for word in _CONTEXT[kind])


def _national_id(
    kind: str,
    size: int,
    valid: Callable[[str], bool],
    fmt: re.Pattern[str],
    raw: str,
    digits: str,
    text: str,
    start: int,
) -> bool:
    """A checksum-valid identifier, written in its grouped format or bare after a keyword."""
    if len(digits) != size or not valid(digits):
        return False
    return bool(fmt.match(raw)) or (raw == digits and _context(text, start, kind))


_NATIONAL_IDS: tuple[tuple[str, int, Callable[[str], bool], re.Pattern[str]], ...] = (
    ("us_ssn", 9, _ssn_valid, _SSN_FORMAT),
    ("au_abn", 11, _abn_valid, _ABN_FORMAT),
    ("au_tfn", 9, _tfn_valid, _TFN_FORMAT),
)


def _classify_run(raw: str, text: str, start: int, enabled: frozenset[str]) -> tuple[str, str] | None:
    """The kind and canonical value of a run of digits, or None."""
    digits = "".join(ch for ch in raw if ch.isdigit())
    n = len(digits)
    plain = raw.lstrip("+ (").rstrip(")")
    if (
        "card" in enabled
        and 13 <= n <= 19
        and _CARD_FORMAT.match(raw)
        and digits[0] in "23456"
        and len(set(digits)) > 1
        and luhn_valid(digits)
    ):
        return "card", digits
    for kind, size, valid, fmt in _NATIONAL_IDS:
        if kind in enabled and _national_id(kind, size, valid, fmt, raw, digits, text, start):
            return kind, digits
    if "phone" in enabled and _is_phone(raw, plain, digits):
        international = raw.startswith("+") or digits.startswith("00")
        return "phone", "+" + digits.removeprefix("00") if international else digits
    return None


def _is_phone(raw: str, plain: str, digits: str) -> bool:
    n = len(digits)
    if raw.startswith("+"):
        return 8 <= n <= 15 and digits[0] != "0"
    if digits.startswith("00"):
        return 10 <= n <= 17 and digits[2] != "0"
    if _SSN_FORMAT.match(raw):  # shaped like a US SSN: never read as a phone number
        return False
    if digits.startswith("0"):
        return 9 <= n <= 11 and bool(_TRUNK_FORMAT.match(raw)) and not _DATE_PREFIX.match(plain)
    return bool(_NANP_FORMAT.match(raw))


def _runs(text: str, enabled: frozenset[str]) -> Iterator[Finding]:
    """Findings among runs of digits: the longest sub-run from each starting group that reads as one kind."""
    for match in _RUN.finditer(text):
        groups = list(_GROUP.finditer(match.group()))[:_MAX_GROUPS]
        base = match.start()
        i = 0
        while i < len(groups):
            found = False
            for j in range(len(groups), i, -1):
                start = base + groups[i].start()
                end = base + groups[j - 1].end()
                if i == 0:
                    start = base  # keep a leading "+" or "("
                elif text[start - 1] == "(":
                    start -= 1
                if end < len(text) and text[end] == ")" and "(" in text[start:end]:
                    end += 1
                kind = _classify_run(text[start:end], text, start, enabled)
                if kind is not None:
                    yield Finding(kind[0], start, end, kind[1])
                    i, found = j, True
                    break
            if not found:
                i += 1


def _iban(text: str) -> Iterator[Finding]:
    for match in _IBAN_START.finditer(text):
        length = _IBAN_LENGTHS.get(match.group()[:2].upper())
        if length is None:
            continue
        chars: list[str] = []
        pos = match.start()
        while pos < len(text) and len(chars) < length:
            ch = text[pos]
            if ch.isascii() and ch.isalnum():
                chars.append(ch)
            elif not (ch == " " and pos + 1 < len(text) and text[pos + 1].isalnum() and chars):
                break
            pos += 1
        value = "".join(chars).upper()
        if len(chars) == length and not (pos < len(text) and text[pos].isalnum()) and iban_valid(value):
            yield Finding("iban", match.start(), pos, value)


def _ips(text: str) -> Iterator[Finding]:
    for match in _IPV4.finditer(text):
        try:
            address = ipaddress.IPv4Address(match.group())
        except ValueError:
            continue
        yield Finding("ip", match.start(), match.end(), str(address))
    for match in _IPV6.finditer(text):
        candidate = match.group()
        if not any(ch.isdigit() for ch in candidate):
            continue
        try:
            address6 = ipaddress.IPv6Address(candidate)
        except ValueError:
            continue
        yield Finding("ip", match.start(), match.end(), address6.compressed)


def _simple(kind: str, pattern: re.Pattern[str], canon: Callable[[str], str]) -> Callable[[str], Iterator[Finding]]:
    def detect(text: str) -> Iterator[Finding]:
        for match in pattern.finditer(text):
            yield Finding(kind, match.start(), match.end(), canon(match.group()))

    return detect


_DETECTORS: dict[str, Callable[[str], Iterable[Finding]]] = {
    "email": _simple("email", _EMAIL, str.lower),
    "iban": _iban,
    "ip": _ips,
    "uk_nino": _simple("uk_nino", _NINO, lambda s: s.replace(" ", "").upper()),
}
_RUN_KINDS = frozenset({"card", "us_ssn", "au_abn", "au_tfn", "phone"})


def find(text: str, kinds: Iterable[str] = KINDS) -> list[Finding]:
    """Every non-overlapping finding of the given kinds in ``text``, in text order.

    Args:
        text: the text to search.
        kinds: which kinds to look for (default: all of :data:`KINDS`).

    """
    enabled = frozenset(kinds)
    candidates: list[Finding] = []
    for kind, detect in _DETECTORS.items():
        if kind in enabled:
            candidates.extend(detect(text))
    if enabled & _RUN_KINDS and any(ch.isdigit() for ch in text):
        shaped = [m.span() for m in _IBAN_SHAPE.finditer(text)]
        candidates.extend(f for f in _runs(text, enabled) if all(f.end <= a or f.start >= b for a, b in shaped))
    rank = {kind: i for i, kind in enumerate(KINDS)}
    candidates.sort(key=lambda f: (rank[f.kind], f.start, -(f.end - f.start)))
    taken: list[Finding] = []
    for finding in candidates:
        if all(finding.end <= t.start or finding.start >= t.end for t in taken):
            taken.append(finding)
    return sorted(taken, key=lambda f: f.start)
