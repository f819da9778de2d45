"""S3 replication: the configuration is read back as written, and objects are copied.

AWS returns every rule of a replication configuration as it was put, including
``SourceSelectionCriteria``, ``Filter`` and ``DeleteMarkerReplication``
(https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetBucketReplication.html); moto 5.2.5
drops the first and answers a fixed empty filter and disabled delete-marker replication.

AWS then replicates asynchronously each new object version written to the source bucket that
an enabled rule selects (https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication.html):
- the rule with the highest priority whose filter (prefix, tags) matches decides
  (https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication-add-config.html);
- SSE-KMS objects only when ``SourceSelectionCriteria.SseKmsEncryptedObjects`` is Enabled, and
  the replica is encrypted with ``Destination.EncryptionConfiguration.ReplicaKmsKeyID``
  (https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication-config-for-kms-objects.html);
- the replica keeps key, version id, data, metadata and Object Lock retention, takes
  ``Destination.StorageClass`` when set, and reports ``x-amz-replication-status: REPLICA``
  while the source version goes from PENDING to COMPLETED; replicas are not replicated again
  (https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication-status.html);
- a delete marker (a delete without version id) is replicated only when the rule's
  ``DeleteMarkerReplication`` is Enabled and its filter has no tags; deletes of a version id
  never are (https://docs.aws.amazon.com/AmazonS3/latest/userguide/delete-marker-replication.html).
moto 5.2.5 stores the configuration and copies nothing.
"""

from __future__ import annotations

import inspect
import logging
import os
import threading
from typing import Any

import moto.s3.models as s3_models
from moto.s3.models import FakeDeleteMarker, FakeKey, S3Backend
from moto.core.responses import ActionResult
from moto.s3.responses import S3Response

from ._extension import Extension

DOC = "https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication.html"

log = logging.getLogger("lakeops.moto_ext.s3_replication")

# AWS replicates most objects within seconds to minutes; a short delay keeps "asynchronous"
# visible (a test sees PENDING first) without slowing anything down.
DELAY_SECONDS = float(os.environ.get("LAKEOPS_MOTO_REPLICATION_DELAY_SECONDS", "1"))

STATUS_HEADER = "x-amz-replication-status"


def _already_in_moto() -> bool:
    reads_back = "SourceSelectionCriteria" in inspect.getsource(S3Response.get_bucket_replication)
    copies = "replication-status" in inspect.getsource(s3_models).lower()
    return reads_back and copies


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _rule_for_response(rule: dict[str, Any]) -> dict[str, Any]:
    """A stored rule (parsed from the request XML) in the shape moto's serializer writes: the
    same names, except the tags of an And filter, which the model calls `Tags`."""
    out = {k: v for k, v in rule.items() if k != "Filter"}
    rule_filter = rule.get("Filter")
    if isinstance(rule_filter, dict) and isinstance(rule_filter.get("And"), dict):
        conjunction = {k: v for k, v in rule_filter["And"].items() if k != "Tag"}
        conjunction["Tags"] = _as_list(rule_filter["And"].get("Tag"))
        out["Filter"] = {**rule_filter, "And": conjunction}
    elif rule_filter is not None:
        out["Filter"] = rule_filter if isinstance(rule_filter, dict) else {}
    # An empty element (`<Prefix></Prefix>`) parses as None; AWS reads it back as "".
    if isinstance(out.get("Filter"), dict) and "Prefix" in out["Filter"] and out["Filter"]["Prefix"] is None:
        out["Filter"] = {**out["Filter"], "Prefix": ""}
    return out


def _filter_of(rule: dict[str, Any]) -> tuple[str, list[dict[str, str]]]:
    """(prefix, tags) a rule selects: the V1 `Prefix`, or `Filter` with Prefix, Tag or And."""
    if "Filter" not in rule:
        return rule.get("Prefix") or "", []
    rule_filter = rule.get("Filter") or {}
    if "And" in rule_filter:
        conjunction = rule_filter["And"] or {}
        return conjunction.get("Prefix") or "", _as_list(conjunction.get("Tag"))
    return rule_filter.get("Prefix") or "", _as_list(rule_filter.get("Tag"))


def _enabled(section: Any) -> bool:
    return isinstance(section, dict) and section.get("Status") == "Enabled"


def _selecting_rule(backend: S3Backend, bucket: Any, key_name: str, key: FakeKey | None) -> dict[str, Any] | None:
    """The enabled rule with the highest priority that selects `key_name` (and `key`'s tags)."""
    replication = getattr(bucket, "replication", None)
    if not replication:
        return None
    tags: dict[str, str] = {}
    if key is not None:
        tags = backend.tagger.get_tag_dict_for_resource(key.arn)
    candidates = []
    for rule in _as_list(replication.get("Rule")):
        if rule.get("Status") != "Enabled":
            continue
        prefix, rule_tags = _filter_of(rule)
        if not key_name.startswith(prefix):
            continue
        if key is None and rule_tags:
            # Delete markers carry no tags: tag-filtered rules never replicate them.
            continue
        if any(tags.get(t.get("Key")) != t.get("Value") for t in rule_tags):
            continue
        candidates.append(rule)
    if not candidates:
        return None
    return max(candidates, key=lambda r: int(r.get("Priority") or 0))


