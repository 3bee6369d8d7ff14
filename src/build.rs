//! Building: the kernel (a nested cargo build with the kernel's own flags), libneo
//! and C programs (the machine's gcc, freestanding and static), and the tools
//! both need (QEMU is installed with apt when missing and we are root).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{out_dir, repo_root, Result, ToolError};

/// The gcc flags of every NeoOS C program, one per line (`#` starts a
/// comment line): `user/libneo/cflags`, which `user/build.sh` reads too.
const CFLAGS_FILE: &str = include_str!("../user/libneo/cflags");

/// The flags of [`CFLAGS_FILE`].
pub fn cflags() -> impl Iterator<Item = &'static str> {
    CFLAGS_FILE
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// How gcc's warnings count. The repository's own programs are built with
/// `-Werror` (as `user/build.sh` does); a user's program compiles with its
/// warnings shown; the specification's examples, compiled verbatim, with
/// theirs kept quiet (they are known and not ours to mend).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Warnings {
    Errors,
    Shown,
    Quiet,
}

/// libneo's sources, linked into every program.
const LIBNEO_SOURCES: &[&str] = &["crt0.S", "syscalls.c", "neo.c"];

fn run(cmd: &mut Command, what: &str) -> Result<()> {
    let status = cmd
        .status()
        .map_err(|e| ToolError(format!("{what}: cannot start {:?}: {e}", cmd.get_program())))?;
    if status.success() {
        Ok(())
    } else {
        Err(ToolError(format!("{what} failed ({status})")))
    }
}

fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Makes sure QEMU and gcc are there, installing QEMU when we may.
pub fn ensure_tools() -> Result<()> {
    if !have("gcc") {
        return Err(ToolError("gcc is missing: apt-get install -y gcc".into()));
    }
    ensure_installed("qemu-system-x86_64", "qemu-system-x86", || {
        have("qemu-system-x86_64")
    })
}

/// Makes sure `musl-gcc` is there (for Linux programs), installing
/// musl-tools with apt when it is missing and we are root.
pub fn ensure_musl() -> Result<()> {
    ensure_installed("musl-gcc", "musl-tools", have_musl_gcc)
}

/// Makes sure `program` is there (`present` says whether it is),
/// installing Debian's `package` with apt when it is missing and we are
/// root; otherwise says which command would.
pub(crate) fn ensure_installed(
    program: &str,
    package: &str,
    present: impl Fn() -> bool,
) -> Result<()> {
    if present() {
        return Ok(());
    }
    if !is_root() {
        return Err(ToolError(format!(
            "{program} is missing; install it with: apt-get install -y {package}"
        )));
    }
    eprintln!("neoos: installing {package} (apt-get install -y {package})");
    run(
        Command::new("apt-get").args(["update", "-qq"]),
        "apt-get update",
    )?;
    run(
        Command::new("apt-get")
            .args(["install", "-y", "-qq", package])
            .env("DEBIAN_FRONTEND", "noninteractive"),
        &format!("apt-get install {package}"),
    )?;
    if present() {
        Ok(())
    } else {
        Err(ToolError(format!(
            "{program} is still missing after apt-get install {package}"
        )))
    }
}

/// Where Debian's busybox-static puts busybox on the host (and where NeoOS
/// has it: `/bin/busybox` of the initial file system).
pub const BUSYBOX: &str = "/bin/busybox";

/// Makes sure a static busybox is at [`BUSYBOX`] on the host, installing
/// Debian's busybox-static with apt when it is missing (or only the
/// dynamically linked busybox is there) and we are root; returns its path.
pub fn ensure_busybox() -> Result<PathBuf> {
    ensure_installed(BUSYBOX, "busybox-static", || {
        is_static_elf(Path::new(BUSYBOX))
    })?;
    Ok(PathBuf::from(BUSYBOX))
}

/// Whether `path` is an x86_64 ELF executable without a program
/// interpreter (`PT_INTERP`): a static program NeoOS can run.
pub fn is_static_elf(path: &Path) -> bool {
    let Ok(data) = std::fs::read(path) else {
        return false;
    };
    let half = |at: usize| {
        data.get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let word = |at: usize| {
        data.get(at..at + 4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap_or_default()))
    };
    let quad = |at: usize| {
        data.get(at..at + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()))
    };
    const PT_INTERP: u32 = 3;
    const EM_X86_64: u16 = 62;
    if !data.starts_with(b"\x7fELF\x02\x01") || half(18) != Some(EM_X86_64) {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (quad(32), half(54), half(56)) else {
        return false;
    };
    (0..usize::from(phnum)).all(|i| {
        let at = phoff as usize + i * usize::from(phentsize);
        word(at).is_some_and(|kind| kind != PT_INTERP)
    })
}

