//! The Open POSIX Test Suite's memory tests, as NeoOS runs them: where the
//! suite is (`../shared/conformance/open_posix_testsuite`, or
//! `NEOOS_POSIX_SUITE`), which tests there are (`N-M.c` of each interface),
//! how each is built (unmodified, `musl-gcc -static -Iinclude lib/common.c
//! TEST.c`, in the suite's folder), what each gave on Linux (the
//! reference), and what an exit status means (0 PASS, 1 FAIL, 2
//! UNRESOLVED, 4 UNSUPPORTED, 5 UNTESTED). The tests are test data: they
//! are never copied into the project nor changed.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{repo_root, Result, ToolError};

/// The interfaces whose tests `cargo test` runs, in run order.
pub const INTERFACES: &[&str] = &[
    "mmap",
    "munmap",
    "shm_open",
    "shm_unlink",
    "mlock",
    "munlock",
    "mlockall",
    "munlockall",
];

/// What a test gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Fail,
    Unresolved,
    Unsupported,
    Untested,
    /// It did not end within the time limit.
    Timeout,
    /// It ended with another status (a signal death is 128 + the signal).
    Status(i64),
}

impl Outcome {
    /// The outcome of a test that ended with exit status `status`.
    pub fn of_status(status: i64) -> Outcome {
        match status {
            0 => Outcome::Pass,
            1 => Outcome::Fail,
            2 => Outcome::Unresolved,
            4 => Outcome::Unsupported,
            5 => Outcome::Untested,
            s => Outcome::Status(s),
        }
    }

    /// The exit status it stands for (`None`: a timeout).
    pub fn status(self) -> Option<i64> {
        match self {
            Outcome::Pass => Some(0),
            Outcome::Fail => Some(1),
            Outcome::Unresolved => Some(2),
            Outcome::Unsupported => Some(4),
            Outcome::Untested => Some(5),
            Outcome::Timeout => None,
            Outcome::Status(s) => Some(s),
        }
    }

    /// The suite's word for it.
    pub fn word(self) -> String {
        match self {
            Outcome::Pass => "PASS".into(),
            Outcome::Fail => "FAIL".into(),
            Outcome::Unresolved => "UNRESOLVED".into(),
            Outcome::Unsupported => "UNSUPPORTED".into(),
            Outcome::Untested => "UNTESTED".into(),
            Outcome::Timeout => "TIMEOUT".into(),
            Outcome::Status(s) if (129..=192).contains(&s) => {
                format!("killed by signal {}", s - 128)
            }
            Outcome::Status(s) => format!("status {s}"),
        }
    }
}

/// The tests that did not pass on Linux (musl static, as the suite's
/// README of `../shared/conformance` reports for mmap, munmap, shm_open and
/// shm_unlink; the mlock family passed whole on Linux 6.18 as root, run
/// the same way). Every other test passed there.
const LINUX_NOT_PASSING: &[(&str, Outcome)] = &[
    // 32-bit only.
    ("mmap/31-1", Outcome::Unsupported),
    // Raises RLIMIT_MEMLOCK as root in a container that forbids it.
    ("mmap/18-1", Outcome::Unresolved),
    ("shm_open/39-2", Outcome::Untested),
    ("shm_unlink/10-2", Outcome::Untested),
    ("shm_unlink/9-1", Outcome::Fail),
    // Hangs (120 s) on Linux: never run here.
    ("shm_open/23-1", Outcome::Timeout),
];

/// One test of the suite.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConformanceTest {
    /// `mmap`, `shm_open`, ...
    pub interface: String,
    /// `1-1`, `11-6`, ...
    pub id: String,
    /// The C file.
    pub source: PathBuf,
    /// What it gave on Linux.
    pub linux: Outcome,
}

impl ConformanceTest {
    /// `interface/id`, as the suite names it.
    pub fn label(&self) -> String {
        format!("{}/{}", self.interface, self.id)
    }

    /// The cargo test name: `posix_mmap_1_1`.
    pub fn test_name(&self) -> String {
        format!("posix_{}_{}", self.interface, self.id.replace('-', "_"))
    }

    /// Whether NeoOS runs it: a test that hangs on Linux is left out (it
    /// would only stop the boot).
    pub fn runs(&self) -> bool {
        self.linux != Outcome::Timeout
    }
}

/// The suite's folder: `NEOOS_POSIX_SUITE`, else the shared folder next to
/// the repository; `None` when it is not there.
pub fn suite_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("NEOOS_POSIX_SUITE")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("../shared/conformance/open_posix_testsuite"));
    dir.join("conformance/interfaces").is_dir().then_some(dir)
}

/// Every test of [`INTERFACES`] in `suite`, by interface, then by number.
pub fn tests(suite: &Path) -> Result<Vec<ConformanceTest>> {
    let mut all = Vec::new();
    for interface in INTERFACES {
        let dir = suite.join("conformance/interfaces").join(interface);
        let mut ids: Vec<String> = std::fs::read_dir(&dir)
            .map_err(|e| ToolError(format!("{}: {e}", dir.display())))?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let id = name.strip_suffix(".c")?;
                is_test_id(id).then(|| id.to_string())
            })
            .collect();
        ids.sort_by_key(|id| numeric_key(id));
        for id in ids {
            let label = format!("{interface}/{id}");
            let linux = LINUX_NOT_PASSING
                .iter()
                .find(|(l, _)| *l == label)
                .map_or(Outcome::Pass, |(_, o)| *o);
            all.push(ConformanceTest {
                interface: interface.to_string(),
                source: dir.join(format!("{id}.c")),
                id,
                linux,
            });
        }
    }
    Ok(all)
}