def _destination_bucket(backend: S3Backend, rule: dict[str, Any]) -> Any:
    arn = (rule.get("Destination") or {}).get("Bucket", "")
    return backend.get_bucket(arn.split(":::", 1)[-1])


def _copy_version(backend: S3Backend, put_object: Any, source: FakeKey, rule: dict[str, Any]) -> None:
    try:
        destination = rule.get("Destination") or {}
        target = _destination_bucket(backend, rule)
        encryption, kms_key_id = source.encryption, source.kms_key_id
        if source.encryption == "aws:kms":
            kms_key_id = (destination.get("EncryptionConfiguration") or {}).get("ReplicaKmsKeyID")
        replica = put_object(
            backend,
            target.name,
            source.name,
            source.value,
            storage=destination.get("StorageClass") or source.storage_class,
            encryption=encryption,
            kms_key_id=kms_key_id,
            bucket_key_enabled=source.bucket_key_enabled if encryption == "aws:kms" else None,
            lock_mode=source.lock_mode,
            lock_legal_status=source.lock_legal_status,
            lock_until=source.lock_until,
            disable_notification=False,
        )
        replica._version_id = source.version_id
        replica.set_metadata(dict(source.metadata))
        tags = backend.tagger.get_tag_dict_for_resource(source.arn)
        if tags:
            backend.tagger.tag_resource(replica.arn, [{"Key": k, "Value": v} for k, v in tags.items()])
        replica.lakeops_replication_status = "REPLICA"
        source.lakeops_replication_status = "COMPLETED"
    except Exception:  # noqa: BLE001 - AWS reports FAILED for a version it cannot replicate
        log.exception("replicating %s/%s failed", source.bucket_name, source.name)
        source.lakeops_replication_status = "FAILED"


def _copy_delete_marker(backend: S3Backend, set_delete_marker: Any, key_name: str, version_id: str, rule: dict[str, Any]) -> None:
    try:
        target = _destination_bucket(backend, rule)
        if key_name in target.keys:
            marker = set_delete_marker(backend, target.name, key_name)
            marker._version_id = version_id
    except Exception:  # noqa: BLE001
        log.exception("replicating the delete marker of %s failed", key_name)


def _later(action: Any, *args: Any) -> None:
    timer = threading.Timer(DELAY_SECONDS, action, args)
    timer.daemon = True
    timer.start()


def _install() -> None:
    original_get_replication = S3Response.get_bucket_replication
    original_put_object = S3Backend.put_object
    original_set_delete_marker = S3Backend._set_delete_marker
    original_response_dict = FakeKey.response_dict

    def get_bucket_replication(self: S3Response) -> Any:
        replication = self.backend.get_bucket_replication(self.bucket_name)
        if not replication:
            return original_get_replication(self)
        self.data["Action"] = "GetBucketReplication"
        rules = [_rule_for_response(rule) for rule in _as_list(replication.get("Rule"))]
        body = {"ReplicationConfiguration": {"Role": replication["Role"], "Rules": rules}}
        return self.serialized(ActionResult(body))

    def put_object(self: S3Backend, bucket_name: str, key_name: str, *args: Any, **kwargs: Any) -> FakeKey:
        key = original_put_object(self, bucket_name, key_name, *args, **kwargs)
        bucket = self.get_bucket(bucket_name)
        if not bucket.is_versioned or getattr(key, "lakeops_replication_status", None) == "REPLICA":
            return key
        # Tags and metadata are set by the request handler after this returns, so the rule is
        # chosen when the copy runs, as S3 evaluates it on the stored object.
        if getattr(bucket, "replication", None):
            key.lakeops_replication_status = "PENDING"

            def replicate() -> None:
                rule = _selecting_rule(self, bucket, key_name, key)
                if rule is None:
                    key.lakeops_replication_status = None
                    return
                if key.encryption == "aws:kms" and not _enabled((rule.get("SourceSelectionCriteria") or {}).get("SseKmsEncryptedObjects")):
                    key.lakeops_replication_status = None
                    return
                _copy_version(self, original_put_object, key, rule)

            _later(replicate)
        return key

    def set_delete_marker(self: S3Backend, bucket_name: str, key_name: str) -> FakeDeleteMarker:
        marker = original_set_delete_marker(self, bucket_name, key_name)
        bucket = self.get_bucket(bucket_name)
        rule = _selecting_rule(self, bucket, key_name, None)
        if rule is not None and _enabled(rule.get("DeleteMarkerReplication")):
            _later(_copy_delete_marker, self, original_set_delete_marker, key_name, marker.version_id, rule)
        return marker

    def response_dict(self: FakeKey) -> dict[str, Any]:
        headers = original_response_dict.fget(self)  # type: ignore[attr-defined]
        status = getattr(self, "lakeops_replication_status", None)
        if status:
            headers[STATUS_HEADER] = status
        return headers

    S3Response.get_bucket_replication = get_bucket_replication  # type: ignore[method-assign]
    S3Backend.put_object = put_object  # type: ignore[method-assign]
    S3Backend._set_delete_marker = set_delete_marker  # type: ignore[method-assign]
    FakeKey.response_dict = property(response_dict)  # type: ignore[method-assign,assignment]


EXTENSION = Extension("s3-replication", DOC, _already_in_moto, _install)
