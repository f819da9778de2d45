"""Unit tests of the extension layer's pure parts, run by the e2e suite
(emulator::the_extension_layers_own_unit_tests_pass) with moto's venv Python:
    python -m unittest discover -s tests/support -p 'test_*.py'
"""

import unittest

from moto_ext import _extension
from moto_ext.s3_policy_conditions import RequestConditions, condition_context, conditions_hold


def context(**keys: str) -> RequestConditions:
    return RequestConditions({k.lower(): v for k, v in keys.items()})


LAKE_KEY = "arn:aws:kms:eu-west-1:123456789012:key/lake"


class ConditionsAsAwsEvaluatesThem(unittest.TestCase):
    def test_tls_only_deny_applies_to_plain_http_only(self):
        deny_plain = {"Bool": {"aws:SecureTransport": "false"}}
        self.assertTrue(conditions_hold(deny_plain, context(**{"aws:SecureTransport": "false"})))
        self.assertFalse(conditions_hold(deny_plain, context(**{"aws:SecureTransport": "true"})))

    def test_old_tls_deny_holds_only_below_1_2_and_not_without_tls(self):
        old = {"NumericLessThan": {"s3:TlsVersion": "1.2"}}
        self.assertTrue(conditions_hold(old, context(**{"s3:TlsVersion": "1.1"})))
        self.assertFalse(conditions_hold(old, context(**{"s3:TlsVersion": "1.3"})))
        self.assertFalse(conditions_hold(old, context()), "a missing key matches nothing")

    def test_another_key_deny_holds_for_another_key_and_for_none_named(self):
        other_key = {"StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption-aws-kms-key-id": [LAKE_KEY]}}
        header = "s3:x-amz-server-side-encryption-aws-kms-key-id"
        self.assertFalse(conditions_hold(other_key, context(**{header: LAKE_KEY})))
        self.assertTrue(conditions_hold(other_key, context(**{header: LAKE_KEY + "x"})))
        # ...IfExists: "If the key is not present, evaluate the condition element as true."
        self.assertTrue(conditions_hold(other_key, context()))

    def test_negated_and_null_operators_on_missing_keys(self):
        self.assertTrue(conditions_hold({"StringNotEquals": {"s3:x": "a"}}, context()))
        self.assertFalse(conditions_hold({"StringEquals": {"s3:x": "a"}}, context()))
        self.assertTrue(conditions_hold({"Null": {"s3:x": "true"}}, context()))
        self.assertFalse(conditions_hold({"Null": {"s3:x": "true"}}, context(**{"s3:x": "a"})))

    def test_values_of_one_key_are_ored_and_blocks_anded(self):
        both = {"StringEquals": {"s3:a": ["1", "2"]}, "StringLike": {"s3:b": "x*"}}
        self.assertTrue(conditions_hold(both, context(**{"s3:a": "2", "s3:b": "xyz"})))
        self.assertFalse(conditions_hold(both, context(**{"s3:a": "3", "s3:b": "xyz"})))

    def test_the_context_comes_from_the_request(self):
        environ = {
            "wsgi.url_scheme": "https",
            "lakeops.tls_version": "TLSv1.3",
            "HTTP_X_AMZ_SERVER_SIDE_ENCRYPTION": "aws:kms",
            "HTTP_X_AMZ_SERVER_SIDE_ENCRYPTION_AWS_KMS_KEY_ID": LAKE_KEY,
        }
        self.assertEqual(
            dict(condition_context(environ)),
            {
                "aws:securetransport": "true",
                "s3:tlsversion": "1.3",
                "s3:x-amz-server-side-encryption": "aws:kms",
                "s3:x-amz-server-side-encryption-aws-kms-key-id": LAKE_KEY,
            },
        )
        self.assertEqual(dict(condition_context({"wsgi.url_scheme": "http"})), {"aws:securetransport": "false"})


class AnExtensionStepsAside(unittest.TestCase):
    def extension(self, present):
        installed = []
        ext = _extension.Extension("probe", "https://docs.aws.amazon.com/", present, lambda: installed.append(1))
        _extension.apply(ext)
        return ext, installed

    def test_when_moto_already_behaves_as_aws_documents(self):
        ext, installed = self.extension(lambda: True)
        self.assertEqual((ext.active, installed), (False, []))
        self.assertIn("already does this", ext.reason)

    def test_when_moto_changed_where_it_hooks_in(self):
        def gone():
            raise AttributeError("no such method")

        ext, installed = self.extension(gone)
        self.assertEqual((ext.active, installed), (False, []))
        self.assertIn("differs from", ext.reason)

    def test_and_applies_itself_when_moto_lacks_the_behaviour(self):
        ext, installed = self.extension(lambda: False)
        self.assertEqual((ext.active, installed), (True, [1]))


if __name__ == "__main__":
    unittest.main()