/// Whether `id` is a test's `N-M`.
fn is_test_id(id: &str) -> bool {
    let mut parts = id.split('-');
    let number =
        |p: Option<&str>| p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    number(parts.next()) && number(parts.next()) && parts.next().is_none()
}

fn numeric_key(id: &str) -> (u32, u32) {
    let mut parts = id.split('-').map(|p| p.parse().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// Builds `test` unmodified into `out`, as on Linux: `musl-gcc -static
/// -Iinclude lib/common.c TEST.c`, in the suite's folder (its warnings
/// are not ours to mend and stay quiet).
pub fn build(suite: &Path, test: &ConformanceTest, out: &Path) -> Result<()> {
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let output = Command::new("musl-gcc")
        .current_dir(suite)
        .args(["-static", "-Iinclude", "lib/common.c"])
        .arg(&test.source)
        .arg("-o")
        .arg(out)
        .output()
        .map_err(|e| ToolError(format!("cannot start musl-gcc: {e}")))?;
    if !output.status.success() {
        return Err(ToolError(format!(
            "building {} failed ({}):\n{}",
            test.label(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim_end()
        )));
    }
    Ok(())
}

/// The table of docs/conformance.md: every test, its result on NeoOS
/// (`None` when it did not run) and on Linux.
fn rows(results: &[(ConformanceTest, Option<Outcome>)]) -> String {
    let mut out = String::new();
    let agree = |t: &ConformanceTest, r: &Option<Outcome>| match (t.linux, r) {
        (Outcome::Pass, Some(Outcome::Pass)) => true,
        (Outcome::Pass, _) => false,
        _ => true,
    };
    out.push_str("| test | NeoOS | Linux | |\n|---|---|---|---|\n");
    for (t, r) in results {
        let neoos = r.map_or("not run".to_string(), |o| o.word());
        let mark = if agree(t, r) { "" } else { "**differs**" };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            t.label(),
            neoos,
            t.linux.word(),
            mark
        ));
    }
    out
}

/// The counts per group of interfaces.
fn summary(results: &[(ConformanceTest, Option<Outcome>)]) -> String {
    let mut out = String::new();
    for group in [
        &["mmap", "munmap"][..],
        &["shm_open", "shm_unlink"],
        &["mlock", "munlock", "mlockall", "munlockall"],
    ] {
        let of: Vec<_> = results
            .iter()
            .filter(|(t, _)| group.contains(&t.interface.as_str()))
            .collect();
        let linux_pass = of.iter().filter(|(t, _)| t.linux == Outcome::Pass).count();
        let both = of
            .iter()
            .filter(|(t, r)| t.linux == Outcome::Pass && *r == Some(Outcome::Pass))
            .count();
        let neoos_pass = of.iter().filter(|(_, r)| *r == Some(Outcome::Pass)).count();
        out.push_str(&format!(
            "- {}: {} tests; PASS on Linux {linux_pass}, on NeoOS {neoos_pass}; \
             Linux-passing tests passing on NeoOS: {both} of {linux_pass}.\n",
            group.join(" + "),
            of.len()
        ));
    }
    out
}

/// The whole text of docs/conformance.md for `results`.
pub fn document(results: &[(ConformanceTest, Option<Outcome>)]) -> String {
    format!(
        "# Conformance: the Open POSIX Test Suite on NeoOS\n\n\
         Tests NeoOS did not write: the memory tests of the Open POSIX Test Suite \
         (as shipped in the Linux Test Project, `../shared/conformance/`), each built \
         unmodified with `musl-gcc -static -Iinclude lib/common.c TEST.c` and run on \
         NeoOS as a Linux program by `cargo test` (one test per program, named like \
         `posix_mmap_1_1`). A test that passed on Linux must pass on NeoOS: a FAIL, a \
         crash or a hang of one fails `cargo test`. A test that did not pass on Linux \
         either may end with any of the suite's results (a crash still fails); \
         `shm_open/23-1`, which hangs on Linux, is listed as ignored and not run.\n\n\
         The Linux column is the reference of `../shared/conformance/README.md` \
         (mmap, munmap, shm_open, shm_unlink); the mlock family was run the same way \
         on the build machine's Linux (6.18, as root), where all of it passed.\n\n\
         This page is generated from a real run:\n\n\
         ```sh\n\
         NEOOS_CONFORMANCE_TABLE=docs/conformance.md cargo test --test in_qemu posix_\n\
         ```\n\n\
         ## Summary\n\n{}\n## Every test\n\n{}",
        summary(results),
        rows(results)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_ids_are_two_numbers() {
        assert!(is_test_id("1-1"));
        assert!(is_test_id("11-6"));
        assert!(!is_test_id("1-1-1"));
        assert!(!is_test_id("assertions"));
        assert!(!is_test_id("1-"));
    }

    #[test]
    fn statuses_read_as_the_suite_names_them() {
        assert_eq!(Outcome::of_status(0), Outcome::Pass);
        assert_eq!(Outcome::of_status(4), Outcome::Unsupported);
        assert_eq!(Outcome::of_status(139).word(), "killed by signal 11");
        assert_eq!(Outcome::Untested.status(), Some(5));
    }

    #[test]
    fn names_sort_by_number_and_read_as_cargo_test_names() {
        let mut ids = vec!["11-1", "1-2", "2-1", "1-1"];
        ids.sort_by_key(|id| numeric_key(id));
        assert_eq!(ids, ["1-1", "1-2", "2-1", "11-1"]);
        let t = ConformanceTest {
            interface: "shm_open".into(),
            id: "39-2".into(),
            source: PathBuf::new(),
            linux: Outcome::Untested,
        };
        assert_eq!(t.test_name(), "posix_shm_open_39_2");
        assert_eq!(t.label(), "shm_open/39-2");
    }
}
