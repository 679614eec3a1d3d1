"""The moderation rule language: community guidelines as rules in a YAML file, one language for every platform.

A file holds ``rules``; each rule has an ``id``, conditions under ``when`` (all must hold) and
``actions``.  See docs/moderation.md for the full reference.  Example::

    rules:
      - id: no-slurs
        reason: Slurs are not welcome here
        when:
          text:
            words: [idiot, moron]        # whole words, any of them
        actions: [hide, flag, {warn: "{author}, please keep it civil ({reason})."}]

Files are checked before use: every problem is reported with its line and the field's path
(``rules.yaml:7: rules[0].when.text.regex: ...``), never as a traceback.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

ACTIONS = ("flag", "hide", "reply", "warn", "notify")
TEMPLATE_ACTIONS = ("reply", "warn", "notify")
TEMPLATE_FIELDS = frozenset({"author", "rule", "reason", "channel", "text"})
SEGMENTS = ("newcomer", "regular")
COMPARATORS = ("under", "over", "at_least", "at_most")
DEFAULT_KINDS = ("message", "reply", "question", "answer", "comment", "post", "action", "notice", "edit")
RULE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
URL = re.compile(r"(?i)\b(?:https?://|www\.)[^\s<>\"')\]]+")


class RuleProblem(Exception):
    def __init__(self, line: int, path: str, message: str) -> None:
        super().__init__(f"{line}: {path}: {message}")
        self.line = line
        self.path = path
        self.message = message


class RulesError(Exception):
    """A rules file that cannot be used; ``problems`` lists each with its line and field."""

    def __init__(self, filename: str, problems: Sequence[RuleProblem]) -> None:
        self.filename = filename
        self.problems = list(problems)
        super().__init__("\n".join(f"{filename}:{p.line}: {p.path}: {p.message}" for p in self.problems))


# -- what a condition needs to know about an activity ------------------------------------------------


@dataclass(frozen=True)
class Subject:
    """An activity under review."""

    activity_id: str
    platform: str
    kind: str
    text: str
    created_at: datetime
    identity_id: str | None
    channel_id: str | None
    author_name: str | None = None
    channel_name: str | None = None


class Facts(Protocol):
    """Facts about a subject that need the store (or a model); computed only when a rule asks."""

    def account_age_days(self, subject: Subject) -> float | None: ...

    def activity_count(self, subject: Subject) -> int: ...

    def segment(self, subject: Subject) -> str: ...

    def toxicity(self, subject: Subject) -> float | None: ...

    def messages_in_last_minute(self, subject: Subject) -> int: ...

    def repeated_text(self, subject: Subject, within_minutes: float) -> int: ...


@dataclass(frozen=True)
class Bound:
    """A numeric test: ``under``/``over``/``at_least``/``at_most`` (all given must hold)."""

    limits: tuple[tuple[str, float], ...]

    def test(self, value: float) -> bool:
        checks: dict[str, Callable[[float, float], bool]] = {
            "under": lambda v, x: v < x,
            "over": lambda v, x: v > x,
            "at_least": lambda v, x: v >= x,
            "at_most": lambda v, x: v <= x,
        }
        return all(checks[name](value, limit) for name, limit in self.limits)

    def __str__(self) -> str:
        return " and ".join(f"{name.replace('_', ' ')} {limit:g}" for name, limit in self.limits)


Check = Callable[[Subject, Facts], str | None]
"""A condition: None when it does not hold, else why it holds (for the audit log)."""


@dataclass(frozen=True)
class Template:
    text: str

    def render(self, values: dict[str, str]) -> str:
        return self.text.format_map({name: values.get(name, "") for name in TEMPLATE_FIELDS})


@dataclass(frozen=True)
class Action:
    kind: str
    template: Template | None = None


@dataclass(frozen=True)
class Rule:
    id: str
    line: int
    reason: str
    checks: tuple[tuple[str, Check], ...]
    actions: tuple[Action, ...]
    platforms: tuple[str, ...] = ()
    kinds: tuple[str, ...] = DEFAULT_KINDS

    def applies_to(self, subject: Subject) -> bool:
        return (not self.platforms or subject.platform in self.platforms) and subject.kind in self.kinds

    def explain(self, subject: Subject, facts: Facts) -> list[str] | None:
        """Why every condition holds, or None when one does not."""
        if not self.applies_to(subject):
            return None
        reasons = []
        for _name, check in self.checks:
            why = check(subject, facts)
            if why is None:
                return None
            reasons.append(why)
        return reasons


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    filename: str = "<rules>"
    fields: dict[str, Any] = field(default_factory=dict)


# -- parsing -----------------------------------------------------------------------------------------


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


class _Reader:
    """Reads the composed YAML tree, keeping each node's line for error messages."""

    def __init__(self) -> None:
        self.problems: list[RuleProblem] = []
        self._constructor = yaml.SafeLoader("")

    def fail(self, node: Node, path: str, message: str) -> None:
        self.problems.append(RuleProblem(_line(node), path, message))

    def scalar(self, node: Node) -> Any:
        return self._constructor.construct_object(node, deep=True)

    def mapping(self, node: Node, path: str, allowed: Sequence[str]) -> dict[str, tuple[Node, Node]] | None:
        if not isinstance(node, MappingNode):
            self.fail(node, path, "expected a mapping (key: value)")
            return None
        found: dict[str, tuple[Node, Node]] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, ScalarNode) else None
            if not isinstance(key, str) or key not in allowed:
                choices = ", ".join(allowed)
                self.fail(key_node, f"{path}.{key}", f"unknown field; expected one of: {choices}")
                continue
            if key in found:
                self.fail(key_node, f"{path}.{key}", "given twice")
                continue
            found[key] = (key_node, value_node)
        return found

    def text(self, node: Node, path: str) -> str | None:
        value = self.scalar(node) if isinstance(node, ScalarNode) else None
        if not isinstance(value, str) or not value.strip():
            self.fail(node, path, "expected a non-empty text")
            return None
        return value

    def texts(self, node: Node, path: str) -> list[str] | None:
        """A text or a list of texts."""
        items = node.value if isinstance(node, SequenceNode) else [node]
        if isinstance(node, SequenceNode) and not items:
            self.fail(node, path, "expected at least one text")
            return None
        values = []
        for index, item in enumerate(items):
            value = self.text(item, f"{path}[{index}]" if isinstance(node, SequenceNode) else path)
            if value is None:
                return None
            values.append(value)
        return values

    def number(self, node: Node, path: str, *, minimum: float = 0) -> float | None:
        value = self.scalar(node) if isinstance(node, ScalarNode) else None
        if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
            self.fail(node, path, f"expected a number ≥ {minimum:g}")
            return None
        return float(value)

    def flag(self, node: Node, path: str) -> bool | None:
        value = self.scalar(node) if isinstance(node, ScalarNode) else None
        if not isinstance(value, bool):
            self.fail(node, path, "expected true or false")
            return None
        return value

    def bound(self, node: Node, path: str, *, maximum: float | None = None) -> Bound | None:
        if isinstance(node, ScalarNode):
            self.fail(node, path, "expected a comparison such as {at_least: 0.8} or {under: 7}")
            return None
        fields = self.mapping(node, path, COMPARATORS)
        if fields is None:
            return None
        if not fields:
            self.fail(node, path, "expected at least one of: " + ", ".join(COMPARATORS))
            return None
        limits = []
        for name, (_key, value_node) in fields.items():
            number = self.number(value_node, f"{path}.{name}")
            if number is None:
                return None
            if maximum is not None and number > maximum:
                self.fail(value_node, f"{path}.{name}", f"expected a number between 0 and {maximum:g}")
                return None
            limits.append((name, number))
        return Bound(tuple(limits))


