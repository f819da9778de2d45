"""lakeops' extension layer for the moto server (tested with moto 5.2.5).

moto is a faithful enough AWS for lakeops except in a few places that matter to a user trying
the project locally; each module here fills one of them, as AWS documents the behaviour (the
page is cited next to the code), and nothing that lakeops itself should do:

- ``dynamodb_replicas``: UpdateTable ``ReplicaUpdates`` (global tables 2019.11.21) creates and
  deletes replica tables and reports them in ``Replicas`` (CREATING, then ACTIVE).
- ``lambda_dead_letter``: a function keeps and returns its ``DeadLetterConfig``.
- ``s3_replication``: replication keeps and returns ``SourceSelectionCriteria`` (and the rest
  of each rule), and new object versions and delete markers are copied to the destination.
- ``s3_event_bridge``: GetBucketNotificationConfiguration reports ``EventBridgeConfiguration``
  when the bucket's events go to EventBridge.
- ``backup_selections``: AWS Backup selections (create, list, get, delete; a plan with
  selections cannot be deleted) and UpdateBackupPlan (the document replaced, a new version).
- ``s3_policy_conditions``: bucket-policy conditions are evaluated against the request
  (``aws:SecureTransport``, ``s3:TlsVersion``, the SSE headers) instead of every conditional
  statement refusing the request.

Each extension first checks whether the running moto already does what it adds; if so it
steps aside. ``GET /moto-api/lakeops/extensions`` reports which are active and why.
"""

from . import (
    backup_selections,
    dynamodb_replicas,
    lambda_dead_letter,
    s3_event_bridge,
    s3_policy_conditions,
    s3_replication,
)
from ._extension import Extension, apply

EXTENSIONS: list[Extension] = [
    dynamodb_replicas.EXTENSION,
    lambda_dead_letter.EXTENSION,
    s3_replication.EXTENSION,
    s3_policy_conditions.EXTENSION,
    s3_event_bridge.EXTENSION,
    backup_selections.EXTENSION,
]


def apply_all() -> list[Extension]:
    """Applies every extension whose behaviour the running moto lacks; returns them all."""
    for extension in EXTENSIONS:
        apply(extension)
    return EXTENSIONS
