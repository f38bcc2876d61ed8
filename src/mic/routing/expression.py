"""CEL expressions of subscription filters: compiled once, checked for typos, evaluated per event.

CEL (https://cel.dev) is what Kubernetes itself uses for validation rules and admission
policies, so users know it, and it is side-effect free and terminating (its cost is bounded
below): a recipient's filter can never hang or hurt MIC. We use the maintained
`common-expression-language` binding.

Four properties of that binding shape this module:

* It only checks syntax when compiling, not types; an unknown variable or a result that is not
  a bool shows up at run time, on every event, forever. `compile_cel` therefore rejects names
  that are neither one of the variables MIC provides nor bound by a comprehension macro, and
  evaluates the expression on a sample event to refuse one that returns something else than
  true or false, so a typo (`obj.metadata`) or a missing comparison (`object.metadata.name`) is
  a 4xx when the subscription is written rather than a silent "never matches".
* It knows CEL's standard functions only; the extension libraries Kubernetes validation
  rules offer (strings, lists, math, sets, base64) come as Python functions, registered on a
  reused context for the expressions that call them. Two-variable comprehensions are not
  implemented by the binding, so they are refused when written, like unknown variables.
* Converting Python values into CEL values costs a few microseconds per map entry or list
  item, far more than evaluating the expression. `CompiledExpression.variables` says which of
  `event`, `object` and `oldObject` an expression references, so callers convert only those.
* It has no cost limit, step limit or timeout, and evaluation holds the GIL: an expensive
  expression stalls the event loop, and with it every cluster's routing, until it finishes.
  Kubernetes bounds CEL cost with an estimate when a rule is written plus a limit at run time;
  `compile_cel` bounds it when the filter is written instead, by refusing what multiplies the
  work per event beyond two nested comprehensions (see `MAX_COMPREHENSION_NESTING`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, Final, NamedTuple

import cel
from cel.stdlib import EXTENSIONS

__all__ = [
    "CEL_VARIABLES",
    "CompiledExpression",
    "ExpressionEvaluationError",
    "InvalidExpressionError",
    "compile_cel",
]

CEL_VARIABLES: Final = frozenset({"event", "object", "oldObject"})
"""The variables a subscription's expression can use."""

MAX_EXPRESSION_LENGTH: Final = 4096
"""Longer expressions are refused: the binding recurses per term and a very long chain of
terms (tens of thousands) overflows the stack, which ends the whole process."""

MAX_COMPREHENSION_NESTING: Final = 2
"""How deeply comprehension macros (`all`, `exists`, `exists_one`, `map`, `filter`) may nest.

A comprehension inside another's body runs once per element of the outer one, so d levels over
lists of n items take n**d steps, and the binding takes 0.2 to 0.7 µs a step (depending on the
body), holding the GIL. Measured over a 10-item list: 3 levels 0.3 ms, 4 levels 2 to 5 ms,
6 levels 0.2 to 0.7 s, 7 levels 2 s per event, and each further level ten times that (10
levels: up to two hours). Lists in real objects are often longer (a ConfigMap's data, an
EndpointSlice's endpoints): at n = 100, two levels cost up to 7 ms, three up to 0.7 s. Two
levels are what filters need (`object.spec.rules.all(r, r.http.paths.all(p, ...))`), so a
third is refused when the subscription is written. Comprehensions side by side
(`a.all(x, ...) && b.exists(y, ...)`) or chained (`l.filter(x, ...).all(y, ...)`) do not
nest: each runs once. What two levels still allow is quadratic: over two of one object's own
lists, in the size of that object (Kubernetes bounds that case with the schema's maxItems,
which a watch filter does not have).

Two more constructs multiply the work without nesting and are bounded too: a `map` over what
another `map` returned (each can repeat its input, `l.map(x, x + x)`, so a chain of them doubles
the data per link: 30 links of `.map(a, a + a)`, 400 characters, make a list of 2**30 items),
and `lists.range(n)`, limited to `MAX_RANGE_ITEMS`. A list literal needs about two characters
per item, so `MAX_EXPRESSION_LENGTH` bounds it to about 2,000 items; the worst left, two nested
levels over literals that fill the expression, is about 10**6 steps (measured 0.2 s)."""

