"""AWS Backup: backup selections and UpdateBackupPlan.

AWS: CreateBackupSelection adds a selection (name, IAM role, resources by ARN, optional
creator request id) to a plan and answers its SelectionId, the plan id and the creation
date; ListBackupSelections lists them (SelectionId, SelectionName, BackupPlanId,
CreationDate, CreatorRequestId, IamRoleArn); GetBackupSelection answers one with its
``BackupSelection``; DeleteBackupSelection removes one. A selection cannot be changed.
A plan that still has selections cannot be deleted. UpdateBackupPlan replaces the plan's
document in place: same id and ARN, a new VersionId.
https://docs.aws.amazon.com/aws-backup/latest/devguide/API_CreateBackupSelection.html
https://docs.aws.amazon.com/aws-backup/latest/devguide/API_ListBackupSelections.html
https://docs.aws.amazon.com/aws-backup/latest/devguide/API_GetBackupSelection.html
https://docs.aws.amazon.com/aws-backup/latest/devguide/API_DeleteBackupSelection.html
https://docs.aws.amazon.com/aws-backup/latest/devguide/API_UpdateBackupPlan.html
https://docs.aws.amazon.com/aws-backup/latest/devguide/API_DeleteBackupPlan.html
moto 5.2.5 has plans but none of these operations (500, not implemented). Its ListTags also
reads the ARN from the path before a trailing slash, which the current AWS model (``GET
/tags/{ResourceArn}``, what the AWS SDK for Rust sends) does not have, so it answers the
tags of a resource named ``tags``: the ARN is read after ``/tags/`` instead.
https://docs.aws.amazon.com/aws-backup/latest/devguide/API_ListTags.html

Not modelled: backup jobs never run (no recovery point is ever made), the role is not
assumed or checked, tag conditions and ``NotResources`` are stored but never evaluated.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

from moto.backup.exceptions import AlreadyExistsException, InvalidRequestException, ResourceNotFoundException
from moto.backup.models import BackupBackend, Plan
from moto.backup.responses import BackupResponse
from moto.core.utils import unix_time
from moto.moto_api._internal import mock_random

from ._extension import Extension

DOC = "https://docs.aws.amazon.com/aws-backup/latest/devguide/API_CreateBackupSelection.html"


def _already_in_moto() -> bool:
    return hasattr(BackupResponse, "create_backup_selection") and hasattr(BackupResponse, "update_backup_plan")


def _selections(plan: Plan) -> dict[str, dict[str, Any]]:
    if not hasattr(plan, "lakeops_selections"):
        plan.lakeops_selections = {}
    return plan.lakeops_selections


def _plan(backend: BackupBackend, plan_id: str) -> Plan:
    plan = backend.plans.get(plan_id)
    if plan is None or plan.deletion_date is not None:
        raise ResourceNotFoundException(msg=f"Failed reading Backup plan {plan_id}")
    return plan


def _path_ids(path: str) -> tuple[str, str | None]:
    """(plan id, selection id or None) of `/backup/plans/{id}/selections/[{selectionId}]`."""
    rest = path.split("/plans/", 1)[1].strip("/").split("/")
    return rest[0], (rest[2] if len(rest) > 2 and rest[2] else None)


def create_backup_selection(self: BackupResponse) -> str:
    plan_id, _ = _path_ids(self.path)
    params = json.loads(self.body)
    selection = params.get("BackupSelection") or {}
    request_id = params.get("CreatorRequestId")
    plan = _plan(self.backup_backend, plan_id)
    if request_id and any(s["CreatorRequestId"] == request_id for s in _selections(plan).values()):
        raise AlreadyExistsException(msg="A backup selection with this creator request id already exists")
    selection_id = str(mock_random.uuid4())
    created = unix_time()
    _selections(plan)[selection_id] = {
        "SelectionId": selection_id,
        "SelectionName": selection.get("SelectionName"),
        "BackupPlanId": plan_id,
        "CreationDate": created,
        "CreatorRequestId": request_id,
        "IamRoleArn": selection.get("IamRoleArn"),
        "BackupSelection": selection,
    }
    return json.dumps({"SelectionId": selection_id, "BackupPlanId": plan_id, "CreationDate": created})


def list_backup_selections(self: BackupResponse) -> str:
    plan_id, _ = _path_ids(self.path)
    plan = _plan(self.backup_backend, plan_id)
    listed = [{k: v for k, v in s.items() if k != "BackupSelection" and v is not None} for s in _selections(plan).values()]
    return json.dumps({"BackupSelectionsList": listed})


def get_backup_selection(self: BackupResponse) -> str:
    plan_id, selection_id = _path_ids(self.path)
    s = _selections(_plan(self.backup_backend, plan_id)).get(selection_id or "")
    if s is None:
        raise ResourceNotFoundException(msg=f"Backup selection {selection_id} not found")
    keys = ("BackupSelection", "SelectionId", "BackupPlanId", "CreationDate", "CreatorRequestId")
    return json.dumps({k: s[k] for k in keys if s.get(k) is not None})


def delete_backup_selection(self: BackupResponse) -> str:
    plan_id, selection_id = _path_ids(self.path)
    if _selections(_plan(self.backup_backend, plan_id)).pop(selection_id or "", None) is None:
        raise ResourceNotFoundException(msg=f"Backup selection {selection_id} not found")
    return "{}"


def update_backup_plan(self: BackupResponse) -> str:
    plan_id = self.path.split("/plans/", 1)[1].strip("/")
    plan = _plan(self.backup_backend, plan_id)
    document = json.loads(self.body).get("BackupPlan") or {}
    # The defaults and rule ids moto gives a new plan's rules, as AWS does on update too.
    filled = Plan(backup_plan=document, creator_request_id=plan.creator_request_id, backend=self.backup_backend)
    plan.backup_plan = filled.backup_plan
    plan.advanced_backup_settings = filled.advanced_backup_settings
    plan.version_id = mock_random.get_random_string(length=48)
    return json.dumps(
        {
            "BackupPlanId": plan.backup_plan_id,
            "BackupPlanArn": plan.backup_plan_arn,
            "CreationDate": plan.creation_date,
            "VersionId": plan.version_id,
        }
    )


def list_tags(self: BackupResponse) -> str:
    resource_arn = unquote(self.path.split("/tags/", 1)[1].strip("/"))
    return json.dumps({"Tags": self.backup_backend.list_tags(resource_arn=resource_arn)})


def _install() -> None:
    original_delete = BackupBackend.delete_backup_plan

    def delete_backup_plan(self: BackupBackend, backup_plan_id: str) -> Any:
        plan = self.plans.get(backup_plan_id)
        if plan is not None and _selections(plan):
            raise InvalidRequestException(
                msg="Related backup plan selections must be deleted prior to backup plan deletion"
            )
        return original_delete(self, backup_plan_id)

    BackupBackend.delete_backup_plan = delete_backup_plan  # type: ignore[method-assign]
    BackupResponse.create_backup_selection = create_backup_selection  # type: ignore[attr-defined]
    BackupResponse.list_backup_selections = list_backup_selections  # type: ignore[attr-defined]
    BackupResponse.get_backup_selection = get_backup_selection  # type: ignore[attr-defined]
    BackupResponse.delete_backup_selection = delete_backup_selection  # type: ignore[attr-defined]
    BackupResponse.update_backup_plan = update_backup_plan  # type: ignore[attr-defined]
    BackupResponse.list_tags = list_tags  # type: ignore[method-assign]


EXTENSION = Extension("backup-selections-and-plan-updates", DOC, _already_in_moto, _install)
