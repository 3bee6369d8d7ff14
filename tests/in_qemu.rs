//! The in-QEMU test suite, a cargo test target run by libtest-mimic: every
//! program in `user/tests/` is one test, run on a real NeoOS boot. A test
//! passes when it ends with the status its first line names
//! (`// expect-status: N`, default 0) and, when its leading comment lines
//! say `// expect-output: TEXT`, printed each such line. The programs of
//! `user/tests/linux/` are built with `musl-gcc -static`, those of
//! `user/tests/glibc/` with `gcc -static`: Linux programs, run by NeoOS's
//! Linux personality. The specification's own C examples
//! (`../shared/seeds/*.txt`) run verbatim too, followed by a program that
//! checks what they left in the file. `kernel_returns_every_frame_after_the_programs`
//! passes when the boot powered off normally with every frame returned.
//!
//! The Open POSIX Test Suite's memory tests (`../shared/conformance`, see
//! `neoos::conformance`) run too, each built unmodified with musl, one test
//! per program (`posix_mmap_1_1`): a test that passed on Linux must pass
//! (exit status 0); one that did not pass on Linux either may end with any
//! of the suite's results (a crash still fails); one that hangs on Linux is
//! listed as ignored. With `NEOOS_CONFORMANCE_TABLE=FILE` the runner writes
//! the table of docs/conformance.md from the run to FILE. The Linux
//! programs (musl, glibc, conformance) run in a boot of their own.
//!
//! `cargo test NAME` runs only the tests whose names contain NAME, all in one
//! boot (none: no boot); `cargo test -- --list` lists them. Each result prints
//! as its program ends. A crash, a hang (time limit), a kernel panic or a
//! missing result is a failure, never a pass: after one, the remaining tests
//! run in a new boot. The last test of a boot also fails when the kernel does
//! not then power off normally.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::Duration;

use libtest_mimic::{Arguments, Failed, Trial};
use neoos::boot::{self, BootOptions, BootOutcome, Ending, Machine};
use neoos::build::{self, Warnings};
use neoos::conformance::{self, ConformanceTest, Outcome};
use neoos::seeds::{self, SeedExample};
use neoos::{initfs, out_dir, repo_root, Result, ToolError};

/// The test that checks the kernel's closing frame count.
const FRAME_TEST: &str = "kernel_returns_every_frame_after_the_programs";
/// The time limit of one boot.
const BOOT_TIMEOUT: Duration = Duration::from_secs(120);
/// Console lines shown with a test that broke its boot.
const LINES_BEFORE_A_BREAK: usize = 30;
/// Time added to a boot's limit for each conformance test it runs (some
/// sleep a few seconds).
const CONFORMANCE_STEP_TIME: Duration = Duration::from_secs(3);
/// The suite's results a test that did not pass on Linux may end with.
const SUITE_RESULTS: [i64; 5] = [0, 1, 2, 4, 5];

/// Where a test's program comes from.
enum Source {
    /// A file of `user/tests/`.
    File(PathBuf),
    /// A file of `user/tests/linux/`, built with musl: a Linux program.
    Musl(PathBuf),
    /// A file of `user/tests/glibc/`, built with `gcc -static`: a Linux
    /// program on glibc.
    Glibc(PathBuf),
    /// An example of a seed document, compiled verbatim.
    SeedExample(SeedExample),
    /// A test of the Open POSIX Test Suite (in the suite's folder), built
    /// unmodified with musl.
    Conformance(PathBuf, ConformanceTest),
}

/// One in-QEMU test: a program, the status it must end with, and the tests
/// that must run before it in the same boot.
struct Case {
    name: String,
    /// Its path in the image.
    path: String,
    expect: i64,
    /// Lines the program must print.
    expect_output: Vec<String>,
    source: Source,
    needs: Vec<usize>,
    /// Whether any of the suite's results is accepted (a conformance test
    /// that did not pass on Linux either).
    any_suite_result: bool,
    /// Listed, never run (a conformance test that hangs on Linux).
    ignored: bool,
}