def _word_pattern(words: Sequence[str], case_sensitive: bool) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(word) for word in sorted(words, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", 0 if case_sensitive else re.IGNORECASE)


def _quote(found: str) -> str:
    return repr(found if len(found) <= 60 else found[:57] + "...")


def _text_checks(reader: _Reader, node: Node, path: str) -> list[tuple[str, Check]]:
    fields = reader.mapping(node, path, ("words", "contains", "regex", "case_sensitive"))
    if fields is None:
        return []
    before = len(reader.problems)
    case_sensitive = False
    if "case_sensitive" in fields:
        case_sensitive = bool(reader.flag(fields["case_sensitive"][1], f"{path}.case_sensitive"))
    flags = 0 if case_sensitive else re.IGNORECASE
    patterns: list[tuple[str, re.Pattern[str]]] = []
    if "words" in fields:
        words = reader.texts(fields["words"][1], f"{path}.words")
        if words:
            patterns.append(("word", _word_pattern(words, case_sensitive)))
    if "contains" in fields:
        pieces = reader.texts(fields["contains"][1], f"{path}.contains")
        if pieces:
            patterns.append(("text", re.compile("|".join(map(re.escape, pieces)), flags)))
    if "regex" in fields:
        value_node = fields["regex"][1]
        expressions = reader.texts(value_node, f"{path}.regex")
        items = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
        for index, (expression, item) in enumerate(zip(expressions or [], items, strict=False)):
            where = f"{path}.regex[{index}]" if isinstance(value_node, SequenceNode) else f"{path}.regex"
            try:
                patterns.append(("pattern", re.compile(expression, flags)))
            except re.error as problem:
                reader.fail(item, where, f"invalid regular expression: {problem}")
    if not patterns and len(reader.problems) == before:
        reader.fail(node, path, "expected at least one of: words, contains, regex")

    def check(subject: Subject, _facts: Facts) -> str | None:
        for label, pattern in patterns:
            found = pattern.search(subject.text)
            if found:
                return f"{label} {_quote(found.group(0))}"
        return None

    return [("text", check)]


def _domain_of(url: str) -> str:
    rest = url.split("://", 1)[-1]
    host = re.split(r"[/?#:]", rest, maxsplit=1)[0].lower().rstrip(".")
    return host.split("@")[-1]


def _link_checks(reader: _Reader, node: Node, path: str) -> list[tuple[str, Check]]:
    fields = reader.mapping(node, path, ("any", "domains"))
    if fields is None:
        return []
    if not fields:
        reader.fail(node, path, "expected any: true or domains: [...]")
        return []
    wanted_any = reader.flag(fields["any"][1], f"{path}.any") if "any" in fields else None
    domains = reader.texts(fields["domains"][1], f"{path}.domains") if "domains" in fields else None
    domain_set = tuple(domain.lower().lstrip(".") for domain in domains or [])

    def check(subject: Subject, _facts: Facts) -> str | None:
        urls = URL.findall(subject.text)
        if domain_set:
            for url in urls:
                host = _domain_of(url)
                for domain in domain_set:
                    if host == domain or host.endswith("." + domain):
                        return f"link to {domain}"
            return None
        if wanted_any is True:
            return f"link {_quote(urls[0])}" if urls else None
        if wanted_any is False:
            return "no link" if not urls else None
        return None

    return [("links", check)]


def _author_checks(reader: _Reader, node: Node, path: str) -> list[tuple[str, Check]]:
    fields = reader.mapping(node, path, ("account_age_days", "activities", "segment"))
    if fields is None:
        return []
    checks: list[tuple[str, Check]] = []
    if "account_age_days" in fields:
        age_bound = reader.bound(fields["account_age_days"][1], f"{path}.account_age_days")
        if age_bound is not None:

            def age(subject: Subject, facts: Facts, bound: Bound = age_bound) -> str | None:
                days = facts.account_age_days(subject)
                return f"account age {days:.1f} days ({bound})" if days is not None and bound.test(days) else None

            checks.append(("author.account_age_days", age))
    if "activities" in fields:
        count_bound = reader.bound(fields["activities"][1], f"{path}.activities")
        if count_bound is not None:

            def count(subject: Subject, facts: Facts, bound: Bound = count_bound) -> str | None:
                number = facts.activity_count(subject)
                return f"{number} activities ({bound})" if bound.test(number) else None

            checks.append(("author.activities", count))
    if "segment" in fields:
        segment_node = fields["segment"][1]
        wanted = reader.text(segment_node, f"{path}.segment")
        if wanted is not None and wanted not in SEGMENTS:
            reader.fail(
                segment_node, f"{path}.segment", f"unknown segment {wanted!r}; expected one of: newcomer, regular"
            )
        elif wanted is not None:

            def segment(subject: Subject, facts: Facts, name: str = wanted) -> str | None:
                return f"author is a {name}" if facts.segment(subject) == name else None

            checks.append(("author.segment", segment))
    return checks


def _toxicity_checks(reader: _Reader, node: Node, path: str) -> list[tuple[str, Check]]:
    toxicity_bound = reader.bound(node, path, maximum=1)
    if toxicity_bound is None:
        return []

    def check(subject: Subject, facts: Facts, bound: Bound = toxicity_bound) -> str | None:
        score = facts.toxicity(subject)
        return f"toxicity {score:.2f} ({bound})" if score is not None and bound.test(score) else None

    return [("toxicity", check)]


def _rate_checks(reader: _Reader, node: Node, path: str) -> list[tuple[str, Check]]:
    fields = reader.mapping(node, path, ("per_minute", "repeated"))
    if fields is None:
        return []
    checks: list[tuple[str, Check]] = []
    if "per_minute" in fields:
        per_minute_bound = reader.bound(fields["per_minute"][1], f"{path}.per_minute")
        if per_minute_bound is not None:

            def per_minute(subject: Subject, facts: Facts, bound: Bound = per_minute_bound) -> str | None:
                number = facts.messages_in_last_minute(subject)
                return f"{number} messages in a minute ({bound})" if bound.test(number) else None

            checks.append(("rate.per_minute", per_minute))
    if "repeated" in fields:
        repeated_path = f"{path}.repeated"
        repeated = reader.mapping(fields["repeated"][1], repeated_path, (*COMPARATORS, "within_minutes"))
        if repeated is not None:
            within = 10.0
            if "within_minutes" in repeated:
                within = reader.number(repeated["within_minutes"][1], f"{repeated_path}.within_minutes") or within
            limits = []
            for name in COMPARATORS:
                if name in repeated:
                    number = reader.number(repeated[name][1], f"{repeated_path}.{name}")
                    if number is not None:
                        limits.append((name, number))
            if not limits:
                reader.fail(fields["repeated"][1], repeated_path, "expected a comparison such as at_least: 3")
            else:

                def repeat(subject: Subject, facts: Facts, bound: Bound = Bound(tuple(limits))) -> str | None:
                    number = facts.repeated_text(subject, within)
                    return f"same text {number} times in {within:g} min ({bound})" if bound.test(number) else None

                checks.append(("rate.repeated", repeat))
    return checks


_CONDITIONS: dict[str, Callable[[_Reader, Node, str], list[tuple[str, Check]]]] = {
    "text": _text_checks,
    "links": _link_checks,
    "author": _author_checks,
    "toxicity": _toxicity_checks,
    "rate": _rate_checks,
}


def _template(reader: _Reader, node: Node, path: str) -> Template | None:
    text = reader.text(node, path)
    if text is None:
        return None
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
    except ValueError as problem:
        reader.fail(node, path, f"invalid template: {problem}")
        return None
    unknown = sorted(name for name in names if name not in TEMPLATE_FIELDS)
    if unknown:
        allowed = ", ".join("{" + name + "}" for name in sorted(TEMPLATE_FIELDS))
        reader.fail(node, path, f"unknown placeholder {{{unknown[0]}}}; allowed: {allowed}")
        return None
    return Template(text)


def _actions(reader: _Reader, node: Node, path: str) -> list[Action]:
    if not isinstance(node, SequenceNode) or not node.value:
        reader.fail(node, path, "expected a list of actions: " + ", ".join(ACTIONS))
        return []
    found = []
    for index, item in enumerate(node.value):
        where = f"{path}[{index}]"
        if isinstance(item, ScalarNode):
            name = item.value
            if name in TEMPLATE_ACTIONS:
                reader.fail(item, where, f"{name} needs a template: {{{name}: 'text'}}")
            elif name not in ACTIONS:
                reader.fail(item, where, f"unknown action {name!r}; expected one of: " + ", ".join(ACTIONS))
            else:
                found.append(Action(name))
        elif isinstance(item, MappingNode) and len(item.value) == 1:
            key_node, value_node = item.value[0]
            name = key_node.value if isinstance(key_node, ScalarNode) else ""
            if name not in TEMPLATE_ACTIONS:
                allowed = ", ".join(TEMPLATE_ACTIONS)
                reader.fail(key_node, f"{where}.{name}", f"only {allowed} take a template")
                continue
            template = _template(reader, value_node, f"{where}.{name}")
            if template is not None:
                found.append(Action(name, template))
        else:
            reader.fail(item, where, "expected an action name or {reply|warn|notify: template}")
    return found


def _rule(reader: _Reader, node: Node, path: str, seen: dict[str, int]) -> Rule | None:
    fields = reader.mapping(node, path, ("id", "description", "reason", "platforms", "kinds", "when", "actions"))
    if fields is None:
        return None
    before = len(reader.problems)
    for required in ("id", "when", "actions"):
        if required not in fields:
            reader.fail(node, f"{path}.{required}", "missing")
    if len(reader.problems) > before:
        return None
    id_node = fields["id"][1]
    rule_id = reader.text(id_node, f"{path}.id")
    if rule_id is not None and not RULE_ID.match(rule_id):
        reader.fail(id_node, f"{path}.id", "use letters, digits, '-', '_' or '.' (at most 100)")
    elif rule_id is not None and rule_id in seen:
        reader.fail(id_node, f"{path}.id", f"{rule_id!r} is already the id of the rule at line {seen[rule_id]}")
    elif rule_id is not None:
        seen[rule_id] = _line(node)
    description = reader.text(fields["description"][1], f"{path}.description") if "description" in fields else None
    reason = reader.text(fields["reason"][1], f"{path}.reason") if "reason" in fields else None
    platforms = reader.texts(fields["platforms"][1], f"{path}.platforms") if "platforms" in fields else []
    kinds = reader.texts(fields["kinds"][1], f"{path}.kinds") if "kinds" in fields else list(DEFAULT_KINDS)
    when_node = fields["when"][1]
    conditions = reader.mapping(when_node, f"{path}.when", tuple(_CONDITIONS))
    checks: list[tuple[str, Check]] = []
    if conditions is not None:
        if not conditions:
            reader.fail(when_node, f"{path}.when", "expected at least one condition: " + ", ".join(_CONDITIONS))
        for name, (_key, value_node) in conditions.items():
            checks.extend(_CONDITIONS[name](reader, value_node, f"{path}.when.{name}"))
    actions = _actions(reader, fields["actions"][1], f"{path}.actions")
    if len(reader.problems) > before or rule_id is None:
        return None
    return Rule(
        id=rule_id,
        line=_line(node),
        reason=reason or description or rule_id,
        checks=tuple(checks),
        actions=tuple(actions),
        platforms=tuple(platforms or ()),
        kinds=tuple(kinds or DEFAULT_KINDS),
    )


def parse_rules(text: str, filename: str = "<rules>") -> RuleSet:
    """Parse and check a rules file's text; raises :class:`RulesError` listing every problem."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as problem:
        mark = problem.problem_mark or problem.context_mark
        line = mark.line + 1 if mark is not None else 1
        column = f" (column {mark.column + 1})" if mark is not None else ""
        raise RulesError(filename, [RuleProblem(line, "yaml", f"{problem.problem or problem}{column}")]) from None
    except yaml.YAMLError as problem:
        raise RulesError(filename, [RuleProblem(1, "yaml", str(problem))]) from None
    if root is None:
        raise RulesError(filename, [RuleProblem(1, "rules", "the file is empty; expected rules: [...]")])
    reader = _Reader()
    top = reader.mapping(root, "(top)", ("version", "rules"))
    rules: list[Rule] = []
    if top is not None:
        if "version" in top:
            version = reader.scalar(top["version"][1])
            if version != 1:
                reader.fail(top["version"][1], "version", "only version 1 is known")
        if "rules" not in top:
            reader.fail(root, "rules", "missing")
        else:
            rules_node = top["rules"][1]
            if not isinstance(rules_node, SequenceNode):
                reader.fail(rules_node, "rules", "expected a list of rules")
            else:
                seen: dict[str, int] = {}
                for index, item in enumerate(rules_node.value):
                    rule = _rule(reader, item, f"rules[{index}]", seen)
                    if rule is not None:
                        rules.append(rule)
    if reader.problems:
        raise RulesError(filename, reader.problems)
    return RuleSet(tuple(rules), filename)


def load_rules(path: str | Path) -> RuleSet:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as problem:
        raise RulesError(str(path), [RuleProblem(1, "(file)", f"cannot read: {problem}")]) from None
    return parse_rules(text, str(path))
