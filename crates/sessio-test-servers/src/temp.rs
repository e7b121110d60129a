//! [`TempDir`]: a temporary directory removed on drop.

use std::path::{Path, PathBuf};

/// A directory removed on drop.
#[derive(Debug)]
pub struct TempDir {
    /// Its path.
    pub path: PathBuf,
}

impl TempDir {
    /// A fresh directory under the system's temporary directory.
    pub fn new(tag: &str) -> Self {
        Self::new_in(&std::env::temp_dir(), tag)
    }

    /// A fresh directory under `parent` if it is a directory, else under the system's
    /// temporary directory.
    pub fn new_in(parent: &Path, tag: &str) -> Self {
        let parent = if parent.is_dir() {
            parent.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let mut raw = [0u8; 6];
        getrandom::fill(&mut raw).expect("OS random number generator");
        let name: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let path = parent.join(format!("sessio-{tag}-{name}"));
        std::fs::create_dir_all(&path).expect("create a temporary directory");
        Self { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