MAX_RANGE_ITEMS: Final = 1000
"""`lists.range(n)` may make at most this many items: as many as the longest list an index loop
(`lists.range(size(l)).all(i, ...)`) realistically walks, and no more than a list literal the
expression could spell out. A literal argument above it is refused when the filter is written,
a computed one fails that event."""


def _bounded_range(n: int) -> list[int]:
    """`lists.range`, refusing to build more than `MAX_RANGE_ITEMS` items (see there)."""
    if n > MAX_RANGE_ITEMS:
        raise ValueError(f"lists.range({n}): at most {MAX_RANGE_ITEMS} items are allowed")
    return list(range(n))


MAX_STRING_LENGTH: Final = 2 * 1024 * 1024
"""The longest string the string extensions (`replace`, `join`, `base64.encode`,
`strings.quote`) may make, in characters: more than any field of a Kubernetes object (etcd
stores at most 1.5 MB per object), far less than what would stall MIC. Each of them can make a
string longer than it is given, and a chain multiplies that: 8 links of
`.replace("s", "ssssssss")` on a 24-character name ask for 400 MB, 10 links for 17 GB, all while
holding the interpreter lock. Nothing in the expression's text tells how long the strings will
be (they come from the objects), so the bound is checked for each event, before the string is
made: a longer one fails that event (counted and shown as a CEL error), not MIC."""


def _check_length(function: str, length: int) -> None:
    if length > MAX_STRING_LENGTH:
        raise ValueError(
            f"{function}() would make a string of {length:,} characters; at most"
            f" {MAX_STRING_LENGTH:,} are allowed"
        )


def _bounded_replace(s: str, old: str, new: str, limit: int = -1) -> str:
    """`replace`, sized before it runs (see `MAX_STRING_LENGTH`)."""
    count = s.count(old) if limit < 0 else min(s.count(old), limit)
    _check_length("replace", len(s) + count * (len(new) - len(old)))
    return s.replace(old, new) if limit < 0 else s.replace(old, new, limit)


def _bounded_join(items: list[Any], sep: str = "") -> str:
    """`join`, sized before it runs (see `MAX_STRING_LENGTH`)."""
    length = sum(len(item) for item in items if isinstance(item, str))
    _check_length("join", length + len(sep) * max(0, len(items) - 1))
    return sep.join(items)


def _bounded_after(name: str, function: Callable[..., str]) -> Callable[..., str]:
    """`function`, whose result is at most a few times its input's length, checked after it
    runs (see `MAX_STRING_LENGTH`): base64 (4/3) and quoting (6 for escapes)."""

    def bounded(*args: Any) -> str:
        result = function(*args)
        _check_length(name, len(result))
        return result

    return bounded


_BOUNDED: Final[Mapping[str, Callable[..., Any]]] = {
    "lists.range": _bounded_range,
    "replace": _bounded_replace,
    "join": _bounded_join,
    "base64.encode": _bounded_after("base64.encode", EXTENSIONS["encoders"]["base64.encode"]),
    "strings.quote": _bounded_after("strings.quote", EXTENSIONS["strings"]["strings.quote"]),
}


# The extension libraries Kubernetes users know from validation rules (strings: lowerAscii,
# split, substring...; lists; math; sets; base64), registered only for an expression that
# calls one (evaluating through a context costs ~15 µs more per event). `contains` is left to
# CEL's own string function, which the lists library's would shadow; what can grow without
# bound is bounded (`MAX_RANGE_ITEMS`, `MAX_STRING_LENGTH`).
_EXTENSION_FUNCTIONS: Final[Mapping[str, Callable[..., Any]]] = {
    name: _BOUNDED.get(name, function)
    for library in EXTENSIONS.values()
    for name, function in library.items()
    if name != "contains"
}

# Identifiers the binding reports as variables although they are CEL's own: type denotations
# (`type(x) == map`).
_BUILTIN_IDENTIFIERS: Final = frozenset(
    {"bool", "bytes", "double", "duration", "int", "list", "map", "null_type", "string", "timestamp"}
    | {"type", "uint", "dyn"}
)

