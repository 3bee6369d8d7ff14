//! The in-QEMU test suite: every program in `user/tests/` is one test, run on
//! a real NeoOS boot. A test passes when it ends with the status its first
//! line names (`// expect-status: N`, default 0). The specification's own C
//! examples (`../shared/seeds/*.txt`) run verbatim too, followed by a program
//! that checks what they left in the file. After every boot the kernel must
//! have powered off cleanly with every frame returned.
//!
//! A crash, a hang (time limit), a kernel panic or a missing result is a
//! failure, never a pass: after one, the remaining tests run in a new boot.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use neoos::boot::{self, BootOptions, Ending};
use neoos::{build, initfs, out_dir, repo_root, seeds, Result};

/// A test that did not compile: (name, reason).
type Broken = (String, String);

/// One test: the program to run and the status it must end with.
struct Case {
    name: String,
    path: String,
    expect: i64,
}

fn expected_status(source: &Path) -> i64 {
    let text = std::fs::read_to_string(source).unwrap_or_default();
    text.lines()
        .next()
        .and_then(|l| l.trim().strip_prefix("// expect-status:"))
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// Compiles everything into the image; returns the tests in run order, and
/// the tests that did not compile (each a failure, with the reason).
fn prepare(image: &mut initfs::Image) -> Result<(Vec<Case>, Vec<Broken>)> {
    let root = repo_root();
    let bin = out_dir().join("test-bin");
    for dir in ["user/programs", "user/tests/helpers"] {
        for (name, binary) in build::c_programs_in(&root.join(dir), &bin)? {
            image.program(&format!("/bin/{name}"), &binary)?;
        }
    }
    let mut cases = Vec::new();
    let mut broken = Vec::new();
    for source in build::c_sources(&root.join("user/tests"))? {
        let name = source
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("test")
            .to_string();
        let binary = bin.join(&name);
        if let Err(e) = build::c_program(&source, &[], &binary) {
            broken.push((name, e.0));
            continue;
        }
        let path = format!("/bin/{name}");
        image.program(&path, &binary)?;
        cases.push(Case {
            name,
            path,
            expect: expected_status(&source),
        });
    }
    cases.extend(prepare_seed_examples(image, &bin)?);
    Ok((cases, broken))
}

/// The seeds' examples, compiled verbatim with a stub for what they leave
/// undefined, then the program that checks the data file afterwards.
fn prepare_seed_examples(image: &mut initfs::Image, bin: &Path) -> Result<Vec<Case>> {
    let examples = seeds::examples(&seeds::seeds_dir())?;
    if examples.is_empty() {
        return Ok(Vec::new());
    }
    let stub = repo_root().join("user/seeds/stub.c");
    let dir = out_dir().join("seed-examples");
    std::fs::create_dir_all(&dir)?;
    let mut cases = Vec::new();
    for example in examples {
        let source = dir.join(format!("{}.c", example.name));
        std::fs::write(&source, &example.code)?;
        let binary = bin.join(&example.name);
        let trailer = if example.has_main {
            repo_root().join("user/libneo/src/main_trailer.h")
        } else {
            repo_root().join("user/seeds/no_main_trailer.h")
        };
        build::c_program_with_trailer(&source, std::slice::from_ref(&stub), &trailer, &binary)?;
        let path = format!("/bin/{}", example.name);
        image.program(&path, &binary)?;
        cases.push(Case {
            name: format!("seed_example_{}", example.name),
            path,
            expect: 0,
        });
    }
    let checker = repo_root().join("user/seeds/check_datos_after_examples.c");
    let binary = bin.join("check_datos_after_examples");
    build::c_program(&checker, &[], &binary)?;
    image.program("/bin/check_datos_after_examples", &binary)?;
    cases.push(Case {
        name: "seed_examples_left_the_file_as_they_wrote_it".into(),
        path: "/bin/check_datos_after_examples".into(),
        expect: 0,
    });
    Ok(cases)
}

/// The console lines that belong to the program ending at line `end`.
fn program_output(console: &[String], end: usize) -> Vec<String> {
    let start = console[..end]
        .iter()
        .rposition(|l| boot::parse_program_line(l).is_some())
        .map_or(0, |i| i + 1);
    console[start..=end].to_vec()
}

struct Tally {
    passed: usize,
    failed: usize,
}

impl Tally {
    fn record(&mut self, name: &str, ok: bool, details: &[String]) {
        if ok {
            self.passed += 1;
            println!("test {name} ... ok");
        } else {
            self.failed += 1;
            println!("test {name} ... FAILED");
            for line in details {
                println!("    | {line}");
            }
        }
    }
}

/// Boots once with `cases`; records each finished one; returns how many were
/// decided (all of them, or up to and including the one that broke the boot).
fn run_boot(kernel: &Path, cases: &[Case], tally: &mut Tally) -> Result<usize> {
    let paths: Vec<&str> = cases.iter().map(|c| c.path.as_str()).collect();
    let outcome = boot::boot(&BootOptions {
        kernel,
        initrd: None,
        command_line: format!("run={}", paths.join(",")),
        timeout: Duration::from_secs(120),
        echo: false,
        interactive: false,
        gdb: false,
    })?;
    let mut decided = 0;
    for (i, line) in outcome.console.iter().enumerate() {
        let Some((path, status)) = boot::parse_program_line(line) else {
            continue;
        };
        let Some(case) = cases.get(decided).filter(|c| c.path == path) else {
            continue;
        };
        let mut details = program_output(&outcome.console, i);
        details.push(format!("(expected status {}, got {status})", case.expect));
        tally.record(&case.name, status == case.expect, &details);
        decided += 1;
    }
    if outcome.ending == Ending::Clean && decided == cases.len() {
        let leak = frames_leaked(&outcome.console);
        tally.record(
            "kernel_returns_every_frame_after_the_programs",
            leak == Some(false),
            &outcome.console[outcome.console.len().saturating_sub(3)..],
        );
        return Ok(decided);
    }
    if let Some(case) = cases.get(decided) {
        let mut details: Vec<String> = outcome
            .console
            .iter()
            .rev()
            .take(30)
            .rev()
            .cloned()
            .collect();
        details.push(format!(
            "(boot ended: {:?}, before this test finished)",
            outcome.ending
        ));
        tally.record(&case.name, false, &details);
        decided += 1;
    }
    Ok(decided)
}

/// From the kernel's closing line `all programs done; F frames free (S at start)`.
fn frames_leaked(console: &[String]) -> Option<bool> {
    let line = console
        .iter()
        .rev()
        .find(|l| l.contains("all programs done;"))?;
    let numbers: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    match numbers[..] {
        [free_after, free_before] => Some(free_after != free_before),
        _ => None,
    }
}

fn main() -> ExitCode {
    // `cargo test -- --list` and filters are not supported: the suite is one boot.
    match run_all() {
        Ok(tally) => {
            println!();
            println!(
                "in-QEMU tests: {} passed, {} failed",
                tally.passed, tally.failed
            );
            if tally.failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            println!("in-QEMU tests could not run: {e}");
            println!("0 passed, 1 failed");
            ExitCode::FAILURE
        }
    }
}

fn run_all() -> Result<Tally> {
    build::ensure_tools()?;
    let mut image = initfs::standard();
    let (cases, broken) = prepare(&mut image)?;
    let image_path = out_dir().join("test-initfs.cpio");
    image.write(&image_path)?;
    let kernel: PathBuf = build::kernel(&image_path)?;
    println!("running {} in-QEMU tests", cases.len() + broken.len());
    let mut tally = Tally {
        passed: 0,
        failed: 0,
    };
    for (name, why) in &broken {
        tally.record(name, false, std::slice::from_ref(why));
    }
    let mut next = 0;
    while next < cases.len() {
        next += run_boot(&kernel, &cases[next..], &mut tally)?;
    }
    Ok(tally)
}
