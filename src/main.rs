//! `cargo run` — builds NeoOS and boots it under QEMU.
//!
//! ```text
//! cargo run                         the demo, then power off
//! cargo run -- prog.c [more.c ...]  compile and run your programs, in order
//! cargo run -- --shell              an interactive shell
//! cargo run -- --gdb ...            wait for gdb on localhost:1234
//! cargo run -- --timeout 60 ...     time limit in seconds (default 120)
//! cargo run -- --bench [--linux]    the benchmark of docs/benchmarks.md
//! cargo run -- --soak N [--calls M] N children of M random system calls each
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use neoos::bench::{self, BenchOptions};
use neoos::boot::{self, BootOptions, Ending};
use neoos::{build, initfs, out_dir, repo_root, Result, ToolError};

/// The time limit of a boot, unless --timeout says otherwise.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// The benchmark's, per boot (instruction counting slows QEMU down).
const DEFAULT_BENCH_TIMEOUT: Duration = Duration::from_secs(1800);

struct Options {
    shell: bool,
    gdb: bool,
    bench: bool,
    linux: bool,
    /// `--soak`: children and calls per child.
    soak: Option<(u64, u64)>,
    timeout: Option<Duration>,
    programs: Vec<PathBuf>,
}

/// Calls per child of `--soak` unless `--calls` says otherwise.
const DEFAULT_SOAK_CALLS: u64 = 1500;

/// The number that must follow `flag`.
fn number_after(args: &mut impl Iterator<Item = String>, flag: &str) -> Result<u64> {
    args.next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ToolError(format!("{flag} takes a number")))
}

fn parse_args() -> Result<Options> {
    let mut o = Options {
        shell: false,
        gdb: false,
        bench: false,
        linux: false,
        soak: None,
        timeout: None,
        programs: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--shell" => o.shell = true,
            "--gdb" => o.gdb = true,
            "--bench" => o.bench = true,
            "--linux" => o.linux = true,
            "--soak" => {
                let children = number_after(&mut args, "--soak")?;
                o.soak = Some((children, o.soak.map_or(DEFAULT_SOAK_CALLS, |s| s.1)));
            }
            "--calls" => {
                let calls = number_after(&mut args, "--calls")?;
                o.soak = Some((o.soak.map_or(0, |s| s.0), calls));
            }
            "--timeout" => {
                o.timeout = Some(Duration::from_secs(number_after(&mut args, "--timeout")?))
            }
            "--" => {}
            "-h" | "--help" => {
                println!("usage: cargo run [-- [--shell] [--gdb] [--timeout SECS] [prog.c ...]]");
                println!("       cargo run -- --bench [--linux] [--timeout SECS]");
                println!("       cargo run -- --soak CHILDREN [--calls N] [--timeout SECS]");
                std::process::exit(0);
            }
            flag if flag.starts_with("--") => {
                return Err(ToolError(format!("unknown option {flag}")))
            }
            file => o.programs.push(PathBuf::from(file)),
        }
    }
    if o.linux && !o.bench {
        return Err(ToolError("--linux goes with --bench".into()));
    }
    if o.soak.is_some_and(|(children, _)| children == 0) {
        return Err(ToolError(
            "--soak takes a number of children above 0".into(),
        ));
    }
    if o.soak.is_some() && (o.bench || o.shell || !o.programs.is_empty()) {
        return Err(ToolError(
            "--soak runs alone (no --bench, --shell or programs)".into(),
        ));
    }
    if o.bench && (o.shell || o.gdb || !o.programs.is_empty()) {
        return Err(ToolError(
            "--bench runs alone (no --shell, --gdb or programs)".into(),
        ));
    }
    Ok(o)
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("neoos: {e}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<bool> {
    let o = parse_args()?;
    if o.bench {
        return bench::run(&BenchOptions {
            linux: o.linux,
            timeout: o.timeout.unwrap_or(DEFAULT_BENCH_TIMEOUT),
        });
    }
    build::ensure_tools()?;
    eprintln!("neoos: building the programs");
    let bin_dir = out_dir().join("run-bin");
    let mut image = initfs::standard();
    for (name, binary) in build::c_programs_in(&repo_root().join("user/programs"), &bin_dir)? {
        image.program(&format!("/bin/{name}"), &binary)?;
    }
    let mut to_run = Vec::new();
    for source in &o.programs {
        let name = source
            .file_stem()
            .and_then(|s| s.to_str())
            .ok_or_else(|| ToolError(format!("{}: not a C file name", source.display())))?;
        let binary = out_dir().join("user-bin").join(name);
        build::c_program(source, &[], &binary)?;
        let path = format!("/bin/{name}");
        image.program(&path, &binary)?;
        to_run.push(path);
    }
    if let Some((children, calls)) = o.soak {
        image.file("/etc/soak", format!("{children} {calls}").as_bytes());
        to_run.push("/bin/soak".to_string());
    }
    let image_path = out_dir().join("initfs.cpio");
    image.write(&image_path)?;
    eprintln!("neoos: building the kernel (with the programs and files built in)");
    let kernel = build::kernel(&image_path)?;
    let command_line = if o.shell {
        "run=/bin/shell".to_string()
    } else if to_run.is_empty() {
        "run=/bin/demo".to_string()
    } else {
        format!("run={}", to_run.join(","))
    };
    if o.gdb {
        eprintln!(
            "neoos: QEMU waits for gdb: gdb {} -ex 'target remote :1234'",
            kernel.display()
        );
    }
    let outcome = boot::boot(&BootOptions {
        kernel: &kernel,
        initrd: None,
        command_line,
        timeout: o.timeout.unwrap_or(DEFAULT_TIMEOUT),
        echo: true,
        interactive: o.shell,
        gdb: o.gdb,
    })?;
    report(&outcome, &to_run)
}

/// Prints a summary; true when everything ran and every program exited with 0.
fn report(outcome: &boot::BootOutcome, expected: &[String]) -> Result<bool> {
    let mut ok = true;
    match &outcome.ending {
        Ending::Clean => {}
        Ending::KernelFailure => {
            eprintln!("neoos: the kernel failed");
            ok = false;
        }
        Ending::TimedOut => {
            eprintln!("neoos: time limit reached; NeoOS was stopped");
            ok = false;
        }
        Ending::Other(code) => {
            eprintln!("neoos: QEMU ended unexpectedly (status {code:?}; 0 means a triple fault)");
            ok = false;
        }
    }
    for (path, status) in &outcome.programs {
        if *status != 0 {
            eprintln!("neoos: {path} ended with status {status}");
            ok = false;
        }
    }
    for path in expected {
        if !outcome.programs.iter().any(|(p, _)| p == path) {
            eprintln!("neoos: {path} did not finish");
            ok = false;
        }
    }
    Ok(ok)
}