# The variable a comprehension macro binds: the `x` of `.exists(x, ...)`, `.map(x, ...)`. Used
# only to decide whether an unknown name may be such a binding, so a loose match errs on
# accepting. The binding implements the one-variable macros only: in a two-variable form
# (`.all(k, v, ...)`, cel-go's `transformList`/`transformMap`) the names are free variables
# that fail on every event, so those are refused when the expression is written.
_MACRO_BINDING_RE: Final = re.compile(
    r"\.\s*(?:all|exists|exists_one|existsOne|map|filter)\s*\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*,"
)
_TWO_VARIABLE_MACRO_RE: Final = re.compile(
    r"\.\s*(all|exists|exists_one|existsOne|map|filter|transformList|transformMap|transformMapEntry)"
    r"\s*\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*,\s*([A-Za-z_][A-Za-z0-9_]*)\s*,"
)
_POSITION_RE: Final = re.compile(r"<input>:(\d+):(\d+): (.*)")

_COMPREHENSIONS: Final = frozenset({"all", "exists", "exists_one", "existsOne", "map", "filter"})

# CEL's tokens, enough to tell code from string literals and comments (`'.all(x, '` is text,
# not a comprehension) and to match brackets. Only expressions the binding compiled are
# scanned, so the pattern need not reject anything. Raw strings (r'...') have no escapes.
_TOKEN_RE: Final = re.compile(
    r"""
    (?P<skip>\s+|//[^\n]*)
    |(?P<string>
        (?:[rR][bB]?|[bB][rR])(?:'''.*?'''|\"\"\".*?\"\"\"|'[^'\n]*'|"[^"\n]*")
        |[bB]?(?:'''(?:\\.|[^\\])*?'''|\"\"\"(?:\\.|[^\\])*?\"\"\"|'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*")
    )
    |(?P<number>0[xX][0-9a-fA-F]+[uU]?|(?:\d+\.\d+|\.\d+|\d+)(?:[eE][+-]?\d+)?[uU]?)
    |(?P<name>[A-Za-z_][A-Za-z0-9_]*)
    |(?P<punct>.)
    """,
    re.VERBOSE | re.DOTALL,
)
_INTEGER_RE: Final = re.compile(r"0[xX][0-9a-fA-F]+|\d+")
_OPENING: Final = frozenset("([{")
_CLOSING: Final = frozenset(")]}")


class _Token(NamedTuple):
    kind: str  # "string", "number", "name" or "punct"
    text: str
    start: int  # offset in the expression


def _tokens(expression: str) -> list[_Token]:
    return [
        _Token(match.lastgroup or "punct", match.group(), match.start())
        for match in _TOKEN_RE.finditer(expression)
        if match.lastgroup != "skip"
    ]


def _code(expression: str, tokens: list[_Token]) -> str:
    """The expression with its string literals and comments blanked out, lines kept, so a regex
    over it never matches inside text (`name == '.all(x, y, '`)."""
    code = ["\n" if char == "\n" else " " for char in expression]
    for token in tokens:
        if token.kind != "string":
            code[token.start : token.start + len(token.text)] = token.text
    return "".join(code)


# What `_check_result_type` evaluates an expression on: the variables the matcher passes at run
# time (`SubscriptionMatcher._evaluate` builds `event` with these keys from an `Event`, `object`
# without managedFields, `oldObject` null when unknown), holding an object with what every object
# has (metadata) and, empty, what most kinds have (spec, status; data for ConfigMaps and Secrets).
# A test keeps the keys of `event` in step with the matcher's.
_SAMPLE_OBJECT: Final[Mapping[str, Any]] = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {
        "name": "sample",
        "namespace": "default",
        "uid": "00000000-0000-0000-0000-000000000000",
        "resourceVersion": "2",
        "generation": 1,
        "creationTimestamp": "2024-01-01T00:00:00Z",
        "labels": {"app": "sample"},
        "annotations": {},
    },
    "spec": {},
    "status": {},
    "data": {},
}
_SAMPLE_EVENT: Final[Mapping[str, Any]] = {
    "type": "ADDED",
    "cluster": "sample",
    "group": "",
    "version": "v1",
    "kind": "ConfigMap",
    "resource": "configmaps",
    "namespace": "default",
    "name": "sample",
    "uid": "00000000-0000-0000-0000-000000000000",
    "resourceVersion": "2",
}
_SAMPLE_ACTIVATIONS: Final[tuple[Mapping[str, Any], ...]] = (
    {"event": _SAMPLE_EVENT, "object": _SAMPLE_OBJECT, "oldObject": None},
    {
        "event": {**_SAMPLE_EVENT, "type": "MODIFIED"},
        "object": _SAMPLE_OBJECT,
        "oldObject": {**_SAMPLE_OBJECT, "metadata": {**_SAMPLE_OBJECT["metadata"], "resourceVersion": "1"}},
    },
)

