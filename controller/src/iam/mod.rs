//! The controller's own IAM policy: exactly the AWS actions its adapters call, scoped to
//! what lakeops names and tags. `lakeops iam-policy` prints it; tests check that every
//! request the controller sends is covered, by action and resource, with the evaluator here.
//!
//! `policy` builds the document; `evaluate` matches requests against a document as IAM would.
mod evaluate;
mod policy;

pub use evaluate::{
    Authorization, Decision, allows_request, parse_identity_policy, request_authorizations, wildcard_match,
};
pub use policy::{
    ROLE_PATH, action_for, allows, controller_policy, controller_policy_bounded, controller_policy_with,
    to_identity_json,
};
