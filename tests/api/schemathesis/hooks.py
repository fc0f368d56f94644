"""Schemathesis hooks (loaded through SCHEMATHESIS_HOOKS by fuzz.py).

Works around a CPython 3.11.0-3.11.4 bug (gh-106905, fixed in 3.11.5; Debian 12 ships 3.11.2):
ast.parse() called deep in a recursion can raise "SystemError: AST constructor recursion depth
mismatch". Hypothesis calls it to describe a lambda for a strategy's repr while validating
st.recursive strategies (free-form JSON values, such as "additionalProperties": {}), so the
coverage phase of an operation with such a body died with a Runtime Error that says nothing
about the API. A description is only cosmetic: on that error we return Hypothesis's own
"unknown" form instead."""
import sys

from hypothesis.internal import lambda_sources

if sys.version_info < (3, 11, 5):
    _describe = lambda_sources._lambda_description

    def _lambda_description(f):
        try:
            return _describe(f)
        except SystemError:
            return "lambda: <unknown>"

    lambda_sources._lambda_description = _lambda_description