# The CEL types of the Python values the binding returns, as a message names them.
_CEL_TYPES: Final[Mapping[type, str]] = {
    str: "a string",
    int: "an int",
    float: "a double",
    bytes: "bytes",
    list: "a list",
    dict: "a map",
    type(None): "null",
    datetime: "a timestamp",
    timedelta: "a duration",
}


class InvalidExpressionError(ValueError):
    """An expression that does not compile, or uses a variable MIC does not provide.

    `line` and `column` (1-based) locate the first problem when the compiler reported one.
    """

    def __init__(self, expression: str, problem: str, line: int | None = None, column: int | None = None):
        where = f" at line {line}, column {column}" if line is not None else ""
        super().__init__(f"invalid CEL expression {expression!r}{where}: {problem}")
        self.expression = expression
        self.problem = problem
        self.line = line
        self.column = column


class ExpressionEvaluationError(RuntimeError):
    """An expression failed on one event (missing field, type mismatch) or returned a non-bool."""


class CompiledExpression:
    """A compiled boolean CEL expression; call it with the variables to evaluate it.

    Calling raises `ExpressionEvaluationError` for any failure, so a caller needs exactly one
    `except` and never sees the binding's assorted exception types (KeyError for a missing map
    key, TypeError, ZeroDivisionError, RuntimeError for an unknown function...).
    """

    __slots__ = ("_context", "_execute", "source", "variables")

    def __init__(
        self,
        source: str,
        program: cel.Program,
        variables: frozenset[str],
        functions: Mapping[str, Callable[..., Any]] | None = None,
    ) -> None:
        self.source = source
        self.variables = variables
        """Which of `event`, `object`, `oldObject` the expression references."""
        self._execute = program.execute
        self._context: cel.Context | None = None
        if functions:
            self._context = cel.Context()
            for name, function in functions.items():
                self._context.add_function(name, function)

    def __call__(self, activation: dict[str, Any]) -> bool:
        result = self.result(activation)
        if result is True or result is False:
            return result
        raise ExpressionEvaluationError(
            f"the expression returned {type(result).__name__} {result!r}, not a bool"
        )

    def result(self, activation: dict[str, Any]) -> object:
        """The expression's value, whatever its type: what `__call__` checks is a bool, and what
        the write-time check (`_check_result_type`) needs to name when it is not."""
        try:
            if self._context is None:
                return self._execute(activation)
            # one context, reused: evaluation runs on one thread (the event loop)
            self._context.update(activation)
            return self._execute(self._context)
        except Exception as error:  # the binding raises many unrelated types; all mean "failed"
            raise ExpressionEvaluationError(f"{type(error).__name__}: {error}") from error

    def __repr__(self) -> str:
        return f"CompiledExpression({self.source!r})"


