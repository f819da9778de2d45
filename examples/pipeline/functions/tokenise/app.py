"""Pipeline step 2: replace personal data with keyed, deterministic tokens.

Input: what the validate step returned ({"bucket", "key"}). Each email, phone number and
card number becomes "tok_" + the first 32 hex digits of HMAC-SHA256(key, field + ":" +
normalised value): the same value always gives the same token (joins and counts still
work), nobody without the key can compute or reverse it, and a value of one field never
matches a token of another. The key is read once from Secrets Manager (TOKEN_KEY_SECRET_ARN).
Logs carry counts only, never a value.
"""
import hashlib
import hmac
import json
import logging
import os

import boto3

LOG = logging.getLogger("tokenise")
LOG.setLevel(logging.INFO)

PII_FIELDS = ("email", "phone", "card_number")

_clients = {}
_key = None


def client(name):
    if name not in _clients:
        _clients[name] = boto3.client(name)
    return _clients[name]


def token_key():
    global _key
    if _key is None:
        secret = client("secretsmanager").get_secret_value(SecretId=os.environ["TOKEN_KEY_SECRET_ARN"])
        _key = secret["SecretBinary"] if secret.get("SecretBinary") else secret["SecretString"].encode("utf-8")
    return _key


def normalise(field, value):
    """The form two spellings of one value share."""
    if field == "email":
        return value.strip().lower()
    return "".join(c for c in value if c.isdigit() or c == "+")


def token(key, field, value):
    mac = hmac.new(key, f"{field}:{normalise(field, value)}".encode("utf-8"), hashlib.sha256)
    return "tok_" + mac.hexdigest()[:32]


def tokenise(record, key):
    out = dict(record)
    for field in PII_FIELDS:
        if isinstance(out.get(field), str):
            out[field] = token(key, field, out[field])
    return out


def handler(event, context=None):
    key = token_key()
    body = client("s3").get_object(Bucket=event["bucket"], Key=event["key"])["Body"].read().decode("utf-8")
    records = [json.loads(line) for line in body.splitlines() if line.strip()]
    out_key = os.environ["OUTPUT_PREFIX"] + event["key"].rsplit("/", 1)[-1]
    out_bucket = os.environ["OUTPUT_BUCKET"]
    client("s3").put_object(
        Bucket=out_bucket,
        Key=out_key,
        Body="".join(json.dumps(tokenise(r, key), sort_keys=True) + "\n" for r in records).encode("utf-8"),
        ServerSideEncryption="aws:kms",
    )
    LOG.info("tokenised %d records of %s", len(records), event["key"])
    return {"bucket": out_bucket, "key": out_key, "records": len(records)}