/// Every test of the suite, in run order, found without compiling anything.
fn discover() -> Result<Vec<Case>> {
    let mut cases = Vec::new();
    let neo = build::c_sources(&repo_root().join("user/tests"))?;
    let musl = build::c_sources(&repo_root().join("user/tests/linux"))?;
    let glibc = build::c_sources(&repo_root().join("user/tests/glibc"))?;
    let sources = neo
        .into_iter()
        .map(|s| (Source::File(s.clone()), s))
        .chain(musl.into_iter().map(|s| (Source::Musl(s.clone()), s)))
        .chain(glibc.into_iter().map(|s| (Source::Glibc(s.clone()), s)));
    for (kind, source) in sources {
        let name = source
            .file_stem()
            .and_then(|s| s.to_str())
            .ok_or_else(|| ToolError(format!("{}: not a test name", source.display())))?
            .to_string();
        cases.push(Case {
            path: format!("/bin/{name}"),
            expect: expected_status(&source),
            expect_output: expected_output(&source),
            name,
            source: kind,
            needs: Vec::new(),
            any_suite_result: false,
            ignored: false,
        });
    }
    let first_example = cases.len();
    for example in seeds::examples(&seeds::seeds_dir())? {
        cases.push(Case {
            name: format!("seed_example_{}", example.name),
            path: format!("/bin/{}", example.name),
            expect: 0,
            expect_output: Vec::new(),
            source: Source::SeedExample(example),
            needs: Vec::new(),
            any_suite_result: false,
            ignored: false,
        });
    }
    if cases.len() > first_example {
        cases.push(Case {
            name: "seed_examples_left_the_file_as_they_wrote_it".into(),
            path: "/bin/check_datos_after_examples".into(),
            expect: 0,
            expect_output: Vec::new(),
            source: Source::File(repo_root().join("user/seeds/check_datos_after_examples.c")),
            needs: (first_example..cases.len()).collect(),
            any_suite_result: false,
            ignored: false,
        });
    }
    if let Some(suite) = conformance::suite_dir() {
        for test in conformance::tests(&suite)? {
            let name = test.test_name();
            cases.push(Case {
                path: format!("/bin/{name}"),
                name,
                expect: 0,
                expect_output: Vec::new(),
                any_suite_result: test.linux != Outcome::Pass,
                ignored: !test.runs(),
                source: Source::Conformance(suite.clone(), test),
                needs: Vec::new(),
            });
        }
    } else {
        eprintln!(
            "in_qemu: the Open POSIX Test Suite is not at ../shared/conformance \
             (set NEOOS_POSIX_SUITE): its tests are not run"
        );
    }
    Ok(cases)
}

fn expected_status(source: &Path) -> i64 {
    let text = std::fs::read_to_string(source).unwrap_or_default();
    text.lines()
        .next()
        .and_then(|l| l.trim().strip_prefix("// expect-status:"))
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// The `// expect-output: TEXT` lines among the leading comment lines.
fn expected_output(source: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(source).unwrap_or_default();
    text.lines()
        .take_while(|l| l.trim_start().starts_with("//"))
        .filter_map(|l| l.trim().strip_prefix("// expect-output:"))
        .map(|s| s.trim().to_string())
        .collect()
}

/// Whether libtest-mimic will run the test `name` under `args`.
fn selected(args: &Arguments, name: &str) -> bool {
    let probe = Trial::test(name, || Ok(()));
    !args.is_filtered_out(&probe) && !args.is_ignored(&probe)
}

/// Who hears a program's result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Listener {
    /// The selected test of this index.
    Test(usize),
    /// A program run only because a selected test needs it (or, with no
    /// program selected, for the frame test): its failure goes to that test.
    Prerequisite(Option<usize>),
}

/// A program of the boot plan.
struct Step {
    case: usize,
    listener: Listener,
}

