"""DynamoDB global tables (version 2019.11.21): UpdateTable ``ReplicaUpdates``.

AWS: ``Create`` adds a replica table with the same name, key schema, attributes, indexes,
billing mode and streams in another region, encrypted with the ``KMSMasterKeyId`` given for
that region; ``Delete`` removes it. Both are asynchronous: the table reports UPDATING and the
replica CREATING (or DELETING) in DescribeTable's ``Replicas`` until the work is done, then
ACTIVE (or gone), and ``GlobalTableVersion`` is 2019.11.21. One replica change at a time.
https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_UpdateTable.html
https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_ReplicationGroupUpdate.html
https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_ReplicaDescription.html
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/V2globaltables.tutorial.html
moto 5.2.5 accepts ``ReplicaUpdates`` and ignores it.
"""

from __future__ import annotations

import inspect
import os
import threading
from typing import Any

from moto.dynamodb.exceptions import MockValidationException, ResourceNotFoundException
from moto.dynamodb.models import Table, dynamodb_backends
from moto.dynamodb.responses import DynamoHandler

from ._extension import Extension

DOC = "https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_UpdateTable.html"

GLOBAL_TABLE_VERSION = "2019.11.21"

# Building a replica takes AWS minutes; a short delay keeps CREATING visible without making
# anyone wait.
DELAY_SECONDS = float(os.environ.get("LAKEOPS_MOTO_TABLE_REPLICA_DELAY_SECONDS", "2"))


def _already_in_moto() -> bool:
    return "ReplicaUpdates" in inspect.getsource(DynamoHandler.update_table)


def _replicas(table: Table) -> dict[str, dict[str, Any]]:
    """Region -> ReplicaDescription of the other members of `table`'s replication group."""
    if not hasattr(table, "lakeops_replicas"):
        table.lakeops_replicas = {}
    return table.lakeops_replicas


def _create(account_id: str, table: Table, create: dict[str, Any]) -> None:
    region = create.get("RegionName")
    if not region:
        raise MockValidationException("ReplicaUpdates Create: RegionName is required")
    if region == table.region_name or region in _replicas(table):
        raise MockValidationException(
            f"Failed to create a the new replica of table with name: '{table.name}' because one or more replicas already existed as tables."
        )
    if _busy(table):
        raise MockValidationException(f"Table {table.name} is being updated: one replica change at a time")
    target = dynamodb_backends[account_id][region]
    if table.name in target.tables:
        raise MockValidationException(
            f"Failed to create a the new replica of table with name: '{table.name}' because one or more replicas already existed as tables."
        )
    kms_key = create.get("KMSMasterKeyId")
    sse = {"Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": kms_key} if kms_key else table.sse_specification
    replica = target.create_table(
        table.name,
        schema=table.schema,
        throughput=None if table.billing_mode == "PAY_PER_REQUEST" else {k: v for k, v in table.throughput.items() if k != "NumberOfDecreasesToday"},
        attr=table.attr,
        global_indexes=[index.describe() for index in table.global_indexes] or None,
        indexes=[index.describe() for index in table.indexes] or None,
        # Replicas of a global table stream new and old images, which replication reads.
        streams={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        billing_mode=table.billing_mode,
        sse_specification=dict(sse) if sse else None,
        tags=[],
        deletion_protection_enabled=False,
        warm_throughput=None,
    )
    description = {"RegionName": region, "ReplicaStatus": "CREATING"}
    if kms_key:
        description["KMSMasterKeyId"] = kms_key
    _replicas(table)[region] = description
    _replicas(replica)[table.region_name] = {"RegionName": table.region_name, "ReplicaStatus": "ACTIVE"}

    def done() -> None:
        description["ReplicaStatus"] = "ACTIVE"

    _later(done)


def _delete(account_id: str, table: Table, delete: dict[str, Any]) -> None:
    region = delete.get("RegionName")
    if region not in _replicas(table):
        raise ResourceNotFoundException(f"Replica of table {table.name} in region {region} does not exist")
    if _busy(table):
        raise MockValidationException(f"Table {table.name} is being updated: one replica change at a time")
    _replicas(table)[region]["ReplicaStatus"] = "DELETING"

    def done() -> None:
        dynamodb_backends[account_id][region].tables.pop(table.name, None)
        _replicas(table).pop(region, None)

    _later(done)


def _busy(table: Table) -> bool:
    return any(r["ReplicaStatus"] in ("CREATING", "DELETING") for r in _replicas(table).values())


def _later(action: Any) -> None:
    timer = threading.Timer(DELAY_SECONDS, action)
    timer.daemon = True
    timer.start()


def _install() -> None:
    original_update_table = DynamoHandler.update_table
    original_describe = Table.describe

    def update_table(self: DynamoHandler) -> Any:
        updates = self.body.pop("ReplicaUpdates", None) or []
        if updates:
            table = self.dynamodb_backend.get_table(self.body["TableName"])
            for update in updates:
                if "Create" in update:
                    _create(self.current_account, table, update["Create"])
                elif "Delete" in update:
                    _delete(self.current_account, table, update["Delete"])
                elif "Update" in update:
                    raise MockValidationException("ReplicaUpdates Update is not supported by this emulator")
        return original_update_table(self)

    def describe(self: Table, *args: Any, **kwargs: Any) -> dict[str, Any]:
        result = original_describe(self, *args, **kwargs)
        replicas = getattr(self, "lakeops_replicas", None)
        if replicas:
            body = next(iter(result.values()))
            body["Replicas"] = [dict(r) for r in replicas.values()]
            body["GlobalTableVersion"] = GLOBAL_TABLE_VERSION
            if _busy(self):
                body["TableStatus"] = "UPDATING"
        return result

    DynamoHandler.update_table = update_table  # type: ignore[method-assign]
    Table.describe = describe  # type: ignore[method-assign]


EXTENSION = Extension("dynamodb-replica-updates", DOC, _already_in_moto, _install)
