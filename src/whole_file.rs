//! Files replaced whole: a reader (or a run killed part way) sees the old contents or the new,
//! never half of the new. The contents go to `<name>.partial` beside the file, then a rename
//! (atomic within a folder) puts them in its place.

use anyhow::Context;
use std::path::{Path, PathBuf};

/// The temporary file beside `path` that [`replace`] writes first.
pub fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    path.with_file_name(name)
}

/// Replaces the file at `path` with `contents` whole.
pub fn replace(path: &Path, contents: impl AsRef<[u8]>) -> anyhow::Result<()> {
    let partial = partial_path(path);
    std::fs::write(&partial, contents).with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, path).with_context(|| format!("replacing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replacing_leaves_the_new_contents_and_no_partial_file() {
        let dir = std::env::temp_dir().join(format!("whole_file_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("scores.json");
        std::fs::write(&path, "old").unwrap();
        replace(&path, "new").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert!(!partial_path(&path).exists());
        assert_eq!(partial_path(&path), dir.join("scores.json.partial"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_that_cannot_be_written_is_an_error_naming_it() {
        let path = Path::new("/nonexistent-folder-of-whole-file/scores.json");
        let err = format!("{:#}", replace(path, "new").unwrap_err());
        assert!(
            err.contains("/nonexistent-folder-of-whole-file/scores.json.partial"),
            "{err}"
        );
    }
}