fn have_musl_gcc() -> bool {
    Command::new("musl-gcc")
        .arg("-dumpversion")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Flags of a Linux program built with musl or glibc: static, not
/// position-independent, with the ABI page size.
const LINUX_FLAGS: &[&str] = &[
    "-static",
    "-no-pie",
    "-fno-pie",
    "-O2",
    "-g",
    "-std=gnu17",
    "-Wall",
    "-Wextra",
    "-Wl,-z,max-page-size=0x1000",
];

/// Compiles one C program with `musl-gcc -static` into `out`: an ordinary
/// Linux program (no libneo, no NeoOS note), which NeoOS runs with its
/// Linux personality.
pub fn musl_program(source: &Path, warnings: Warnings, out: &Path) -> Result<()> {
    linux_program("musl-gcc", source, warnings, out)
}

/// Compiles one C program with `gcc -static` (glibc) into `out`: a Linux
/// program.
pub fn glibc_program(source: &Path, warnings: Warnings, out: &Path) -> Result<()> {
    linux_program("gcc", source, warnings, out)
}

fn linux_program(compiler: &str, source: &Path, warnings: Warnings, out: &Path) -> Result<()> {
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut cmd = Command::new(compiler);
    cmd.args(LINUX_FLAGS);
    if warnings == Warnings::Errors {
        cmd.arg("-Werror");
    }
    cmd.arg("-o").arg(out).arg(source);
    compile(&mut cmd, source, warnings)
}

/// Builds the kernel with the initial file system image `initfs` (a cpio
/// archive) built in, and returns the path of its ELF image: a copy beside
/// the image (`initfs.kernel`), so that another build with another image
/// (`cargo run` while the suite boots its kernel) never changes the kernel
/// a caller boots. Only the kernel crate is recompiled when the image
/// changes; builds take turns (a lock file) from the build to the copy.
pub fn kernel(initfs: &Path) -> Result<PathBuf> {
    let initfs = initfs.canonicalize()?;
    let target_dir = out_dir().join("kernel-target");
    std::fs::create_dir_all(&target_dir)?;
    let turn = std::fs::File::create(target_dir.join("neoos-build.lock"))?;
    turn.lock()?;
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(repo_root().join("kernel"))
        .args(["build", "--release", "--quiet"])
        .env("CARGO_TARGET_DIR", &target_dir)
        .env("NEOOS_INITFS", &initfs);
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "RUSTC_WRAPPER",
    ] {
        cmd.env_remove(var);
    }
    run(&mut cmd, "kernel build")?;
    let built = target_dir.join("x86_64-unknown-linux-gnu/release/neoos-kernel");
    let own = initfs.with_extension("kernel");
    std::fs::copy(&built, &own)?;
    Ok(own)
}

/// Compiles one C program against libneo into `out`, with `extra` sources
/// (e.g. a stub) in the same link. The program is included into a wrapper
/// translation unit with libneo's main trailer (which tells crt0 whether
/// `main` returns void).
pub fn c_program(source: &Path, extra: &[PathBuf], warnings: Warnings, out: &Path) -> Result<()> {
    let trailer = repo_root().join("user/libneo/src/main_trailer.h");
    c_program_with_trailer(source, extra, &trailer, warnings, out)
}

/// As [`c_program`], with another trailer (for sources without a `main`).
pub fn c_program_with_trailer(
    source: &Path,
    extra: &[PathBuf],
    trailer: &Path,
    warnings: Warnings,
    out: &Path,
) -> Result<()> {
    let libneo = repo_root().join("user/libneo");
    let wrap_dir = out_dir().join("wrap");
    std::fs::create_dir_all(&wrap_dir)?;
    let name = out
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("program");
    let wrapper = wrap_dir.join(format!("{name}.c"));
    let source = std::fs::canonicalize(source)
        .map_err(|e| ToolError(format!("{}: {e}", source.display())))?;
    std::fs::write(
        &wrapper,
        format!(
            "#include \"{}\"\n#include \"{}\"\n",
            source.display(),
            trailer.display()
        ),
    )?;
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut cmd = Command::new("gcc");
    cmd.args(cflags());
    if warnings == Warnings::Errors {
        cmd.arg("-Werror");
    }
    cmd.arg("-I")
        .arg(libneo.join("include"))
        .arg("-o")
        .arg(out)
        .arg(&wrapper)
        .args(extra)
        .args(LIBNEO_SOURCES.iter().map(|s| libneo.join("src").join(s)));
    compile(&mut cmd, &source, warnings)
}

/// Runs gcc with its messages captured: they are part of the error when it
/// fails, printed when it succeeds with warnings (unless `Quiet`).
fn compile(cmd: &mut Command, source: &Path, warnings: Warnings) -> Result<()> {
    let output = cmd
        .output()
        .map_err(|e| ToolError(format!("cannot start {:?}: {e}", cmd.get_program())))?;
    let messages = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(ToolError(format!(
            "compiling {} failed ({}):\n{}",
            source.display(),
            output.status,
            messages.trim_end()
        )));
    }
    if warnings != Warnings::Quiet {
        eprint!("{messages}");
    }
    Ok(())
}

/// Compiles every `*.c` of the repository's folder `dir` (with `-Werror`) into
/// `out/<name>`; returns (name, binary).
pub fn c_programs_in(dir: &Path, out: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut built = Vec::new();
    for source in c_sources(dir)? {
        let name = source
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("program")
            .to_string();
        let binary = out.join(&name);
        c_program(&source, &[], Warnings::Errors, &binary)?;
        built.push((name, binary));
    }
    Ok(built)
}

/// The `*.c` files of a folder, sorted (none if the folder is missing).
pub fn c_sources(dir: &Path) -> Result<Vec<PathBuf>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut sources: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "c"))
        .collect();
    sources.sort();
    Ok(sources)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_link_with_the_abi_page_size() {
        let wanted = format!("-Wl,-z,max-page-size={:#x}", neoos_abi::PAGE_SIZE);
        assert!(
            cflags().any(|f| f == wanted),
            "user/libneo/cflags lacks {wanted}"
        );
    }

    #[test]
    fn cflags_skips_comments_and_blank_lines() {
        assert!(cflags().all(|f| f.starts_with('-')));
        assert!(cflags().any(|f| f == "-ffreestanding"));
    }
}
