"""The cheaper forms of trafilatura's XPath expressions select exactly what its own select."""

from __future__ import annotations

import itertools
import random
import re
from pathlib import Path

import lxml.html
import pytest
from lxml import etree

from ingest import clean, xpath_native
from ingest.xpath_native import REGEXP_NS

FIXTURES = Path(__file__).parent / "fixtures" / "clean"
NS = {"re": REGEXP_NS}

# Patterns of the subset with every construct it expands, and patterns outside it.
OWN_PATTERNS = [
    "^ab?c$",
    "x(?:y|z)?$",
    "[Aa]uthor|^c[d-]",
    "^$",
    "|a",
    "a|",
    "^\\.x\\-",
    "a$|^b",
    "(^)ab",
    "ab($)",
    "b^a",
    "it's",
    'say "hi"',
    "^(?:nav|post-nav)|bar",
    "ü[ßs]|İ",
]
UNSUPPORTED = ["^[Cc]omment(?!ary)", "(^|\\s)link(\\s|$)", "[a-z]x", "ab*", "a.c", "a{2}", "(?i)a", "\\bword", "a$b"]


def trafilatura_patterns() -> list[str]:
    """Every pattern trafilatura's own expressions pass to re:test."""
    originals = [original.path for original, _ in xpath_native.REPLACED]
    found = {m.group(2) or m.group(3) for path in originals for m in xpath_native._RE_TEST.finditer(path)}
    assert len(found) > 20  # the rewrites are in place and read trafilatura's expressions
    return sorted(found)


