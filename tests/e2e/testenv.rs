//! Proof that the test environment is real: a kube-apiserver that stores objects and enforces
//! RBAC, and a moto server that keeps S3, KMS and DynamoDB state.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use kube::api::{Api, ListParams, ObjectMeta, PostParams};
use lakeops_testenv::{shared, unique_name};

fn meta(name: &str, namespace: &str) -> ObjectMeta {
    ObjectMeta { name: Some(name.to_owned()), namespace: Some(namespace.to_owned()), ..Default::default() }
}

#[tokio::test]
async fn environment_starts_and_serves_the_kubernetes_api() -> anyhow::Result<()> {
    let env = shared().await;
    let client = env.kube_client().await?;

    let version = client.apiserver_version().await?;
    assert_eq!((version.major.as_str(), version.minor.as_str()), ("1", "20"));

    let namespaces: Api<Namespace> = Api::all(client.clone());
    let names: Vec<String> =
        namespaces.list(&ListParams::default()).await?.items.into_iter().filter_map(|ns| ns.metadata.name).collect();
    for builtin in ["default", "kube-system", "kube-public"] {
        assert!(names.iter().any(|n| n == builtin), "{builtin} missing from {names:?}");
    }

    let created = env.create_namespace("testenv-smoke").await?;
    assert!(created.starts_with("testenv-smoke-") && created.len() <= 63);
    let fetched = namespaces.get(&created).await?;
    assert_eq!(fetched.metadata.name.as_deref(), Some(created.as_str()));
    assert!(fetched.metadata.uid.is_some(), "a stored object has a uid");

    // The same kubeconfig works for kubectl, which other tests (and helm) rely on.
    let output = env.kubectl().args(["get", "namespace", &created, "-o", "name"]).output()?;
    assert!(output.status.success(), "kubectl failed: {}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), format!("namespace/{created}"));
    Ok(())
}

#[tokio::test]
async fn rbac_is_enforced_for_a_service_account_without_bindings() -> anyhow::Result<()> {
    let env = shared().await;
    let admin = env.kube_client().await?;
    let ns = env.create_namespace("testenv-rbac").await?;

    let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), &ns);
    let sa = ServiceAccount { metadata: meta("reader", &ns), ..Default::default() };
    accounts.create(&PostParams::default(), &sa).await?;
    let token = env.service_account_token(&ns, "reader").await?;
    let as_sa = env.client_with_token(&token).await?;

    // Authenticated (not 401) but not authorized: 403.
    let secrets: Api<Secret> = Api::namespaced(as_sa.clone(), &ns);
    match secrets.list(&ListParams::default()).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 403, "{status:?}"),
        other => panic!("expected 403 Forbidden listing secrets, got {other:?}"),
    }

    // Control: after a Role and RoleBinding grant it, the same token may list secrets, so the
    // 403 came from RBAC and not from a broken token.
    let role = Role {
        metadata: meta("secret-reader", &ns),
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["secrets".into()]),
            verbs: vec!["list".into()],
            ..Default::default()
        }]),
    };
    Api::<Role>::namespaced(admin.clone(), &ns).create(&PostParams::default(), &role).await?;
    let binding = RoleBinding {
        metadata: meta("reader-reads-secrets", &ns),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name: "secret-reader".into(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: "reader".into(),
            namespace: Some(ns.clone()),
            ..Default::default()
        }]),
    };
    Api::<RoleBinding>::namespaced(admin, &ns).create(&PostParams::default(), &binding).await?;
    // The authorizer reads RBAC objects from an informer cache: allow it a moment.
    let mut last = None;
    for _ in 0..50 {
        match secrets.list(&ListParams::default()).await {
            Ok(_) => return Ok(()),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the bound ServiceAccount still cannot list secrets: {last:?}");
}

#[tokio::test]
async fn moto_serves_s3_kms_and_dynamodb() -> anyhow::Result<()> {
    use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};

    let env = shared().await;
    let region = "eu-west-1";

    // S3: a bucket in a non-default region, an object written and read back.
    let s3 = env.s3(region);
    let bucket = unique_name("testenv-bucket");
    s3.create_bucket()
        .bucket(&bucket)
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
                .build(),
        )
        .send()
        .await?;
    let location = s3.get_bucket_location().bucket(&bucket).send().await?;
    assert_eq!(location.location_constraint().map(|c| c.as_str()), Some("eu-west-1"));
    s3.put_object().bucket(&bucket).key("hello.txt").body(b"hello lake".to_vec().into()).send().await?;
    let object = s3.get_object().bucket(&bucket).key("hello.txt").send().await?;
    let body = object.body.collect().await?.into_bytes();
    assert_eq!(&body[..], b"hello lake");

    // KMS: a key, described back by id.
    let kms = env.kms(region);
    let key = kms.create_key().description("lakeops testenv key").send().await?;
    let key_id = key.key_metadata().map(|m| m.key_id().to_owned()).expect("CreateKey returns metadata");
    let described = kms.describe_key().key_id(&key_id).send().await?;
    let metadata = described.key_metadata().expect("DescribeKey returns metadata");
    assert_eq!(metadata.description(), Some("lakeops testenv key"));
    assert!(metadata.arn().is_some_and(|arn| arn.starts_with("arn:aws:kms:eu-west-1:")), "{metadata:?}");

    // DynamoDB: a table, described back.
    let dynamodb = env.dynamodb(region);
    let table = unique_name("testenv-table");
    dynamodb
        .create_table()
        .table_name(&table)
        .attribute_definitions(
            AttributeDefinition::builder().attribute_name("pk").attribute_type(ScalarAttributeType::S).build()?,
        )
        .key_schema(KeySchemaElement::builder().attribute_name("pk").key_type(KeyType::Hash).build()?)
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await?;
    let described = dynamodb.describe_table().table_name(&table).send().await?;
    let described = described.table().expect("DescribeTable returns a table");
    assert_eq!(described.table_name(), Some(table.as_str()));
    assert_eq!(described.key_schema().first().map(|k| k.attribute_name()), Some("pk"));
    Ok(())
}
