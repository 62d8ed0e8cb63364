"""The moto deployment of ``template.yaml`` for tests: a re-export of :mod:`local.cloud`.

The deploy logic lives in ``local/cloud.py`` because the local stack (``make run``) deploys the same
way into a moto server; the tests keep importing it from here::

    with mock_aws():
        stack = deploy_stack(stack_name="feedback-it", parameters={"TimeIndexShards": "3"})
"""

from __future__ import annotations

from local.cloud import (
    EMULATED_TYPES,
    EVENT_SOURCE_MAPPING,
    NOT_REPRODUCED,
    ROOT,
    TEMPLATE_PATH,
    Clients,
    CreatedHook,
    DeployError,
    Emulation,
    Physical,
    SessionOrClients,
    Stack,
    Template,
    TemplateError,
    code_locations,
    deploy_stack,
    load_template,
    transform_template,
    zip_directory,
)

__all__ = [
    "EMULATED_TYPES",
    "EVENT_SOURCE_MAPPING",
    "NOT_REPRODUCED",
    "ROOT",
    "TEMPLATE_PATH",
    "Clients",
    "CreatedHook",
    "DeployError",
    "Emulation",
    "Physical",
    "SessionOrClients",
    "Stack",
    "Template",
    "TemplateError",
    "code_locations",
    "deploy_stack",
    "load_template",
    "transform_template",
    "zip_directory",
]
