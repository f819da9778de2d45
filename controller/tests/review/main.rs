//! What reviewers of a pull request see: the markdown plan comment (pinned as golden files),
//! `lakeops plan --base` on pairs of manifest trees, and `lakeops validate` at the scale of
//! a large repository.
mod base;
mod golden;
mod validate_scale;

use std::path::{Path, PathBuf};

/// The workspace root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Compares `actual` with the file at `path` byte for byte; `UPDATE_GOLDEN=1` rewrites the
/// file instead (review the diff before committing it).
pub fn assert_golden(path: &Path, actual: &str) {
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("golden directory");
        }
        std::fs::write(path, actual).expect("golden written");
        return;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!("{}: {e}; run with UPDATE_GOLDEN=1 to create it", path.display());
    });
    assert!(
        expected == actual,
        "{} differs (UPDATE_GOLDEN=1 rewrites it)\n--- expected\n{expected}\n--- actual\n{actual}",
        path.display()
    );
}
