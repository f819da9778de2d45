"""Lambda keeps and returns a function's DeadLetterConfig.

AWS: CreateFunction and UpdateFunctionConfiguration accept ``DeadLetterConfig.TargetArn`` (an
SQS queue or SNS topic), and GetFunction / GetFunctionConfiguration return it; an empty
``TargetArn`` removes it.
https://docs.aws.amazon.com/lambda/latest/api/API_DeadLetterConfig.html
https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html#invocation-dlq
moto 5.2.5 drops it on create and on update.
"""

from __future__ import annotations

import inspect
from typing import Any

from moto.awslambda.models import LambdaFunction

from ._extension import Extension

DOC = "https://docs.aws.amazon.com/lambda/latest/api/API_DeadLetterConfig.html"


def _already_in_moto() -> bool:
    return "DeadLetterConfig" in inspect.getsource(LambdaFunction)


def _target(config: Any) -> dict[str, str] | None:
    """The stored form: the config when it names a target, None when it removes it."""
    if isinstance(config, dict) and config.get("TargetArn"):
        return {"TargetArn": config["TargetArn"]}
    return None


def _install() -> None:
    original_init = LambdaFunction.__init__
    original_get_configuration = LambdaFunction.get_configuration
    original_update_configuration = LambdaFunction.update_configuration

    def __init__(self: LambdaFunction, account_id: str, spec: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        original_init(self, account_id, spec, *args, **kwargs)
        self.lakeops_dead_letter_config = _target(spec.get("DeadLetterConfig"))

    def get_configuration(self: LambdaFunction, *args: Any, **kwargs: Any) -> dict[str, Any]:
        config = original_get_configuration(self, *args, **kwargs)
        dead_letter = getattr(self, "lakeops_dead_letter_config", None)
        if dead_letter:
            config["DeadLetterConfig"] = dict(dead_letter)
        return config

    def update_configuration(self: LambdaFunction, config_updates: dict[str, Any]) -> dict[str, Any]:
        # Only when the request names it: an update without the field leaves it as it is.
        if "DeadLetterConfig" in config_updates:
            self.lakeops_dead_letter_config = _target(config_updates["DeadLetterConfig"])
        return original_update_configuration(self, config_updates)

    LambdaFunction.__init__ = __init__  # type: ignore[method-assign]
    LambdaFunction.get_configuration = get_configuration  # type: ignore[method-assign]
    LambdaFunction.update_configuration = update_configuration  # type: ignore[method-assign]


EXTENSION = Extension("lambda-dead-letter-config", DOC, _already_in_moto, _install)