/// The programs to boot, in order: the selected tests and what they need;
/// with only the frame test selected, every program.
fn plan(cases: &[Case], chosen: &[bool], frame_test: bool) -> Vec<Step> {
    let mut needed_by: BTreeMap<usize, usize> = BTreeMap::new();
    for (i, case) in cases.iter().enumerate().filter(|(i, _)| chosen[*i]) {
        for &need in &case.needs {
            needed_by.entry(need).or_insert(i);
        }
    }
    let none_chosen = !chosen.contains(&true);
    (0..cases.len())
        .filter_map(|i| {
            let listener = if chosen[i] {
                Listener::Test(i)
            } else if let Some(&dependent) = needed_by.get(&i) {
                Listener::Prerequisite(Some(dependent))
            } else if none_chosen && frame_test {
                Listener::Prerequisite(None)
            } else {
                return None;
            };
            Some(Step { case: i, listener })
        })
        .collect()
}

/// Compiles the programs every test may start (`user/programs`, the helpers)
/// and the steps' own into the image. A step that does not compile is
/// returned with the reason, and left out of the image.
fn build_image(
    cases: &[Case],
    steps: &[&Step],
    file_name: &str,
) -> Result<(PathBuf, Vec<(usize, String)>)> {
    let root = repo_root();
    let bin = out_dir().join("test-bin");
    let mut image = initfs::standard()?;
    for dir in ["user/programs", "user/tests/helpers"] {
        for (name, binary) in build::c_programs_in(&root.join(dir), &bin)? {
            image.program(&format!("/bin/{name}"), &binary)?;
        }
    }
    let mut broken = Vec::new();
    for step in steps {
        let case = &cases[step.case];
        let binary = bin.join(case.path.trim_start_matches("/bin/"));
        match compile(case, &binary) {
            Ok(()) => image.program(&case.path, &binary)?,
            Err(e) => broken.push((step.case, e.0)),
        }
    }
    let image_path = out_dir().join(file_name);
    image.write(&image_path)?;
    Ok((image_path, broken))
}

fn compile(case: &Case, binary: &Path) -> Result<()> {
    match &case.source {
        Source::File(source) => build::c_program(source, &[], Warnings::Errors, binary),
        Source::Musl(source) => build::musl_program(source, Warnings::Errors, binary),
        Source::Glibc(source) => build::glibc_program(source, Warnings::Errors, binary),
        Source::Conformance(suite, test) => {
            if is_newer(binary, &[&test.source, &suite.join("lib/common.c")]) {
                return Ok(());
            }
            conformance::build(suite, test, binary)
        }
        Source::SeedExample(example) => {
            let dir = out_dir().join("seed-examples");
            std::fs::create_dir_all(&dir)?;
            let source = dir.join(format!("{}.c", example.name));
            std::fs::write(&source, &example.code)?;
            let stub = repo_root().join("user/seeds/stub.c");
            let trailer = if example.has_main {
                repo_root().join("user/libneo/src/main_trailer.h")
            } else {
                repo_root().join("user/seeds/no_main_trailer.h")
            };
            build::c_program_with_trailer(
                &source,
                std::slice::from_ref(&stub),
                &trailer,
                Warnings::Quiet,
                binary,
            )
        }
    }
}

/// Whether `built` exists and is newer than every file of `sources`.
fn is_newer(built: &Path, sources: &[&Path]) -> bool {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let Some(built) = modified(built) else {
        return false;
    };
    sources
        .iter()
        .all(|s| modified(s).is_some_and(|m| m < built))
}

/// The result of one test, as the boot produced it.
type Verdict = std::result::Result<(), String>;

/// Sends each selected test its verdict as the boots go.
struct Reporter {
    senders: BTreeMap<usize, Sender<Verdict>>,
    frame: Option<Sender<Verdict>>,
    /// Failures of prerequisites, kept for the test that needs them.
    held: BTreeMap<usize, Vec<String>>,
    /// The exit status of each program that ended, by case.
    statuses: BTreeMap<usize, i64>,
}

