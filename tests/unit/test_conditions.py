"""The condition language: parsing, precedence, operators, and its errors."""

from __future__ import annotations

import re
from collections.abc import Mapping

import pytest

from pytest_torchci.data.conditions import ConditionError, parse_condition


class FakeResolver:
    """Traits from a set; ``$NAME`` / ``${NAME}`` expand from a mapping (unset: empty)."""

    def __init__(self, traits: set[str], variables: Mapping[str, str]) -> None:
        self.traits = traits
        self.variables = variables
        self.expanded: list[str] = []

    def trait(self, name: str) -> bool:
        return name in self.traits

    def expand(self, word: str) -> str:
        self.expanded.append(word)
        return re.sub(
            r"\$\{(\w+)\}|\$(\w+)",
            lambda m: self.variables.get(m.group(1) or m.group(2), ""),
            word,
        )


TRAITS = {"yes", "also"}  # "no" and "nope" are false
VARIABLES = {
    "SHARD_NUMBER": "1",
    "NUM_TEST_SHARDS": "10",
    "TEN": "10",
    "NINE": "9",
    "EMPTY": "",
    "ZERO": "0",
    "WORDS": "a b",
    "FILTER": "not-multigpu",
}

# (condition, expected value)
CASES: list[tuple[str, bool]] = [
    # traits
    ("yes", True),
    ("no", False),
    # not binds tighter than and, and tighter than or
    ("yes or no and nope", True),  # yes or (no and nope); (yes or no) and nope is False
    ("no and nope or yes", True),  # (no and nope) or yes
    ("no and yes or yes and also", True),
    ("not yes or yes", True),  # (not yes) or yes; not (yes or yes) is False
    ("not no and no", False),  # (not no) and no
    ("not not yes", True),
    ("not (yes and no)", True),
    # parentheses override precedence
    ("(yes or no) and nope", False),
    ("yes and (no or also)", True),
    ("((yes))", True),
    ("not (no or (yes and not also))", True),
    ("yes and(also)", True),
    # == and != compare as a bash pattern; a bare word on the right is text
    ("$SHARD_NUMBER == 1", True),
    ("$SHARD_NUMBER == 2", False),
    ("$NUM_TEST_SHARDS == 1", False),  # whole-string match, no prefix
    ("$NUM_TEST_SHARDS == '1*'", True),
    ('$NUM_TEST_SHARDS == "1*"', True),
    ("$FILTER == not-multigpu", True),
    ("$FILTER != not-multigpu", False),
    ("$FILTER != multigpu", True),
    ("${SHARD_NUMBER} == 1", True),
    ('"$SHARD_NUMBER" == 1', True),
    ("$WORDS == '* *'", True),
    # string comparison is not numeric comparison
    ("$TEN == 10", True),
    ("$TEN == 010", False),
    ("$TEN -eq 010", True),
    ("$TEN -gt $NINE", True),  # numerically 10 > 9 ("10" < "9" as text)
    ("$TEN -lt $NINE", False),
    ("$NINE -ge 9", True),
    ("$NINE -le 8", False),
    ("$NINE -ne 9", False),
    ("$SHARD_NUMBER == 1 and $NUM_TEST_SHARDS -gt 1", True),
    ("$EMPTY -eq 0", True),  # an empty operand is 0, as in bash
    ("$ZERO -gt -1", True),
    # =~ is a regex search
    ("$FILTER =~ multi", True),
    ("$FILTER =~ '^multi'", False),
    # a bare operand is true when it expands to a non-empty string (-n)
    ("$SHARD_NUMBER", True),
    ("$EMPTY", False),
    ("$UNSET", False),
    ("$ZERO", True),  # "0" is a non-empty string
    ("not $EMPTY", True),
    ("'text'", True),
    ("''", False),
    ("$EMPTY or yes", True),
]


@pytest.mark.parametrize(("source", "expected"), CASES)
def test_evaluate(source: str, expected: bool) -> None:
    assert parse_condition(source).evaluate(FakeResolver(TRAITS, VARIABLES)) is expected


def test_single_quoted_text_is_not_expanded() -> None:
    resolver = FakeResolver(TRAITS, {"X": "1"})
    assert parse_condition("'$X' == 1").evaluate(resolver) is False
    assert parse_condition("'$X' == '$X'").evaluate(resolver) is True  # both literal
    assert resolver.expanded == []
    assert parse_condition('"$X" == 1').evaluate(resolver) is True
    assert resolver.expanded == ["$X"]


def test_traits_lists_the_trait_names() -> None:
    cond = parse_condition("cuda and not (rocm or $X == 1) or config_default")
    assert cond.traits() == {"cuda", "rocm", "config_default"}


@pytest.mark.parametrize(
    "source",
    [
        "$TEST_CONFIG == default",
        "${TEST_CONFIG} == default",
        "$BUILD_ENVIRONMENT == '*cuda*'",
        "${BUILD_ENVIRONMENT}",
        "yes and $BUILD_ENVIRONMENT != '*rocm*'",
        "not $TEST_CONFIG",
        # the variable on the right side is the same test
        "default == $TEST_CONFIG",
        "'*cuda*' == ${BUILD_ENVIRONMENT}",
    ],
)
def test_testing_trait_only_variables_directly_is_an_error(source: str) -> None:
    with pytest.raises(ConditionError, match=r"directly.*trait") as info:
        parse_condition(source)
    assert re.search(r"TEST_CONFIG|BUILD_ENVIRONMENT", str(info.value))


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("", "empty condition"),
        ("   ", "empty condition"),
        ("yes and", "ends too early"),
        ("(yes or no", "ends too early"),
        ("(yes or no]", "cannot read"),
        ("yes no", "unexpected 'no'"),
        ("yes)", "unexpected ')'"),
        ("and yes", "unexpected 'and'"),
        ("yes or or no", "unexpected 'or'"),
        ("== 1", "unexpected '=='"),
        ("$X ==", "ends too early"),
        ("$X == (", "bad right operand"),
        ("$X == and", "bad right operand"),
        ("yes && no", "cannot read"),
        ("$X = 1", "cannot read"),
        ("1.5 -gt 1", "cannot read"),
        ('"unterminated', "cannot read"),
    ],
)
def test_syntax_errors(source: str, message: str) -> None:
    with pytest.raises(ConditionError, match=re.escape(message)):
        parse_condition(source)


@pytest.mark.parametrize("source", ["$WORDS -eq 1", "$FILTER -gt 0", "1 -lt $WORDS"])
def test_numeric_operator_on_text_is_an_error_when_evaluated(source: str) -> None:
    cond = parse_condition(source)  # parses: the operands are only known at run time
    with pytest.raises(ConditionError, match="is not an integer"):
        cond.evaluate(FakeResolver(TRAITS, VARIABLES))


def test_operands_are_only_expanded_when_evaluated() -> None:
    resolver = FakeResolver(TRAITS, VARIABLES)
    cond = parse_condition("no and $SHARD_NUMBER == 1")
    assert resolver.expanded == []
    assert cond.evaluate(resolver) is False
    assert resolver.expanded == []  # `and` stops at the first false part
    assert parse_condition("yes and $SHARD_NUMBER == 1").evaluate(resolver) is True
    assert resolver.expanded == ["$SHARD_NUMBER"]
