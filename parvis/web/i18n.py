"""French and English: gettext catalogues (Babel) and locale-aware formatting of dates and numbers.

The catalogues are ``parvis/web/locales/<lang>/LC_MESSAGES/messages.po``, compiled to ``.mo`` files
that are committed and shipped with the package (``pybabel compile -d parvis/web/locales``; a test
checks they match the ``.po`` sources).  The language is the ``parvis_lang`` cookie set by the
switch, else the best match of the browser's ``Accept-Language``, else English.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path

from babel import Locale, dates, numbers
from babel.support import NullTranslations, Translations

from parvis.web.headers import weighted_items

LOCALES_DIR = Path(__file__).parent / "locales"
LANGUAGES: dict[str, str] = {"en": "English", "fr": "Français"}
DEFAULT_LANGUAGE = "en"
COOKIE = "parvis_lang"


@cache
def translations(language: str) -> NullTranslations:
    if language == DEFAULT_LANGUAGE:
        return NullTranslations()
    return Translations.load(str(LOCALES_DIR), [language], domain="messages")


def parse_accept_language(header: str | None) -> list[str]:
    """Languages of an Accept-Language header, best first (``fr-CH, fr;q=0.9, en;q=0.8`` → fr-CH, fr, en)."""
    weighted = [
        (-quality, position, tag)
        for position, (tag, quality) in enumerate(weighted_items(header))
        if tag != "*" and quality > 0
    ]
    return [tag for _, _, tag in sorted(weighted)]


def choose_language(cookie: str | None, accept_language: str | None) -> str:
    if cookie in LANGUAGES:
        return str(cookie)
    for tag in parse_accept_language(accept_language):
        primary = tag.replace("_", "-").split("-")[0].lower()
        if primary in LANGUAGES:
            return primary
    return DEFAULT_LANGUAGE


@dataclass(frozen=True)
class Formatter:
    """Dates, numbers and durations in one locale, for templates and exports shown to people."""

    language: str

    @property
    def locale(self) -> Locale:
        return Locale.parse(self.language)

    def number(self, value: float | int | None, digits: int = 0) -> str:
        if value is None:
            return "–"
        return numbers.format_decimal(
            value, format=f"#,##0.{'0' * digits}" if digits else "#,##0", locale=self.language
        )

    def percent(self, value: float | None, digits: int = 0) -> str:
        if value is None:
            return "–"
        return numbers.format_percent(
            value, format=f"#,##0.{'0' * digits}%" if digits else "#,##0%", locale=self.language
        )

    def change(self, value: float | None) -> str:
        """A relative change, signed: +12 %, −3 %."""
        if value is None:
            return "–"
        text = numbers.format_percent(abs(value), format="#,##0%", locale=self.language)
        return ("+" if value > 0 else "−" if value < 0 else "±") + text

    def date(self, value: date | datetime | None, format: str = "medium") -> str:
        if value is None:
            return "–"
        return dates.format_date(value, format=format, locale=self.language)

    def datetime(self, value: datetime | None, format: str = "medium") -> str:
        if value is None:
            return "–"
        return dates.format_datetime(value, format=format, locale=self.language)

    def duration(self, value: timedelta | float | None) -> str:
        """A duration in words (``3 days``, ``3 jours``); floats are seconds."""
        if value is None:
            return "–"
        seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
        return dates.format_timedelta(timedelta(seconds=seconds), threshold=1.5, locale=self.language)