impl Reporter {
    /// A step's verdict: to its test, or kept for the test that needs it.
    fn step(&mut self, listener: Listener, verdict: Verdict) {
        match listener {
            Listener::Test(i) => {
                let mut failures = self.held.remove(&i).unwrap_or_default();
                if let Err(e) = verdict {
                    failures.push(e);
                }
                let verdict = if failures.is_empty() {
                    Ok(())
                } else {
                    Err(failures.join("\n").trim_end().to_string())
                };
                if let Some(tx) = self.senders.remove(&i) {
                    let _ = tx.send(verdict);
                }
            }
            Listener::Prerequisite(Some(i)) => {
                if let Err(e) = verdict {
                    self.held.entry(i).or_default().push(e);
                }
            }
            Listener::Prerequisite(None) => {}
        }
    }

    /// Fails every test still waiting (the suite could not go on).
    fn fail_the_rest(&mut self, why: &str) {
        for (_, tx) in std::mem::take(&mut self.senders) {
            let _ = tx.send(Err(why.to_string()));
        }
        if let Some(tx) = self.frame.take() {
            let _ = tx.send(Err(why.to_string()));
        }
    }
}

/// Builds the image and the kernel, then boots until every step has its
/// verdict; a boot broken by a step goes on with the next step in a new boot.
fn run_suite(cases: &[Case], steps: &[Step], reporter: &mut Reporter) -> Result<()> {
    build::ensure_tools()?;
    if steps.iter().any(|s| {
        matches!(
            cases[s.case].source,
            Source::Musl(_) | Source::Conformance(..)
        )
    }) {
        build::ensure_musl()?;
    }
    // The Linux programs (musl, glibc, the conformance suite) boot apart,
    // their image given to the same kernel as its boot module: built in
    // with the others, the kernel image would be too large to boot, and
    // their files would take RAM-disk room the NeoOS tests count on.
    let (posix, others): (Vec<&Step>, Vec<&Step>) = steps.iter().partition(|s| {
        matches!(
            cases[s.case].source,
            Source::Conformance(..) | Source::Musl(_) | Source::Glibc(_)
        )
    });
    let (image, broken) = build_image(cases, &others, "test-initfs.cpio")?;
    let (posix_image, posix_broken) = if posix.is_empty() {
        (None, Vec::new())
    } else {
        let (path, broken) = build_image(cases, &posix, "test-initfs-linux.cpio")?;
        (Some(path), broken)
    };
    let runnable = runnable_of(cases, &others, &broken, reporter);
    let posix_runnable = runnable_of(cases, &posix, &posix_broken, reporter);
    let mut last_outcome = None;
    if runnable.is_empty() && posix_runnable.is_empty() {
        if let Some(tx) = reporter.frame.take() {
            let _ = tx.send(frame_verdict(None));
        }
        return Ok(());
    }
    let kernel = build::kernel(&image)?;
    for (group, initrd) in [(&runnable, None), (&posix_runnable, posix_image.as_deref())] {
        let mut next = 0;
        while next < group.len() {
            let (decided, outcome) = run_boot(&kernel, initrd, cases, &group[next..], reporter)?;
            next += decided;
            last_outcome = Some(outcome);
        }
    }
    if let Some(tx) = reporter.frame.take() {
        let _ = tx.send(frame_verdict(last_outcome.as_ref()));
    }
    Ok(())
}

/// The steps of `group` that compiled; the others get their failure.
fn runnable_of<'a>(
    cases: &[Case],
    group: &[&'a Step],
    broken: &[(usize, String)],
    reporter: &mut Reporter,
) -> Vec<&'a Step> {
    let mut runnable = Vec::new();
    for &step in group {
        match broken.iter().find(|(case, _)| *case == step.case) {
            Some((_, why)) => reporter.step(
                step.listener,
                Err(format!("{} did not compile: {why}", cases[step.case].name)),
            ),
            None => runnable.push(step),
        }
    }
    runnable
}

