//! The NeoOS host tool: builds the kernel, compiles C programs against libneo,
//! packs the initial filesystem image, and boots NeoOS under QEMU. The `neoos`
//! binary (the README's run command) and the in-QEMU test suite both use it.

pub mod bench;
pub mod boot;
pub mod build;
pub mod chart;
pub mod conformance;
pub mod disk;
pub mod initfs;
pub mod launch;
pub mod seeds;

use std::path::PathBuf;

/// The repository's root folder.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where the host tool puts what it builds.
pub fn out_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"))
        .join("neoos")
}

/// An error of the host tool, with a message for the user.
#[derive(Debug)]
pub struct ToolError(pub String);

impl std::fmt::Display for ToolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ToolError {}

impl From<std::io::Error> for ToolError {
    fn from(e: std::io::Error) -> Self {
        ToolError(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, ToolError>;
