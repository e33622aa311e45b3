"""Cheaper forms of trafilatura's XPath expressions, selecting the same elements.

trafilatura finds boilerplate and content with XPath expressions that call EXSLT's re:test on class
and id attributes, and lxml answers every such call in Python, once per element of the page. Two
rewrites keep the matches and spare most of those calls: a pattern that cannot match the empty string
first checks that the element has the attribute at all, and a pattern that is a short alternation of
fixed strings, anchored or not, becomes XPath's own contains(), starts-with() and substring(). A third
turns a step that tests every element's name in a predicate (.//*[self::div or self::p]) into a union
of name tests ((.//div|.//p)) when the predicates after it cannot depend on position. Together they
take about a fifth off an extraction's CPU (docs/benchmarks.md). `install` swaps trafilatura's
compiled expressions for the rewritten ones, so every module that imported them uses them;
tests/test_xpath_native.py checks the tests agree with Python's re and the expressions select the same
elements as trafilatura's own on every fixture page.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable

from lxml import etree

REGEXP_NS = "http://exslt.org/regular-expressions"

# re:test(<attributes>, '<pattern>'[, '<flags>']); its first argument is one attribute or a union of them
_RE_TEST = re.compile(
    r"""re:test\(\s*(@[\w-]+(?:\s*\|\s*@[\w-]+)*)\s*,\s*(?:'([^']*)'|"([^"]*)")\s*(?:,\s*'([^']*)'\s*)?\)"""
)
_START, _END = object(), object()  # the anchors ^ and $ among a sequence's characters
# A pattern that expands to more fixed strings stays a re:test: libxml2 copies the attribute's value
# for each contains(), and past a few of them one call into Python's re is cheaper (measured).
_MAX_SEQUENCES = 4
_SPECIAL = set(".*+{}")  # repetition and any-character: outside the subset, left to re:test

Token = str | object
Sequence = tuple[Token, ...]


class _Unsupported(Exception):
    """The pattern uses something outside the fixed-string subset."""


class _Parser:
    """Expands a pattern made of literals, [classes], (groups), ?, | and anchors into its fixed sequences."""

    def __init__(self, pattern: str) -> None:
        self.text = pattern
        self.pos = 0

    def parse(self) -> list[Sequence]:
        """Every sequence of characters and anchors the pattern can match."""
        out = self._alternation()
        if self.pos != len(self.text):
            raise _Unsupported(self.text)
        return out

    def _peek(self) -> str | None:
        return self.text[self.pos] if self.pos < len(self.text) else None

    def _alternation(self) -> list[Sequence]:
        options = self._sequence()
        while self._peek() == "|":
            self.pos += 1
            options = options + self._sequence()
        return _capped(options)

    def _sequence(self) -> list[Sequence]:
        result: list[Sequence] = [()]
        while (ch := self._peek()) is not None and ch not in "|)":
            atom = self._atom()
            if self._peek() == "?":
                self.pos += 1
                if self._peek() in ("?", "+"):  # lazy or possessive: the same language, but keep it simple
                    raise _Unsupported(self.text)
                atom = [*atom, ()]
            result = _capped([a + b for a in result for b in atom])
        return result

    def _atom(self) -> list[Sequence]:
        ch = self.text[self.pos]
        self.pos += 1
        if ch == "^":
            return [(_START,)]
        if ch == "$":
            return [(_END,)]
        if ch == "(":
            if self.text.startswith("?:", self.pos):
                self.pos += 2
            elif self._peek() == "?":  # lookarounds, named groups, inline flags
                raise _Unsupported(self.text)
            inner = self._alternation()
            if self._peek() != ")":
                raise _Unsupported(self.text)
            self.pos += 1
            return inner
        if ch == "[":
            return [(c,) for c in self._class()]
        if ch == "\\":
            escaped = self._peek()
            # only escaped punctuation stands for itself; \s, \d, \b and the like are classes or assertions
            if escaped is None or escaped.isalnum() or escaped == "_":
                raise _Unsupported(self.text)
            self.pos += 1
            return [(escaped,)]
        if ch in _SPECIAL or ch in "])":
            raise _Unsupported(self.text)
        return [(ch,)]

    def _class(self) -> list[str]:
        chars: list[str] = []
        if self._peek() in ("^", "]", None):  # negated, or ] first: not a set of fixed characters
            raise _Unsupported(self.text)
        while (ch := self._peek()) != "]":
            if ch is None or ch in "\\[":
                raise _Unsupported(self.text)
            self.pos += 1
            # a hyphen between two characters is a range; first or last, it is itself
            if ch == "-" and chars and self._peek() != "]":
                raise _Unsupported(self.text)
            chars.append(ch)
        self.pos += 1
        return list(dict.fromkeys(chars))


def _capped(options: list[Sequence]) -> list[Sequence]:
    if len(options) > _MAX_SEQUENCES:
        raise _Unsupported("too many alternatives")
    return options


def _literal(text: str) -> str:
    if "'" not in text:
        return f"'{text}'"
    if '"' not in text:
        return f'"{text}"'
    raise _Unsupported(text)


def _test(value: str, sequence: Sequence) -> str | None:
    """XPath test of one sequence against the string `value`; None when it can never match."""
    tokens = list(sequence)
    start = end = False
    while tokens and tokens[0] is _START:
        start = True
        tokens.pop(0)
    while tokens and tokens[-1] is _END:
        end = True
        tokens.pop()
    if any(t is _START for t in tokens):  # ^ after a character never holds without MULTILINE
        if any(t is _END for t in tokens):
            raise _Unsupported("anchors inside a sequence")
        return None
    if any(t is _END for t in tokens):  # $ before characters holds only before a final newline: keep re:test
        raise _Unsupported("$ inside a sequence")
    text = "".join(str(t) for t in tokens)
    if not end:
        if not text:
            return "true()"
        return f"starts-with({value}, {_literal(text)})" if start else f"contains({value}, {_literal(text)})"
    # without MULTILINE, $ matches at the end and before a newline that ends the string
    forms = [text, text + "\n"]
    if start:
        return " or ".join(f"{value} = {_literal(f)}" for f in forms)
    return " or ".join(f"substring({value}, string-length({value}) - {len(f)} + 1) = {_literal(f)}" for f in forms)


def translate(argument: str, pattern: str) -> str | None:
    """XPath 1.0 test equal to re:test(argument, pattern), or None when the pattern is outside the subset."""
    try:
        sequences = _Parser(pattern).parse()
        # re:test reads the first node of its argument, as string() does; = on the node-set would test any node
        value = f"string({argument})"
        tests = [t for t in (_test(value, s) for s in sequences) if t is not None]
    except _Unsupported:
        return None
    if not tests:
        return "false()"
    if "true()" in tests:
        return "true()"
    return "(" + " or ".join(dict.fromkeys(tests)) + ")"


def native(path: str) -> str:
    """The expression with its re:test calls checking the attribute first, or in XPath 1.0 where it can."""

    def rewrite(m: re.Match[str]) -> str:
        argument, pattern = m.group(1), m.group(2) if m.group(2) is not None else m.group(3)
        flags = m.group(4) or ""
        try:  # lxml reads the flag "i" (ignore case) and no other that changes a test
            matches_empty = re.search(pattern, "", re.IGNORECASE if "i" in flags else 0) is not None
        except re.error:
            return m.group(0)  # lxml reports a bad pattern when the expression runs, as it would have
        # Python's case folding reaches beyond ASCII (K, the Kelvin sign, matches k): no fixed strings then
        test = (None if flags else translate(argument, pattern)) or m.group(0)
        if matches_empty:
            return test
        # An element without the attribute tests the empty string, which this pattern never matches:
        # checking the attribute first spares most elements the call.
        return f"(({argument}) and {test})"

    return _RE_TEST.sub(rewrite, path)


# .//*[self::a or self::b ...]: every element is put through one self:: test per name, and libxml2
# builds a node-set for each; (.//a|.//b) lets the name tests pick the elements instead.
_SELF_STEP = re.compile(r"(\.?//)\*\[\s*(self::[A-Za-z_][\w.-]*(?:\s+or\s+self::[A-Za-z_][\w.-]*)*)\s*\]")
_BOOLEAN_CALL = re.compile(r"\s*(?:not|contains|starts-with|boolean|true|false|lang|re:test)\s*\(")
_LOGIC = re.compile(r"(?<![\w.-])(?:or|and)(?![\w.-])|[=<>]")


def _masked(path: str) -> str:
    """The path with the inside of every string literal blanked, so nothing in a literal is taken for syntax."""
    return re.sub(r"'[^']*'|\"[^\"]*\"", lambda m: m.group(0)[0] + "_" * (len(m.group(0)) - 2) + m.group(0)[0], path)


def _closing(masked: str, start: int) -> int:
    """Index of the bracket or parenthesis that closes the one at start."""
    depth = 0
    for i in range(start, len(masked)):
        if masked[i] in "([":
            depth += 1
        elif masked[i] in ")]":
            depth -= 1
            if depth == 0:
                return i
    raise ValueError("unbalanced")


def _top_level(masked: str) -> str:
    """The characters of an expression outside its parentheses and brackets."""
    out, depth = [], 0
    for ch in masked:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif depth == 0:
            out.append(ch)
    return "".join(out)


def _boolean(predicate: str) -> bool:
    """Whether a predicate (masked, without its brackets) surely is a test, not a position.

    A predicate whose value is a number selects by position, and positions change when a step
    becomes a union: only predicates that are a comparison, an or/and, or a call of a function
    that returns a boolean are let through.
    """
    if "position(" in predicate or "last(" in predicate:
        return False
    if _LOGIC.search(_top_level(predicate)):
        return True
    call = _BOOLEAN_CALL.match(predicate)
    if call is None:
        return False
    end = _closing(predicate, call.end() - 1)
    return predicate[end + 1 :].strip() == ""


def _self_steps(path: str) -> str:
    """.//*[self::a or self::b][p]... as (.//a|.//b)[p]...: the same elements, when every p is a test."""
    masked = _masked(path)
    out, last = [], 0
    for m in _SELF_STEP.finditer(masked):
        before = masked[: m.start()].rstrip()
        if before and before[-1] not in "([|,":
            continue  # //* continues a path (a//*[...]): a union would cut it off
        end = m.end()
        try:
            while masked[end:].lstrip().startswith("["):
                start = len(masked) - len(masked[end:].lstrip())
                close = _closing(masked, start)
                if not _boolean(masked[start + 1 : close]):
                    break
                end = close + 1
            else:
                names = re.findall(r"self::([A-Za-z_][\w.-]*)", m.group(2))
                union = "(" + "|".join(f"{m.group(1)}{name}" for name in names) + ")"
                out.append(path[last : m.start()] + union)
                last = m.end()
        except ValueError:
            continue
    return "".join(out) + path[last:]


