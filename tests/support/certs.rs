//! Key material for the API server and moto's HTTPS endpoint, made with the `openssl` CLI.
//!
//! A CA plus a separate serving certificate rather than one self-signed serving certificate:
//! rustls (kube's TLS stack) rejects a certificate carrying `CA:TRUE` as an end-entity
//! certificate, and `openssl req -x509` marks its output as a CA.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use tokio::process::Command;

/// Paths of the generated files.
pub(crate) struct Certs {
    /// CA certificate: trusted by clients, and the API server's `--client-ca-file`.
    pub(crate) ca_cert: PathBuf,
    /// Serving certificate for `IP:127.0.0.1` and `localhost`, signed by the CA: the API
    /// server's and moto's.
    pub(crate) server_cert: PathBuf,
    pub(crate) server_key: PathBuf,
    /// Service-account token signing key and its public half.
    pub(crate) sa_key: PathBuf,
    pub(crate) sa_pub: PathBuf,
}

/// Runs `openssl` with whitespace-separated `args` (none of ours contain spaces) in `dir`.
async fn openssl(dir: &Path, args: &str) -> Result<()> {
    let out = Command::new("openssl")
        .args(args.split_whitespace())
        .current_dir(dir)
        .kill_on_drop(true)
        .output()
        .await
        .context("running openssl (is the openssl CLI installed?)")?;
    if !out.status.success() {
        bail!("openssl {} failed ({}): {}", args, out.status, String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// Writes every file into `dir`; independent key generations run concurrently.
pub(crate) async fn generate(dir: &Path) -> Result<Certs> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    // 2 days: long enough for any test run or demo session, short enough to never matter.
    let ca = openssl(
        dir,
        "req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=lakeops-testenv-ca -keyout ca.key -out ca.crt",
    );
    let csr = openssl(dir, "req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout apiserver.key -out apiserver.csr");
    let sa = async {
        openssl(dir, "genrsa -out sa.key 2048").await?;
        openssl(dir, "pkey -in sa.key -pubout -out sa.pub").await
    };
    tokio::try_join!(ca, csr, sa)?;
    std::fs::write(
        dir.join("apiserver.ext"),
        "basicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage=serverAuth\n\
         subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .context("writing the certificate extensions file")?;
    openssl(
        dir,
        "x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile apiserver.ext -out apiserver.crt",
    )
    .await?;
    Ok(Certs {
        ca_cert: dir.join("ca.crt"),
        server_cert: dir.join("apiserver.crt"),
        server_key: dir.join("apiserver.key"),
        sa_key: dir.join("sa.key"),
        sa_pub: dir.join("sa.pub"),
    })
}