def compile_cel(expression: str) -> CompiledExpression:
    """Compile a filter expression over `event`, `object` and `oldObject`.

    Raises `InvalidExpressionError` with the position of a syntax error, or naming a variable
    that is not provided (`object.metadata.name == "x"` is fine, `obj.metadata.name` is not).
    """
    if not expression.strip():
        raise InvalidExpressionError(expression, "the expression is empty; omit it to match every event")
    if len(expression) > MAX_EXPRESSION_LENGTH:
        raise InvalidExpressionError(
            expression[:40] + "…", f"the expression is longer than {MAX_EXPRESSION_LENGTH} characters"
        )
    try:
        program = cel.compile(expression)
    except Exception as error:  # ValueError today; anything else is still "does not compile"
        raise _compile_error(expression, str(error)) from error
    tokens = _tokens(expression)
    code = _code(expression, tokens)
    referenced = set(program.variables())
    called = set(program.functions())
    # `math.greatest(...)` reads as a call of `greatest` on a variable `math`.
    qualified = {f"{ns}.{name}" for ns in referenced for name in called} & _EXTENSION_FUNCTIONS.keys()
    namespaces = {name.partition(".")[0] for name in qualified}
    unknown = referenced - CEL_VARIABLES - _BUILTIN_IDENTIFIERS - namespaces - _macro_bindings(code)
    for match in _TWO_VARIABLE_MACRO_RE.finditer(code):
        macro, first, second = match.groups()
        if {first, second} & unknown or macro.startswith("transform"):
            raise InvalidExpressionError(
                expression,
                f"'{macro}({first}, {second}, ...)': two-variable comprehensions and "
                "transformList/transformMap are not supported; use the one-variable form, e.g. "
                "object.metadata.labels.exists(k, object.metadata.labels[k] == 'web')",
            )
    if unknown:
        names = ", ".join(repr(name) for name in sorted(unknown))
        raise InvalidExpressionError(
            expression,
            f"unknown variable {names}; the expression can use event, object and oldObject "
            "(e.g. object.metadata.name, event.type == 'MODIFIED')",
        )
    _check_cost(expression, tokens)
    functions = {
        name: _EXTENSION_FUNCTIONS[name] for name in (called | qualified) & _EXTENSION_FUNCTIONS.keys()
    }
    compiled = CompiledExpression(expression, program, frozenset(referenced & CEL_VARIABLES), functions)
    _check_result_type(compiled)
    return compiled


def _check_result_type(compiled: CompiledExpression) -> None:
    """Refuse an expression that evaluates to something other than true or false (`1 + 1`,
    `object.metadata.name`): every event would be a CEL error, so it would deliver nothing.

    The binding has no type checker, so the expression is evaluated on `_SAMPLE_ACTIVATIONS`
    (small objects, the bounded functions of run time: as dear as an event or two). A sample
    can show a non-bool but not prove a bool, so the check errs on accepting: an expression that
    fails on every sample (a field they lack, as most filters read) passes, and so does one that
    is a bool on some sample (its type then depends on the event).
    """
    results: list[object] = []
    for activation in _sample_activations(compiled.variables):
        try:
            results.append(compiled.result(activation))
        except ExpressionEvaluationError:
            continue  # says nothing: real objects may have what the sample lacks
    if not results or any(result is True or result is False for result in results):
        return
    raise InvalidExpressionError(
        compiled.source,
        f"a filter must return true or false, but this one returns {_cel_type(results[0])}; compare"
        " the value with something (== 'value', > 0, in [...]) or test it (has(...), size(...) > 0)",
    )


def _sample_activations(variables: frozenset[str]) -> list[dict[str, Any]]:
    """The samples to evaluate an expression on, with only the variables it references (as the
    matcher passes them); the MODIFIED sample only differs in `event` and `oldObject`."""
    samples = _SAMPLE_ACTIVATIONS if variables & {"event", "oldObject"} else _SAMPLE_ACTIVATIONS[:1]
    return [{name: value for name, value in sample.items() if name in variables} for sample in samples]


def _cel_type(value: object) -> str:
    """`value`'s CEL type, as a message names it ("a string", "null")."""
    return _CEL_TYPES.get(type(value), f"a {type(value).__name__}")


def _macro_bindings(code: str) -> set[str]:
    return {match.group(1) for match in _MACRO_BINDING_RE.finditer(code)}


