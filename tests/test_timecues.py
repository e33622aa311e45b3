"""The dates, months and time phrases an article's text names (ingest/timecues.py), and how an undated article is
dated by them (ingest/storyline.py, [window.undated])."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from ingest.errors import ConfigError
from ingest.storyline import Document, Storyline, load_storyline, load_storylines
from ingest.storyline_rules import prepare_text
from ingest.timecues import MONTHS, RETROSPECTIVE, WEEK, Mention, reader

ROOT = Path(__file__).resolve().parent.parent
D = date(2025, 3, 18)

ISSUE_LANGUAGES = {
    "ar", "az", "be", "bg", "bn", "bs", "cs", "da", "de", "el", "en", "es", "et", "fa", "fi", "fr", "he", "hi", "hr",
    "hu", "hy", "id", "it", "ka", "kk", "lt", "lv", "ms", "nb", "nl", "pl", "pt", "ro", "ru", "sk", "sl", "sq", "sr",
    "sv", "th", "tr", "uk", "ur", "vi",
}  # fmt: skip  # zh, ja and ko write months as numbers: read by a pattern, not a table


def mentions(text: str) -> list[Mention]:
    return reader().read(prepare_text(text))


def dates(text: str) -> list[tuple[str, date | None, int]]:
    return [(m.kind, m.first, m.month) for m in mentions(text)]


def test_every_language_of_the_issue_has_twelve_months() -> None:
    assert set(MONTHS) >= ISSUE_LANGUAGES
    for lang, months in MONTHS.items():
        assert len(months) == 12, lang
    assert set(RETROSPECTIVE) >= ISSUE_LANGUAGES | {"zh", "ja", "ko"}
    assert set(WEEK) >= ISSUE_LANGUAGES | {"zh", "ja", "ko"}


@pytest.mark.parametrize(
    "text",
    [
        "on 18 March 2025",
        "on March 18, 2025,",
        "18 березня 2025 року",
        "18 марта 2025 года",
        "am 18. März 2025",
        "le 18 mars 2025",
        "el 18 de marzo de 2025",
        "em 18 de março de 2025",
        "18 marca 2025 r.",
        "18. března 2025",
        "18 Μαρτίου 2025",
        "2025. március 18-án",
        "2025 m. kovo 18 d.",
        "2025. gada 18. martā",
        "18 Mart 2025",
        "18. marta 2025.",
        "18. ožujka 2025.",
        "18. марта 2025.",
        "18 მარტს 2025",
        "2025年3月18日",
        "2025년 3월 18일",
        "ngày 18 tháng 3 năm 2025",
        "18.03.2025",
        "2025-03-18",
        "18 مارس 2025",
        "18 במרץ 2025",
        "18 मार्च 2025",
        "18 มีนาคม 2568",
        "۲۸ اسفند ۱۴۰۳",
    ],
)
def test_a_full_date_is_read_in_its_native_format(text: str) -> None:
    found = [m for m in mentions(text) if m.kind == "date"]
    assert found, dates(text)
    assert abs((found[0].first or D) - D).days <= 1, dates(text)  # the Solar Hijri table may be a day off


@pytest.mark.parametrize(
    ("text", "month"),
    [
        ("until 1 February", 2),
        ("до 1 лютого", 2),
        ("до 1 февраля", 2),
        ("1 თებერვლამდე", 2),
        ("do 1. februara", 2),
        ("直至2月1日", 2),
        ("2월 1일까지", 2),
        ("bis zum 1. Februar", 2),
        ("jusqu'au 1er février", 2),
        ("1 Şubat'a kadar", 2),
        ("十二月", 12),
        ("in March", 3),
        ("у березні", 3),
        ("w marcu", 3),
    ],
)
def test_a_month_without_a_year_is_a_month(text: str, month: int) -> None:
    assert [(m.kind, m.month) for m in mentions(text)] == [("month-only", month)]


@pytest.mark.parametrize(
    "text",
    [
        "the truce may hold",  # English modal, not the month
        "nu mai putem aștepta",  # Romanian "more"
        "non è mai successo",  # Italian "never"
        "Marco Rubio met the delegation",  # Portuguese março folds to marco
        "մարտական գործողություններ",  # Armenian battle
        "Martin said",
        "三个月后",  # three months (a length), not March
        "30개월",
    ],
)
def test_common_words_that_spell_a_month_are_not_months(text: str) -> None:
    assert [m for m in mentions(text) if m.kind in ("date", "month", "month-only")] == []


def test_an_ambiguous_month_counts_with_a_day_or_a_year() -> None:
    assert dates("on 9 May") == [("month-only", None, 5)]
    assert dates("the talks of May 2025") == [("month", date(2025, 5, 1), 5)]


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("a year ago", "retrospective"),
        ("торік", "retrospective"),
        ("в прошлом году", "retrospective"),
        ("去年", "retrospective"),
        ("지난해", "retrospective"),
        ("prošle godine", "retrospective"),
        ("week-long", "week"),
        ("на тиждень", "week"),
        ("ერთი კვირით", "week"),
        ("为期一周", "week"),
        ("sedmicu dana", "week"),
        ("cold snap", "frost"),
        ("сильні морози", "frost"),
        ("严寒", "frost"),
        ("winter", "winter"),
        ("взимку", "winter"),
    ],
)
def test_time_phrases_are_read(text: str, kind: str) -> None:
    assert kind in {m.kind for m in mentions(text)}


def test_years_alone_and_digits_of_other_scripts() -> None:
    assert dates("in 2026 the grid") == [("year", date(2026, 1, 1), 0)]
    assert dates("١٨ مارس ٢٠٢٥") == [("date", D, 3)]
    # A number that is no year next to a month is not taken for one.
    assert dates("in March 1450 drones were launched")[0][:2] == ("month-only", None)


# ---------------------------------------------------------------- dating undated articles


@pytest.fixture(scope="module")
def energy() -> Storyline:
    return {s.id: s for s in load_storylines(ROOT / "seeds" / "storylines")}["energy-ceasefire"]


def undated(title: str, text: str) -> Document:
    return Document(title, text, None, None)


LATER = [
    undated(
        "Russia agrees to halt strikes on Kyiv's power plants",
        "Russia will not strike Ukraine's energy infrastructure until 1 February, the Kremlin said after Donald "
        "Trump asked Vladimir Putin to hold off.",
    ),
    undated(
        "Росія не бити по енергетиці до 1 лютого",
        "Кремль заявив, що Росія утримається від ударів по енергетичній інфраструктурі Києва до 1 лютого на "
        "прохання Трампа.",
    ),
    undated(
        "普京同意暂停袭击基辅能源设施",
        "克里姆林宫表示，应特朗普请求，俄罗斯将暂停对基辅能源设施的打击，直至2026年2月1日。",
    ),
    undated(
        "Energy truce recalled",
        "Last year's 30-day moratorium on strikes against energy infrastructure, agreed by Vladimir Putin in a "
        "call with Donald Trump on 18 March, was broken within days.",
    ),
]


@pytest.mark.parametrize("doc", LATER, ids=range(len(LATER)))
def test_an_undated_report_of_a_later_truce_is_off(energy: Storyline, doc: Document) -> None:
    v = energy.explain(doc)
    assert not v.on_storyline, v
    assert any(r.kind == "time" and r.contribution < 0 for r in v.rules), v.rules
    assert v.time_cues and "undated: the text dates it" in v.window


def test_an_undated_report_of_the_march_pause_is_dated_inside(energy: Storyline) -> None:
    doc = undated(
        "Мораторій на удари по енергетиці",
        "Путін погодився на 30-денний мораторій на удари по енергетичній інфраструктурі 18 березня.",
    )
    v = energy.explain(doc)
    assert v.on_storyline
    inside = [r for r in v.rules if r.name == "(text: inside the window)"]
    assert inside and inside[0].contribution > 0
    assert any("18 березня" in cue for cue in v.time_cues)


def test_time_cues_apply_only_without_a_date(energy: Storyline) -> None:
    from datetime import UTC, datetime

    doc = LATER[0]
    v = energy.explain(Document(doc.title, doc.text, None, datetime(2025, 3, 20, tzinfo=UTC)))
    assert not any(r.kind == "time" for r in v.rules) and v.time_cues == ()


def test_a_date_far_from_the_event_does_not_date_it(energy: Storyline) -> None:
    text = (
        "Putin agreed to a 30-day moratorium on strikes on energy infrastructure after his call with Trump. "
        + "Analysts expect little change on the front line. " * 6
        + "Parliamentary elections are due in 2026."
    )
    v = energy.explain(undated("Putin agrees energy moratorium", text))
    assert not any(r.kind == "time" for r in v.rules)


def test_undated_section_is_validated(tmp_path: Path) -> None:
    source = (ROOT / "seeds" / "storylines" / "energy-ceasefire.toml").read_text(encoding="utf-8")
    for old, new, key in [
        ('event = ["pause", "moratorium", "thirty_days"]', 'event = ["nothing"]', "window.undated.event"),
        ("near = 120", "near = 1.5", "window.undated.near"),
        ("later = 5.0", "later = -1", "window.undated.later"),
        ("later = 5.0", "latr = 5.0", "window.undated.latr"),
    ]:
        assert old in source
        path = tmp_path / "bad.toml"
        path.write_text(source.replace(old, new, 1), encoding="utf-8")
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            load_storyline(path)
