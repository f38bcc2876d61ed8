"""CEL expressions of subscription filters: compiled once, checked for typos, evaluated per event.

CEL (https://cel.dev) is what Kubernetes itself uses for validation rules and admission
policies, so users know it, and it is side-effect free and terminating: a recipient's filter
can never hang or hurt MIC. We use the maintained `common-expression-language` binding.

Two properties of that binding shape this module:

* It only checks syntax when compiling; an unknown variable shows up at run time, on every
  event, forever. `compile_cel` therefore rejects names that are neither one of the variables
  MIC provides nor bound by a comprehension macro, so a typo (`obj.metadata`) is a 4xx when
  the subscription is written rather than a silent "never matches".
* It knows CEL's standard functions only; the extension libraries Kubernetes validation
  rules offer (strings, lists, math, sets, base64) come as Python functions, registered on a
  reused context for the expressions that call them. Two-variable comprehensions are not
  implemented by the binding, so they are refused when written, like unknown variables.
* Converting Python values into CEL values costs a few microseconds per map entry or list
  item, far more than evaluating the expression. `CompiledExpression.variables` says which of
  `event`, `object` and `oldObject` an expression references, so callers convert only those.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Final

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

# The extension libraries Kubernetes users know from validation rules (strings: lowerAscii,
# split, substring...; lists; math; sets; base64), registered only for an expression that
# calls one (evaluating through a context costs ~15 µs more per event). `contains` is left to
# CEL's own string function, which the lists library's would shadow.
_EXTENSION_FUNCTIONS: Final[Mapping[str, Callable[..., Any]]] = {
    name: function
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
        try:
            if self._context is None:
                result = self._execute(activation)
            else:  # one context, reused: evaluation runs on one thread (the event loop)
                self._context.update(activation)
                result = self._execute(self._context)
        except Exception as error:  # the binding raises many unrelated types; all mean "failed"
            raise ExpressionEvaluationError(f"{type(error).__name__}: {error}") from error
        if result is True or result is False:
            return result
        raise ExpressionEvaluationError(
            f"the expression returned {type(result).__name__} {result!r}, not a bool"
        )

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
    referenced = set(program.variables())
    called = set(program.functions())
    # `math.greatest(...)` reads as a call of `greatest` on a variable `math`.
    qualified = {f"{ns}.{name}" for ns in referenced for name in called} & _EXTENSION_FUNCTIONS.keys()
    namespaces = {name.partition(".")[0] for name in qualified}
    unknown = referenced - CEL_VARIABLES - _BUILTIN_IDENTIFIERS - namespaces - _macro_bindings(expression)
    for match in _TWO_VARIABLE_MACRO_RE.finditer(expression):
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
    functions = {
        name: _EXTENSION_FUNCTIONS[name] for name in (called | qualified) & _EXTENSION_FUNCTIONS.keys()
    }
    return CompiledExpression(expression, program, frozenset(referenced & CEL_VARIABLES), functions)


def _macro_bindings(expression: str) -> set[str]:
    return {match.group(1) for match in _MACRO_BINDING_RE.finditer(expression)}


def _compile_error(expression: str, message: str) -> InvalidExpressionError:
    """The binding's message, reduced to its first problem and that problem's position."""
    match = _POSITION_RE.search(message)
    if match is None:
        return InvalidExpressionError(expression, message)
    detail = match.group(3).strip()
    if detail.startswith("Syntax error: "):
        detail = "syntax error: " + detail.removeprefix("Syntax error: ")
    return InvalidExpressionError(expression, detail, int(match.group(1)), int(match.group(2)))
