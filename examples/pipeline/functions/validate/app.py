"""Pipeline step 1: validate raw customer records.

Input: the EventBridge "Object Created" event that started the execution. Reads the JSON
Lines object it names, keeps the records that have every required field in the expected
shape, writes them as JSON Lines under OUTPUT_PREFIX in OUTPUT_BUCKET and returns where
they are for the next step. Logs carry counts and field names only, never a value: the
records hold personal data.
"""
import json
import logging
import os
import re

import boto3

LOG = logging.getLogger("validate")
LOG.setLevel(logging.INFO)

REQUIRED = ("customer_id", "email", "phone", "card_number")
SHAPES = {
    "email": re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
    "phone": re.compile(r"^\+?[0-9 ()-]{7,20}$"),
    "card_number": re.compile(r"^[0-9 -]{12,23}$"),
}

_s3 = None


def s3():
    global _s3
    if _s3 is None:
        _s3 = boto3.client("s3")
    return _s3


def problems(record):
    """Names of the fields that are missing or malformed (never their values)."""
    out = [f for f in REQUIRED if not isinstance(record.get(f), str) or not record.get(f)]
    out += [f for f, shape in SHAPES.items() if f not in out and not shape.match(record[f].strip())]
    if "card_number" not in out and not luhn_ok(record["card_number"]):
        out.append("card_number")
    return out


def luhn_ok(number):
    digits = [int(c) for c in number if c.isdigit()]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return len(digits) >= 12 and total % 10 == 0


def handler(event, context=None):
    detail = event["detail"]
    bucket, key = detail["bucket"]["name"], detail["object"]["key"]
    body = s3().get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
    valid, rejected = [], {}
    for line_no, line in enumerate(body.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            rejected["(not JSON)"] = rejected.get("(not JSON)", 0) + 1
            continue
        bad = problems(record)
        for field in bad:
            rejected[field] = rejected.get(field, 0) + 1
        if not bad:
            valid.append(record)
    out_key = os.environ["OUTPUT_PREFIX"] + key.rsplit("/", 1)[-1]
    out_bucket = os.environ["OUTPUT_BUCKET"]
    s3().put_object(
        Bucket=out_bucket,
        Key=out_key,
        Body="".join(json.dumps(r, sort_keys=True) + "\n" for r in valid).encode("utf-8"),
        ServerSideEncryption="aws:kms",
    )
    LOG.info("validated %s: %d records kept, rejected by field %s", key, len(valid), rejected)
    return {"bucket": out_bucket, "key": out_key, "records": len(valid), "rejected": rejected}
