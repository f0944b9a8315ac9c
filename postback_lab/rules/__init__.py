"""Rules: ``postbacks.yaml`` parsing and validation, URL/header templates, bodies, and
other platforms' macro dialects."""

from ._delivery import Success
from ._dialects import DIALECTS, Translation, foreign_hint, translate
from ._model import Rule, RuleSet
from ._read import RulesSource, parse_rule, read_rules, read_statuses
from ._statuses import StatusRules
from ._template import (
    BODY_ENV,
    JSON_BODY_ENV,
    Macro,
    Spans,
    Template,
    body_environment,
    body_with_env_markers,
    env_names,
    env_spans,
    fill_env,
    is_json_body,
    parse_template,
    resolve_env,
)

__all__ = [
    "BODY_ENV",
    "DIALECTS",
    "JSON_BODY_ENV",
    "Macro",
    "Rule",
    "RuleSet",
    "RulesSource",
    "Spans",
    "StatusRules",
    "Success",
    "Template",
    "Translation",
    "body_environment",
    "body_with_env_markers",
    "env_names",
    "env_spans",
    "fill_env",
    "foreign_hint",
    "is_json_body",
    "parse_rule",
    "parse_template",
    "read_rules",
    "read_statuses",
    "resolve_env",
    "translate",
]