def probes(pattern: str, seed: int) -> list[str]:
    """Strings around what the pattern matches: its fixed strings, cut, padded, recased, followed by newlines."""
    rng = random.Random(seed)
    pieces = re.findall(r"[A-Za-z0-9_ ]+|[^A-Za-z0-9_ ]", re.sub(r"[\\^$()?:|\[\]]", " ", pattern))
    words = [p.strip() for p in pieces if p.strip()] or ["x"]
    out = {"", " ", "\n", "x", pattern}
    for w in words:
        for form in (w, w.lower(), w.upper(), w.capitalize(), w[:-1], w[1:], w.replace("-", "_")):
            out.update({form, f" {form}", f"{form} ", f"pre{form}", f"{form}post", f"{form}\n", f"{form}\n\n"})
            out.update({f"a {form} b", f"{form}-{form}", f"\n{form}", f"{form}\nx"})
    alphabet = "".join(sorted(set("".join(words)))) + " -_\n"
    for _ in range(200):
        out.add("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12))))
        a, b = rng.choice(words), rng.choice(words)
        out.add(rng.choice(["", " ", "-"]).join([a, b]))
    return sorted(out)


def agree(pattern: str, translated: str) -> None:
    """The translated test gives what lxml's re:test gives, on every probe."""
    for i, value in enumerate(probes(pattern, seed=len(pattern))):
        el = lxml.html.fromstring("<div></div>")
        el.set("class", value)
        quoted = f"'{pattern}'" if "'" not in pattern else f'"{pattern}"'
        expected = el.xpath(f"re:test(@class, {quoted})", namespaces=NS)
        assert expected == (re.search(pattern, value) is not None)
        assert el.xpath(f"boolean({translated})") == expected, (pattern, value, translated)
        if i % 7 == 0:
            bare = lxml.html.fromstring("<div></div>")  # no attribute: re:test sees ""
            assert bare.xpath(f"boolean({translated})") == (re.search(pattern, "") is not None)


@pytest.mark.parametrize("pattern", OWN_PATTERNS)
def test_translated_patterns_agree_with_re_test(pattern: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(xpath_native, "_MAX_SEQUENCES", 10_000)  # translate long ones too, to test them
    translated = xpath_native.translate("@class", pattern)
    assert translated is not None
    agree(pattern, translated)


def test_trafilaturas_patterns_agree_with_re_test(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(xpath_native, "_MAX_SEQUENCES", 10_000)
    translated = 0
    for pattern in trafilatura_patterns():
        test = xpath_native.translate("@class", pattern)
        if test is not None:
            agree(pattern, test)
            translated += 1
    assert translated >= 30


@pytest.mark.parametrize("pattern", UNSUPPORTED)
def test_patterns_outside_the_subset_stay_re_test(pattern: str) -> None:
    assert xpath_native.translate("@class", pattern) is None
    call = f"re:test(@class, '{pattern}')"
    assert call in xpath_native.native(f"//*[{call}]")


def test_a_test_that_can_match_nothing_is_checked_for_the_attribute_first() -> None:
    rewritten = xpath_native.native("//div[re:test(@id, '^(?:[Cc]omment(?!ary)|comol)')]")
    assert rewritten.startswith("//div[((@id) and re:test(@id,")
    # a pattern matching the empty string is true without the attribute too: no check added
    assert xpath_native.native("//div[re:test(@id, 'a*')]") == "//div[re:test(@id, 'a*')]"
    assert xpath_native.native("//div[re:test(@id, '(')]") == "//div[re:test(@id, '(')]"  # not a pattern


def test_a_test_with_flags_is_only_checked_for_the_attribute_first() -> None:
    # Python's re folds case beyond ASCII (the Kelvin sign matches k): no fixed strings under "i"
    assert xpath_native.native("//*[re:test(@id, 'ok', 'i')]") == "//*[((@id) and re:test(@id, 'ok', 'i'))]"
    assert xpath_native.native("//*[re:test(@id, 'o?', 'i')]") == "//*[re:test(@id, 'o?', 'i')]"
    el = lxml.html.fromstring('<div id="\u212a"></div>')  # KELVIN SIGN
    assert el.xpath("re:test(@id, 'k', 'i')", namespaces=NS) is True


def test_union_arguments_read_their_first_attribute_as_re_test_does() -> None:
    test = xpath_native.translate("@id|@class", "^comment[s-]|cookie")
    assert test is not None
    sources = ['<div id="x" class="cookie"></div>', '<div class="cookie" id="x"></div>', '<div id="comments"></div>']
    for source in sources:
        el = lxml.html.fromstring(source)
        assert el.xpath(f"boolean({test})") == el.xpath("re:test(@id|@class, '^comment[s-]|cookie')", namespaces=NS)


def fixed_strings(pattern: str) -> list[str]:
    """What a pattern looks for: its fixed strings when it has them, else its words."""
    try:
        return ["".join(t for t in seq if isinstance(t, str)) for seq in xpath_native._Parser(pattern).parse()]
    except xpath_native._Unsupported:
        return re.findall(r"[A-Za-z][A-Za-z_-]+", pattern)


@pytest.mark.parametrize(
    ("path", "rewritten"),
    [
        (".//*[self::a or self::b][@x='1' or @y]", "(.//a|.//b)[@x='1' or @y]"),
        ("(.//*[self::a][starts-with(@c, 'm')])[1]", "((.//a)[starts-with(@c, 'm')])[1]"),
        (".//*[self::div or self::p]/text()", "(.//div|.//p)/text()"),
        ("//*[self::h1 or self::h2][contains(@c, 'x')]//a[@href]", "(//h1|//h2)[contains(@c, 'x')]//a[@href]"),
        (".//*[self::a][not(@x)][@y = 'z']", "(.//a)[not(@x)][@y = 'z']"),
    ],
)
def test_a_step_testing_names_becomes_a_union(path: str, rewritten: str) -> None:
    assert xpath_native._self_steps(path) == rewritten


@pytest.mark.parametrize(
    "path",
    [
        ".//*[self::a][1]",  # positions within each parent, not within the union
        ".//*[self::a][position() < 3]",
        ".//*[self::a][last()]",
        ".//*[self::a][string-length(.)]",  # a number: a position too
        ".//*[self::a][@x][1]",
        "x//*[self::a][@c = 'd']",  # the step continues a path
        "x //*[self::a]",
        "contains(@x, './/*[self::a]')",  # inside a string
    ],
)
def test_a_step_whose_predicates_may_count_positions_stays(path: str) -> None:
    assert xpath_native._self_steps(path) == path


def test_unions_select_what_the_steps_select_on_the_fixture_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    paths = [
        ".//*[self::div or self::p or self::li][contains(@class, 'a') or @id]",
        "(.//*[self::h2 or self::a or self::span][starts-with(@class, 'c') or @id])[2]",
        "//*[self::li or self::span or self::div][@class = 'x' or contains(@id, 'o')]//a[@href]",
        ".//*[self::div or self::section or self::p]/text()",
    ]
    for name, tree in pages(monkeypatch):
        for path in paths:
            rewritten = xpath_native._self_steps(path)
            assert rewritten != path
            assert etree.XPath(rewritten)(tree) == etree.XPath(path)(tree), (name, path)


def class_soup(seed: int, monkeypatch: pytest.MonkeyPatch) -> str:
    """A page whose elements carry the class and id values trafilatura's patterns look for, and near misses."""
    rng = random.Random(seed)
    monkeypatch.setattr(xpath_native, "_MAX_SEQUENCES", 10_000)
    found = {w for p in trafilatura_patterns() for w in fixed_strings(p) if w}
    monkeypatch.undo()
    # and what the other tests compare with: contains(@class, '...'), @id='...'
    originals = [original.path for original, _ in xpath_native.REPLACED]
    found = sorted(found | {w for path in originals for w in re.findall(r"'([\w -]+)'", path)})
    values = [f for w in found for f in (w, f"x {w}", w.capitalize(), rng.choice([w[:-1], f"{w}ary", f"{w}\t"]))]
    tags = ["div", "section", "span", "h2", "list", "article", "p", "a", "h4", "aside", "h1", "h3", "li", "item"]
    tags += ["main", "details", "ol", "ul", "address", "strong", "link"]
    extra = ["rel", "itemprop", "style", "data-component", "data-testid", "role"]
    parts = []
    for i, value in enumerate(values):
        # the most common tag for each attribute always, one more in turn
        for attr, tag in (("class", "div"), ("id", "section"), (("class", "id")[i % 2], tags[(i + seed) % len(tags)])):
            named = f'{attr}="{value}"'
            if rng.random() < 0.3:
                named += f' {rng.choice(extra)}="{rng.choice(values)}"'
            words = " ".join(rng.choice(["energy", "pause", "strikes", "grid"]) for _ in range(rng.randint(1, 9)))
            parts.append(f'<div><{tag} {named}>{words}<a href="#{i}">{words}</a></{tag}></div>')
    return f"<html><head><title>soup</title></head><body><main>{''.join(parts)}</main></body></html>"


def pages(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, etree._Element]]:
    found = [(p.name, clean.load_html(p.read_bytes(), None)) for p in sorted(FIXTURES.glob("*.html"))]
    found += [(f"soup-{seed}", lxml.html.fromstring(class_soup(seed, monkeypatch))) for seed in range(2)]
    return [(name, tree) for name, tree in found if tree is not None]


def test_rewritten_expressions_select_the_same_elements(monkeypatch: pytest.MonkeyPatch) -> None:
    assert xpath_native.REPLACED, "clean installs the rewrites on import"
    selected = dict.fromkeys((original.path for original, _ in xpath_native.REPLACED), 0)
    for name, tree in pages(monkeypatch):
        for original, replacement in xpath_native.REPLACED:
            before = original(tree)
            assert replacement(tree) == before, (name, original.path)
            selected[original.path] += len(before)
    # the soup pages make every expression select something, so equal results say something
    assert all(n > 0 for n in selected.values()), selected


def test_a_rewrite_that_does_not_compile_keeps_the_original(monkeypatch: pytest.MonkeyPatch) -> None:
    original = etree.XPath("//div[re:test(@class, 'ab')]", namespaces=NS)
    monkeypatch.setattr(xpath_native, "native", lambda path: path + "[[")
    assert xpath_native.compile_native(original) is original


def test_install_swaps_in_place_once() -> None:
    import sys

    import trafilatura.main_extractor
    import trafilatura.xpaths

    # an expression a module holds by itself is replaced in every module holding it
    baseline, settings = sys.modules["trafilatura.baseline"], sys.modules["trafilatura.settings"]
    assert baseline.BASIC_CLEAN_XPATH is settings.BASIC_CLEAN_XPATH
    assert any(new is baseline.BASIC_CLEAN_XPATH for _, new in xpath_native.REPLACED)

    used = vars(trafilatura.main_extractor)["OVERALL_DISCARD_XPATH"]  # the list extraction reads
    assert used is trafilatura.xpaths.OVERALL_DISCARD_XPATH
    swapped = {id(new) for _, new in xpath_native.REPLACED}
    assert any(id(e) in swapped for e in used)
    before = len(xpath_native.REPLACED)
    assert xpath_native.install() == 0
    assert len(xpath_native.REPLACED) == before


def test_every_fixed_string_combination_of_a_pattern_is_expanded(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(xpath_native._Unsupported):  # six of them: past the cap
        xpath_native._Parser("a[bc]?(?:d|e)").parse()
    monkeypatch.setattr(xpath_native, "_MAX_SEQUENCES", 6)
    seqs = xpath_native._Parser("a[bc]?(?:d|e)").parse()
    texts = sorted("".join(str(t) for t in s) for s in seqs)
    assert texts == sorted("".join(p) for p in itertools.product("a", ["b", "c", ""], ["d", "e"]))
