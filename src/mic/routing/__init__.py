"""Subscriptions' filters and matching: which events go to which subscription.

`spec` holds the values a subscription is made of (validated on construction, JSON for the
store and the API); `matcher` compiles a spec's filter into a `SubscriptionMatcher` that the
delivery engine asks about every event. Depends only on `mic.events` and `mic.kube.selectors`.
"""

from mic.routing.changes import InvalidFieldPathError, changed_fields, is_noop, parse_field_path
from mic.routing.expression import (
    CompiledExpression,
    ExpressionEvaluationError,
    InvalidExpressionError,
    compile_cel,
)
from mic.routing.matcher import SubscriptionMatcher
from mic.routing.spec import (
    Batching,
    DeliveryPolicy,
    Format,
    InvalidSubscriptionError,
    Overflow,
    SubscriptionFilter,
    SubscriptionSpec,
    WebhookSink,
)

__all__ = [
    "Batching",
    "CompiledExpression",
    "DeliveryPolicy",
    "ExpressionEvaluationError",
    "Format",
    "InvalidExpressionError",
    "InvalidFieldPathError",
    "InvalidSubscriptionError",
    "Overflow",
    "SubscriptionFilter",
    "SubscriptionMatcher",
    "SubscriptionSpec",
    "WebhookSink",
    "changed_fields",
    "compile_cel",
    "is_noop",
    "parse_field_path",
]
