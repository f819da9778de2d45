"""The example pipeline's handlers, run locally against moto's S3 and Secrets Manager:
records with personal data in, no personal data out (not in the objects written, not in
the logs), tokens deterministic under one key and different under another.

Run: python -m unittest discover -s examples/pipeline/tests (make test does).
"""
import importlib.util
import io
import json
import logging
import os
import pathlib
import unittest

import boto3
from moto import mock_aws

HERE = pathlib.Path(__file__).resolve().parent
REGION = "eu-west-1"
RAW, CURATED = "team-a-sales-raw", "team-a-sales-curated"

PEOPLE = [
    {"customer_id": "c-1", "email": "Ada.Lovelace@example.com", "phone": "+44 20 7946 0018", "card_number": "4111 1111 1111 1111"},
    {"customer_id": "c-2", "email": "grace@example.org", "phone": "+1 (202) 555-0143", "card_number": "5500-0000-0000-0004"},
    # The same person as c-1, spelt differently: must get the same tokens.
    {"customer_id": "c-3", "email": "ada.lovelace@EXAMPLE.com ", "phone": "+442079460018", "card_number": "4111111111111111"},
    # Invalid: the card number fails the Luhn check; dropped by validate.
    {"customer_id": "c-4", "email": "bad@example.net", "phone": "+1 202 555 0100", "card_number": "4111 1111 1111 1112"},
]
RAW_VALUES = [p[f] for p in PEOPLE for f in ("email", "phone", "card_number")]


def load(name):
    spec = importlib.util.spec_from_file_location(name, HERE.parent / "functions" / name / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Handlers(unittest.TestCase):
    def setUp(self):
        os.environ.update(AWS_DEFAULT_REGION=REGION, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test")
        self.mock = mock_aws()
        self.mock.start()
        self.s3 = boto3.client("s3", region_name=REGION)
        for bucket in (RAW, CURATED):
            self.s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        sm = boto3.client("secretsmanager", region_name=REGION)
        self.secret = sm.create_secret(Name="token-key", SecretString="k" * 32)["ARN"]
        self.other_secret = sm.create_secret(Name="other-key", SecretString="z" * 32)["ARN"]
        body = "".join(json.dumps(p) + "\n" for p in PEOPLE)
        self.s3.put_object(Bucket=RAW, Key="landing/customers/batch-1.json", Body=body.encode())
        self.log = io.StringIO()
        self.log_handler = logging.StreamHandler(self.log)
        logging.getLogger().addHandler(self.log_handler)
        logging.getLogger().setLevel(logging.DEBUG)

    def tearDown(self):
        logging.getLogger().removeHandler(self.log_handler)
        self.mock.stop()

    def run_pipeline(self, secret):
        validate, tokenise = load("validate"), load("tokenise")
        event = {
            "source": "aws.s3",
            "detail-type": "Object Created",
            "detail": {"bucket": {"name": RAW}, "object": {"key": "landing/customers/batch-1.json"}},
        }
        os.environ.update(OUTPUT_BUCKET=CURATED, OUTPUT_PREFIX="customers/validated/")
        validated = validate.handler(event)
        os.environ.update(OUTPUT_PREFIX="customers/tokenised/", TOKEN_KEY_SECRET_ARN=secret)
        out = tokenise.handler(validated)
        body = self.s3.get_object(Bucket=out["bucket"], Key=out["key"])["Body"].read().decode()
        return validated, out, [json.loads(line) for line in body.splitlines()], body

    def test_no_personal_data_leaves_the_pipeline_or_reaches_the_logs(self):
        validated, out, records, body = self.run_pipeline(self.secret)
        self.assertEqual((validated["records"], validated["rejected"]), (3, {"card_number": 1}))
        self.assertEqual(out["records"], 3)
        normalised = {v.strip().lower() for v in RAW_VALUES} | {"".join(c for c in v if c.isdigit()) for v in RAW_VALUES}
        # Every raw value and its normalised forms (digits only for numbers, 6+ characters).
        for value in RAW_VALUES + sorted(v for v in normalised if len(v) >= 6):
            self.assertNotIn(value, body, "a raw value in the output")
            self.assertNotIn(value, self.log.getvalue(), "a raw value in the logs")
        for r in records:
            for field in ("email", "phone", "card_number"):
                self.assertRegex(r[field], r"^tok_[0-9a-f]{32}$")
        self.assertIn("3 records kept", self.log.getvalue())

    def test_tokens_are_deterministic_per_key_so_joins_still_work(self):
        _, _, records, _ = self.run_pipeline(self.secret)
        by_id = {r["customer_id"]: r for r in records}
        for field in ("email", "phone", "card_number"):
            self.assertEqual(by_id["c-1"][field], by_id["c-3"][field], f"{field}: one person, one token")
            self.assertNotEqual(by_id["c-1"][field], by_id["c-2"][field])
        _, _, again, _ = self.run_pipeline(self.secret)
        self.assertEqual(records, again, "the same key gives the same tokens on every run")
        _, _, other, _ = self.run_pipeline(self.other_secret)
        self.assertNotEqual(by_id["c-1"]["email"], {r["customer_id"]: r for r in other}["c-1"]["email"])


if __name__ == "__main__":
    unittest.main()