def _check_cost(expression: str, tokens: list[_Token]) -> None:
    """Refuse what multiplies the work per event: see `MAX_COMPREHENSION_NESTING`.

    A comprehension is `.name(` with `name` one of `_COMPREHENSIONS`. It nests in another when
    it lies inside the other's parentheses (in its body), not when it is the other's receiver
    (`l.filter(...).all(...)`) or beside it (`a.all(...) && b.all(...)`).
    """
    opened: list[int] = []  # indices of the brackets still open
    partner: dict[int, int] = {}  # index of a closing bracket: index of its opening one
    enclosing: list[int] = []  # indices of the "(" of the comprehensions still open
    maps: list[int] = []  # indices of the "(" of every `map` so far
    for i, token in enumerate(tokens):
        if token.kind == "name" and token.text == "range":
            _check_range(expression, tokens, i)
        if token.kind != "punct":
            continue
        if token.text in _CLOSING and opened:
            partner[i] = opened.pop()
            if enclosing and enclosing[-1] == partner[i]:
                enclosing.pop()
            continue
        if token.text not in _OPENING:
            continue
        opened.append(i)
        if token.text != "(" or i < 2 or tokens[i - 2].text != ".":
            continue
        name = tokens[i - 1]
        if name.kind != "name" or name.text not in _COMPREHENSIONS:
            continue
        if len(enclosing) >= MAX_COMPREHENSION_NESTING:
            nested = " → ".join([tokens[j - 1].text for j in enclosing] + [name.text])
            raise InvalidExpressionError(
                expression,
                f"comprehensions nested {len(enclosing) + 1} deep ({nested}): at "
                f"most {MAX_COMPREHENSION_NESTING} levels are allowed, because each level "
                "multiplies the work per event by the size of its list. Test the inner "
                "condition in a comprehension of its own, joined with && or || "
                "(l.all(a, p(a)) && l.all(b, q(b))), rather than inside the outer one",
                *_line_and_column(expression, name.start),
            )
        if name.text == "map":
            receiver = _receiver_start(tokens, partner, i - 2)
            if any(receiver <= j < i for j in maps):
                raise InvalidExpressionError(
                    expression,
                    "map(...) over what another map(...) returned: each map can repeat what it "
                    "is given (l.map(x, x + x)), so a chain of them multiplies the data. Map "
                    "once (l.map(x, f(g(x)))), or test the first map's result with all, exists "
                    "or filter",
                    *_line_and_column(expression, name.start),
                )
            maps.append(i)
        enclosing.append(i)


def _check_range(expression: str, tokens: list[_Token], i: int) -> None:
    """Refuse `lists.range(n)` with a literal `n` above `MAX_RANGE_ITEMS` (see there)."""
    call = [token.text for token in tokens[i - 2 : i + 4]] if i >= 2 else []
    if call[:2] != ["lists", "."] or call[3:4] != ["("] or call[5:6] != [")"]:
        return
    literal = tokens[i + 2]
    if literal.kind != "number" or not _INTEGER_RE.fullmatch(literal.text):
        return  # computed: the function itself refuses too large an n, for that event
    hexadecimal = literal.text[1:2] in ("x", "X")
    if int(literal.text, 16 if hexadecimal else 10) > MAX_RANGE_ITEMS:
        raise InvalidExpressionError(
            expression,
            f"lists.range({literal.text}) makes more than {MAX_RANGE_ITEMS} items, the most "
            "allowed; use a smaller range",
            *_line_and_column(expression, literal.start),
        )


def _receiver_start(tokens: list[_Token], partner: dict[int, int], dot: int) -> int:
    """Where the receiver of the call whose `.` is at `dot` begins: the member chain before it
    (`a.b(c)[0]` in `x + a.b(c)[0].map(...)`), which binds tighter than any operator."""
    j = dot - 1
    while j >= 0:
        token = tokens[j]
        if token.kind == "punct" and token.text in _CLOSING:
            j = partner.get(j, 0) - 1  # always there: the binding compiled the expression
        elif (token.kind != "punct" and token.text != "in") or token.text == ".":
            j -= 1
        else:
            break
    return j + 1


def _line_and_column(expression: str, offset: int) -> tuple[int, int]:
    """1-based, as the compiler reports positions."""
    line_start = expression.rfind("\n", 0, offset) + 1
    return expression.count("\n", 0, offset) + 1, offset - line_start + 1


def _compile_error(expression: str, message: str) -> InvalidExpressionError:
    """The binding's message, reduced to its first problem and that problem's position."""
    match = _POSITION_RE.search(message)
    if match is None:
        return InvalidExpressionError(expression, message)
    detail = match.group(3).strip()
    if detail.startswith("Syntax error: "):
        detail = "syntax error: " + detail.removeprefix("Syntax error: ")
    return InvalidExpressionError(expression, detail, int(match.group(1)), int(match.group(2)))
