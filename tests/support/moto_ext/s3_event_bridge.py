"""S3 reports a bucket's EventBridge delivery in its notification configuration.

AWS: PutBucketNotificationConfiguration with an (empty) ``EventBridgeConfiguration`` turns on
delivery of the bucket's events to EventBridge, and GetBucketNotificationConfiguration returns
``<EventBridgeConfiguration/>`` while it is on.
https://docs.aws.amazon.com/AmazonS3/latest/userguide/enable-event-notifications-eventbridge.html
https://docs.aws.amazon.com/AmazonS3/latest/API/API_NotificationConfiguration.html
moto 5.2.5 stores it but leaves it out of the answer, so a reader never sees it on.
"""

from __future__ import annotations

import inspect
from typing import Any

from moto.s3.responses import S3Response

from ._extension import Extension

DOC = "https://docs.aws.amazon.com/AmazonS3/latest/API/API_NotificationConfiguration.html"


def _already_in_moto() -> bool:
    return "EventBridgeConfiguration" in inspect.getsource(S3Response.get_bucket_notification)


def _install() -> None:
    original = S3Response.get_bucket_notification

    def get_bucket_notification(self: S3Response) -> Any:
        answer = original(self)
        configuration = self.backend.get_bucket_notification_configuration(self.bucket_name)
        if configuration is None or getattr(configuration, "event_bridge", None) is None:
            return answer
        status, headers, body = answer
        text = body.decode() if isinstance(body, bytes) else body
        closing = "</NotificationConfiguration>"
        if closing in text:
            text = text.replace(closing, "<EventBridgeConfiguration></EventBridgeConfiguration>" + closing)
        else:
            # Nothing else is configured: moto answered an empty document.
            text = (
                '<?xml version="1.0" encoding="UTF-8"?>'
                '<NotificationConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                "<EventBridgeConfiguration></EventBridgeConfiguration></NotificationConfiguration>"
            )
        return status, headers, text

    S3Response.get_bucket_notification = get_bucket_notification  # type: ignore[method-assign]


EXTENSION = Extension("s3-event-bridge-notifications", DOC, _already_in_moto, _install)