/// One boot running `steps`; reports each as its program ends. Returns how
/// many steps were decided (all, or up to and including the one that broke
/// the boot) and the outcome.
fn run_boot(
    kernel: &Path,
    initrd: Option<&Path>,
    cases: &[Case],
    steps: &[&Step],
    reporter: &mut Reporter,
) -> Result<(usize, BootOutcome)> {
    let paths: Vec<&str> = steps.iter().map(|s| cases[s.case].path.as_str()).collect();
    let conformance_steps = steps
        .iter()
        .filter(|s| matches!(cases[s.case].source, Source::Conformance(..)))
        .count() as u32;
    let options = BootOptions {
        kernel,
        initrd,
        command_line: format!("run={}", paths.join(",")),
        timeout: Some(BOOT_TIMEOUT + CONFORMANCE_STEP_TIME * conformance_steps),
        echo: false,
        interactive: false,
        gdb: false,
    };
    let mut decided = 0;
    let mut output: Vec<String> = Vec::new();
    // The last step's verdict waits for the end of the boot.
    let mut last: Option<(Listener, Verdict)> = None;
    let outcome = boot::boot_watching(&options, Machine::Standard, |line| {
        output.push(line.to_string());
        let Some((path, status)) = boot::parse_program_line(line) else {
            return;
        };
        let Some(step) = steps.get(decided).filter(|s| cases[s.case].path == path) else {
            output.clear();
            return;
        };
        let case = &cases[step.case];
        reporter.statuses.insert(step.case, status);
        let status_ok =
            status == case.expect || (case.any_suite_result && SUITE_RESULTS.contains(&status));
        let missing: Vec<&String> = case
            .expect_output
            .iter()
            .filter(|want| !output.iter().any(|line| line.trim_end() == want.as_str()))
            .collect();
        let verdict = if !status_ok {
            Err(format!(
                "{}\n(expected status {}, got {status})",
                indent(&output),
                case.expect
            ))
        } else if !missing.is_empty() {
            Err(format!(
                "{}\n(expected output lines missing: {missing:?})",
                indent(&output)
            ))
        } else {
            Ok(())
        };
        output.clear();
        decided += 1;
        if decided == steps.len() {
            last = Some((step.listener, verdict));
        } else {
            reporter.step(step.listener, verdict);
        }
    })?;
    if let Some((listener, verdict)) = last {
        let trouble = match (&outcome.ending, initfs_report(&outcome)) {
            (Ending::Clean, None) => None,
            (Ending::Clean, Some(report)) => Some(report.to_string()),
            (ending, _) => Some(format!(
                "the program ended, then the boot ended badly ({ending:?})\n{}\n{}",
                indent(tail(&outcome.console)),
                outcome.qemu_says()
            )),
        };
        let verdict = match (verdict, trouble) {
            (verdict, None) => verdict,
            (Ok(()), Some(trouble)) => Err(trouble),
            (Err(failure), Some(trouble)) => Err(format!("{failure}\n{trouble}")),
        };
        reporter.step(listener, verdict);
        return Ok((decided, outcome));
    }
    if let Some(step) = steps.get(decided) {
        reporter.step(
            step.listener,
            Err(format!(
                "{}\n(boot ended: {:?}, before {} finished)\n{}",
                indent(tail(&outcome.console)),
                outcome.ending,
                cases[step.case].path,
                outcome.qemu_says()
            )),
        );
        decided += 1;
    }
    Ok((decided, outcome))
}

/// The frame test's verdict, from the boot that ran the last programs.
fn frame_verdict(outcome: Option<&BootOutcome>) -> Verdict {
    let Some(outcome) = outcome else {
        return Err("no program ran".into());
    };
    if outcome.ending != Ending::Clean {
        return Err(format!(
            "the last boot did not power off normally ({:?})\n{}",
            outcome.ending,
            outcome.qemu_says()
        ));
    }
    if let Some(report) = initfs_report(outcome) {
        return Err(report.to_string());
    }
    match frames_leaked(&outcome.console) {
        Some(false) => Ok(()),
        Some(true) => Err(format!(
            "frames leaked:\n{}",
            indent(tail(&outcome.console))
        )),
        None => Err("no closing frame count on the console".into()),
    }
}

