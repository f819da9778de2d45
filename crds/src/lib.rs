//! The `lakeops.dev/v1alpha1` API: DataLake, EtlFunction and BackupPolicy, their
//! validation, and the CRDs that serve them. No tokio, no AWS: everything here is data
//! and pure rules, shared by the controller and the offline tools.
#![forbid(unsafe_code)]

pub mod backuppolicy;
pub mod common;
pub mod datalake;
pub mod etlfunction;
pub mod etlpipeline;
pub mod names;
pub mod references;
pub mod securitybaseline;
pub mod validation;

mod crd;

pub use backuppolicy::{BackupPolicy, BackupPolicySpec, BackupPolicyStatus};
pub use common::{DataLakeRef, DeletionPolicy, FindingSeverity, HasConditions};
pub use crd::{crds, crds_without_cel, crds_yaml, crds_yaml_without_cel};
pub use datalake::{DataLake, DataLakeSpec, DataLakeStatus};
pub use etlfunction::{EtlFunction, EtlFunctionSpec, EtlFunctionStatus};
pub use etlpipeline::{EtlPipeline, EtlPipelineSpec, EtlPipelineStatus};
pub use securitybaseline::{SecurityBaseline, SecurityBaselineSpec, SecurityBaselineStatus};
pub use validation::{FieldError, Findings, Severity};