def compile_native(expression: etree.XPath) -> etree.XPath:
    """A compiled expression selecting the same nodes, rewritten where a rewrite is cheaper."""
    rewritten = _self_steps(native(expression.path))
    if rewritten == expression.path:
        return expression
    try:
        return etree.XPath(rewritten, namespaces={"re": REGEXP_NS})
    except etree.XPathError:  # a form this module did not foresee: the original still works
        return expression


# (original, replacement) of every expression install() swapped: tests compare the two on real pages
REPLACED: list[tuple[etree.XPath, etree.XPath]] = []
_installed = False


def install() -> int:
    """Swap trafilatura's compiled expressions for native ones, once; returns how many it swapped."""
    global _installed
    if _installed:
        return 0  # a second pass would guard the guarded tests again
    _installed = True
    done: dict[int, etree.XPath] = {}

    def swap(expression: etree.XPath) -> etree.XPath:
        if id(expression) not in done:
            replacement = compile_native(expression)
            done[id(expression)] = done[id(replacement)] = replacement
            if replacement is not expression:
                REPLACED.append((expression, replacement))
        return done[id(expression)]

    replace_expressions(swap)
    return len(REPLACED)


def replace_expressions(replace: Callable[[etree.XPath], etree.XPath]) -> None:
    """Put replace(e) in place of every compiled expression e that a module of trafilatura holds.

    Lists of expressions change in place, so every module that imported one sees the change; an
    expression a module holds by itself is replaced in each module that holds it.
    """
    import trafilatura.core  # noqa: F401  (loads every module of trafilatura that holds expressions)

    modules = [m for name, m in sorted(sys.modules.items()) if name.partition(".")[0] == "trafilatura"]
    for module in modules:
        for name, value in list(vars(module).items()):
            if isinstance(value, etree.XPath):
                setattr(module, name, replace(value))
            elif isinstance(value, list) and value and all(isinstance(e, etree.XPath) for e in value):
                value[:] = [replace(e) for e in value]