/// The kernel's line saying it refused (part of) the image, if it printed one.
fn initfs_report(outcome: &BootOutcome) -> Option<&str> {
    outcome
        .console
        .iter()
        .find(|l| boot::is_initfs_report(l))
        .map(String::as_str)
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

fn tail(console: &[String]) -> &[String] {
    &console[console.len().saturating_sub(LINES_BEFORE_A_BREAK)..]
}

fn indent(lines: &[String]) -> String {
    lines
        .iter()
        .map(|l| format!("    | {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// With `NEOOS_CONFORMANCE_TABLE=FILE`: writes docs/conformance.md's
/// text, with the result of every conformance test of this run, to FILE.
fn write_conformance_table(cases: &[Case], statuses: &BTreeMap<usize, i64>) {
    let Some(file) = std::env::var_os("NEOOS_CONFORMANCE_TABLE") else {
        return;
    };
    let results: Vec<(ConformanceTest, Option<Outcome>)> = cases
        .iter()
        .enumerate()
        .filter_map(|(i, c)| match &c.source {
            Source::Conformance(_, t) => {
                Some((t.clone(), statuses.get(&i).map(|&s| Outcome::of_status(s))))
            }
            _ => None,
        })
        .collect();
    if let Err(e) = std::fs::write(&file, conformance::document(&results)) {
        eprintln!(
            "in_qemu: cannot write {}: {e}",
            PathBuf::from(file).display()
        );
    }
}

/// A test that waits for its verdict from the boot.
fn waiting_trial(name: &str, verdict: Receiver<Verdict>) -> Trial {
    Trial::test(name, move || match verdict.recv() {
        Ok(Ok(())) => Ok(()),
        Ok(Err(why)) => Err(Failed::from(why)),
        Err(_) => Err("no result: the runner stopped before this test ran".into()),
    })
}

fn main() {
    let mut args = Arguments::from_args();
    // One boot runs the tests in order; each waits for its own result.
    args.test_threads = Some(1);
    let cases = match discover() {
        Ok(cases) => cases,
        Err(e) => {
            let trial = Trial::test("in_qemu_suite_found", move || Err(e.0.into()));
            libtest_mimic::run(&args, vec![trial]).exit();
        }
    };
    if args.list {
        let names = cases.iter().map(|c| c.name.as_str()).chain([FRAME_TEST]);
        let trials = names.map(|n| Trial::test(n, || Ok(()))).collect();
        libtest_mimic::run(&args, trials).exit();
    }
    let chosen: Vec<bool> = cases
        .iter()
        .map(|c| !c.ignored && selected(&args, &c.name))
        .collect();
    let frame_test = selected(&args, FRAME_TEST);
    let steps = plan(&cases, &chosen, frame_test);

    let mut trials = Vec::new();
    let mut reporter = Reporter {
        senders: BTreeMap::new(),
        frame: None,
        held: BTreeMap::new(),
        statuses: BTreeMap::new(),
    };
    for (i, case) in cases.iter().enumerate() {
        let (tx, rx) = mpsc::channel();
        if chosen[i] {
            reporter.senders.insert(i, tx);
        }
        let trial = waiting_trial(&case.name, rx);
        trials.push(trial.with_ignored_flag(case.ignored));
    }
    let (tx, rx) = mpsc::channel();
    if frame_test {
        reporter.frame = Some(tx);
    }
    trials.push(waiting_trial(FRAME_TEST, rx));

    let suite = (!steps.is_empty()).then(|| {
        std::thread::spawn(move || {
            if let Err(e) = run_suite(&cases, &steps, &mut reporter) {
                reporter.fail_the_rest(&format!("the in-QEMU suite could not run: {e}"));
            }
            write_conformance_table(&cases, &reporter.statuses);
            // Dropping the reporter ends the wait of any test left without a verdict.
        })
    });
    let conclusion = libtest_mimic::run(&args, trials);
    if let Some(suite) = suite {
        let _ = suite.join();
    }
    conclusion.exit();
}
