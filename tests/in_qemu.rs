//! The in-QEMU test suite, a cargo test target run by libtest-mimic: every
//! program in `user/tests/` is one test, run on a real NeoOS boot. A test
//! passes when it ends with the status its first line names
//! (`// expect-status: N`, default 0) and, when its leading comment lines
//! say `// expect-output: TEXT`, printed each such line; a `// args: TEXT`
//! line among them starts it with those arguments (split like a shell
//! would, percent-encoded on the kernel command line). The programs of
//! `user/tests/linux/` are built with `musl-gcc -static`, those of
//! `user/tests/glibc/` with `gcc -static`: Linux programs, run by NeoOS's
//! Linux personality. The specification's own C examples
//! (`../shared/seeds/*.txt`) run verbatim too, followed by a program that
//! checks what they left in the file. `kernel_returns_every_frame_after_the_programs`
//! passes when the boot powered off normally with every frame returned.
//! Every boot has a fresh ext2 disk at /home (the tests and seed examples
//! run against it). The `disk_*` tests boot programs of `user/tests/disk/`
//! (and, built with musl, of `user/tests/disk-linux/`) on their own images and check them with the e2fsprogs oracle (`e2fsck
//! -fn`, `debugfs cat`), some under QEMU's blkdebug fault injection.
//!
//! The suite boots a machine of [`SUITE_CPUS`] CPUs, or of as many as
//! `NEOOS_SUITE_CPUS=N` says (1 to 64; the suite with 1, 2 and 4 CPUs is
//! three runs of `cargo test`). The `long_calls_*` tests, which measure how
//! long other programs stand still, boot apart on the benchmark machine,
//! whose `-icount` clock does not follow the host's load; `kernel_brings_4_cpus_online` boots the same kernel once more on
//! 4 CPUs, runs the demo, the multiprocessor set ([`SMP_SET`]: Linux
//! programs with threads and processes working at once) and a soak whose
//! threaded fuzzer children run on all 4 CPUs ([`SMP_SOAK`]) there and passes
//! when the kernel reports 4 CPUs online, the boot CPU off the 8259 PIC,
//! every CPU's own APIC timer fired, threads ran on more than one CPU, every program ended with
//! 0, and the boot ends cleanly with every frame returned.
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
use neoos::disk::{self, DiskOptions};
use neoos::launch::{self, Run};
use neoos::seeds::{self, SeedExample};
use neoos::{initfs, out_dir, repo_root, Result, ToolError};

/// The test that checks the kernel's closing frame count.
const FRAME_TEST: &str = "kernel_returns_every_frame_after_the_programs";
/// The test that checks the kernel's closing kernel-stack depth.
const STACK_TEST: &str = "kernel_stacks_stay_under_half_their_size";
/// The tests that measure how long other programs stand still
/// (`long_calls_*`): they boot apart on the benchmark machine, whose
/// `-icount` clock counts guest instructions, so the stops they measure are
/// the kernel's own, not the host's load descheduling QEMU.
const TIMED_PREFIX: &str = "long_calls_";
/// The test that boots 4 CPUs.
const SMP_TEST: &str = "kernel_brings_4_cpus_online";
/// How many CPUs that test boots.
const SMP_TEST_CPUS: u32 = 4;
/// The program it runs first (from `user/programs`, always in the image).
const SMP_TEST_PROGRAM: &str = "/bin/demo";
/// The musl programs it runs then (folder and name, under `user/tests/`):
/// threads mapping, touching and unmapping; threads making random calls
/// at once; the munmap-while-touching race;
/// fork while threads write; two processes spinning at once; in `smp/`,
/// which run in this boot only (each alone: the shootdown counts are the
/// machine's): two threads of one process spinning at once, the race with
/// the toucher on another CPU, shootdown IPI counts, processes ended
/// while their threads spin on the other CPUs, and a fork's copy-on-write
/// copies made outside the kernel lock.
const SMP_SET: [(&str, &str); 16] = [
    ("linux", "linux_musl_pthreads_four_threads_map_touch_unmap"),
    (
        "linux",
        "linux_musl_threads_random_system_calls_never_crash_the_kernel",
    ),
    ("linux", "linux_musl_threads_munmap_while_touching_faults"),
    ("linux", "linux_musl_fork_while_threads_write"),
    ("smp", "linux_musl_smp_two_processes_spin_at_once"),
    (
        "smp",
        "linux_musl_smp_process_ends_while_its_threads_spin_on_other_cpus",
    ),
    (
        "smp",
        "linux_musl_smp_munmap_while_touching_on_another_cpu_faults",
    ),
    ("smp", "linux_musl_smp_threads_of_one_process_run_at_once"),
    (
        "smp",
        "linux_musl_smp_shootdown_ipis_go_only_to_cpus_running_the_space",
    ),
    (
        "smp",
        "linux_musl_smp_cow_copies_are_made_outside_the_kernel_lock",
    ),
    (
        "smp",
        "linux_musl_smp_threads_fault_in_parallel_under_the_read_lock",
    ),
    (
        "smp",
        "linux_musl_smp_threads_map_and_unmap_under_the_read_lock",
    ),
    (
        "smp",
        "linux_musl_smp_threads_unmap_file_mappings_under_the_read_lock",
    ),
    (
        "smp",
        "linux_musl_smp_threads_unmap_shared_memory_under_the_read_lock",
    ),
    (
        "smp",
        "linux_musl_smp_threads_grow_the_break_under_the_read_lock",
    ),
    (
        "smp",
        "linux_musl_smp_threads_grow_mappings_with_mremap_under_the_read_lock",
    ),
];
/// The NeoOS soak the 4-CPU boot runs after [`SMP_SET`] (program and
/// arguments: children, calls each; `user/programs/soak.c`): half its
/// fuzzer children are threaded, their threads making random calls at once
/// on the 4 CPUs, and it ends with 0 only when every frame came back.
const SMP_SOAK: (&str, [&str; 2]) = ("/bin/soak", ["24", "1500"]);
/// The CPUs of the machine the suite runs on by default (issue 13 asks for
/// 2; every CPU runs programs).
const SUITE_CPUS: u32 = 2;
/// The variable that sets another number of CPUs for the suite's machine.
const SUITE_CPUS_VAR: &str = "NEOOS_SUITE_CPUS";
/// The most CPUs the kernel starts (its per-CPU table's size).
const MAX_CPUS: u32 = 64;
/// The time limit of the 4-CPU boot (the demo, [`SMP_SET`], [`SMP_SOAK`]).
const SMP_BOOT_TIMEOUT: Duration = Duration::from_secs(300);
/// The time limit of a boot of one program.
const BOOT_TIMEOUT: Duration = Duration::from_secs(120);
/// The time limit of the suite's boot of many programs: it grows with
/// them, so what catches a hang there is [`QUIET_LIMIT`].
const SUITE_BOOT_TIMEOUT: Duration = Duration::from_secs(1200);
/// How long the suite's boot may print nothing (every program's end is a
/// line; the longest test, mincore over 64 GiB, takes about 11 s alone).
const QUIET_LIMIT: Duration = Duration::from_secs(120);
/// Console lines shown with a test that broke its boot.
const LINES_BEFORE_A_BREAK: usize = 30;
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
    /// Its arguments after argv[0] (a `// args: TEXT` line, split like a
    /// shell would).
    args: Vec<String>,
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
            args: arguments(&source)?,
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
            args: Vec::new(),
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
            args: Vec::new(),
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
                args: Vec::new(),
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

/// The arguments a test's `// args: TEXT` line (among the leading comment
/// lines) gives it, split like a shell would.
fn arguments(source: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(source).unwrap_or_default();
    let line = text
        .lines()
        .take_while(|l| l.trim_start().starts_with("//"))
        .find_map(|l| l.trim().strip_prefix("// args:"));
    match line {
        Some(args) => launch::split_args(args.trim())
            .map_err(|e| ToolError(format!("{}: {e}", source.display()))),
        None => Ok(Vec::new()),
    }
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
    musl_disk: bool,
) -> Result<(PathBuf, Vec<(usize, String)>)> {
    let root = repo_root();
    let bin = out_dir().join("test-bin");
    let mut image = initfs::standard()?;
    image.busybox()?;
    for dir in ["user/programs", "user/tests/helpers", "user/tests/disk"] {
        for (name, binary) in build::c_programs_in(&root.join(dir), &bin)? {
            image.program(&format!("/bin/{name}"), &binary)?;
        }
    }
    // The disk scenarios' Linux programs, built with musl when a selected
    // scenario needs them.
    if musl_disk {
        for source in build::c_sources(&root.join(DISK_LINUX_DIR))? {
            let name = source
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("program");
            let binary = bin.join(name);
            build::musl_program(&source, Warnings::Errors, &binary)?;
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
    stack: Option<Sender<Verdict>>,
    /// The selected disk scenarios, each with who waits for its verdict.
    disk: Vec<(&'static DiskScenario, Sender<Verdict>)>,
    smp: Option<Sender<Verdict>>,
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
        for tx in [self.frame.take(), self.stack.take(), self.smp.take()]
            .into_iter()
            .flatten()
        {
            let _ = tx.send(Err(why.to_string()));
        }
        for (_, tx) in std::mem::take(&mut self.disk) {
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
    // A disk scenario of a Linux program needs musl and its program in the
    // kernel's image.
    let musl_disk = reporter
        .disk
        .iter()
        .any(|(s, _)| DISK_LINUX_SCENARIOS.contains(&s.name));
    if musl_disk {
        build::ensure_musl()?;
    }
    let (image, broken) = build_image(cases, &others, "test-initfs.cpio", musl_disk)?;
    let (posix_image, posix_broken) = if posix.is_empty() {
        (None, Vec::new())
    } else {
        let (path, broken) = build_image(cases, &posix, "test-initfs-linux.cpio", false)?;
        (Some(path), broken)
    };
    let runnable = runnable_of(cases, &others, &broken, reporter);
    let (timed, runnable): (Vec<&Step>, Vec<&Step>) = runnable
        .into_iter()
        .partition(|s| cases[s.case].name.starts_with(TIMED_PREFIX));
    let posix_runnable = runnable_of(cases, &posix, &posix_broken, reporter);
    let mut last_outcome = None;
    // From each boot that powered off normally: (deepest use, stack size).
    let mut stack_reports: Vec<Option<(u64, u64)>> = Vec::new();
    if runnable.is_empty()
        && timed.is_empty()
        && posix_runnable.is_empty()
        && reporter.disk.is_empty()
        && reporter.smp.is_none()
    {
        if let Some(tx) = reporter.frame.take() {
            let _ = tx.send(frame_verdict(None));
        }
        if let Some(tx) = reporter.stack.take() {
            let _ = tx.send(stack_verdict(&[]));
        }
        return Ok(());
    }
    disk::ensure_e2fsprogs()?;
    let kernel = build::kernel(&image)?;
    let suite = Machine::Standard {
        cpus: suite_cpus()?,
    };
    for (group, initrd, machine) in [
        (&runnable, None, suite),
        (&timed, None, Machine::BENCHMARK),
        (&posix_runnable, posix_image.as_deref(), suite),
    ] {
        let mut next = 0;
        while next < group.len() {
            let steps = &group[next..];
            let (decided, outcome) = run_boot(&kernel, initrd, cases, steps, machine, reporter)?;
            next += decided;
            if outcome.ending == Ending::Clean {
                stack_reports.push(deepest_stack_use(&outcome.console));
            }
            last_outcome = Some(outcome);
        }
    }
    if let Some(tx) = reporter.frame.take() {
        let _ = tx.send(frame_verdict(last_outcome.as_ref()));
    }
    if let Some(tx) = reporter.stack.take() {
        let _ = tx.send(stack_verdict(&stack_reports));
    }
    if let Some(tx) = reporter.smp.take() {
        let _ = tx.send(smp_verdict(&kernel));
    }
    for (scenario, tx) in std::mem::take(&mut reporter.disk) {
        let _ = tx.send((scenario.run)(&kernel));
    }
    Ok(())
}

/// The options of a boot of one program (or a few), quiet, on the usual
/// time limit.
fn short_boot(kernel: &Path, command_line: impl Into<String>) -> BootOptions<'_> {
    BootOptions {
        kernel,
        initrd: None,
        command_line: command_line.into(),
        timeout: Some(BOOT_TIMEOUT),
        quiet_limit: None,
        echo: false,
        interactive: false,
        gdb: false,
    }
}

/// The image of the 4-CPU boot: the usual programs and [`SMP_SET`].
fn smp_image() -> Result<PathBuf> {
    build::ensure_musl()?;
    let (root, bin) = (repo_root(), out_dir().join("test-bin"));
    let mut image = initfs::standard()?;
    for (name, binary) in build::c_programs_in(&root.join("user/programs"), &bin)? {
        image.program(&format!("/bin/{name}"), &binary)?;
    }
    for (folder, name) in SMP_SET {
        let source = root
            .join("user/tests")
            .join(folder)
            .join(format!("{name}.c"));
        let binary = bin.join(name);
        build::musl_program(&source, Warnings::Errors, &binary)?;
        image.program(&format!("/bin/{name}"), &binary)?;
    }
    let path = out_dir().join("test-initfs-smp.cpio");
    image.write(&path)?;
    Ok(path)
}

/// Boots `kernel` on [`SMP_TEST_CPUS`] CPUs running the demo, [`SMP_SET`]
/// and [`SMP_SOAK`]: every CPU must come online (the kernel's `cpus: N online`
/// line), the boot CPU must have left the 8259 PIC, the APIC timer of each
/// CPU, the boot CPU's too, must have fired (its closing
/// `cpu I (APIC id A): online, T timer ticks` line), threads must have run
/// on more than one CPU (`cpu I ran threads N times`), every program must
/// end with 0 and the boot must power off with every frame returned.
fn smp_verdict(kernel: &Path) -> Verdict {
    let image = smp_image().map_err(|e| e.0)?;
    let runs: Vec<Run> = [Run::bare(SMP_TEST_PROGRAM)]
        .into_iter()
        .chain(
            SMP_SET
                .iter()
                .map(|(_, name)| Run::bare(&format!("/bin/{name}"))),
        )
        .chain([Run {
            path: SMP_SOAK.0.to_string(),
            args: SMP_SOAK.1.iter().map(|a| a.to_string()).collect(),
        }])
        .collect();
    let programs: Vec<String> = runs.iter().map(|run| run.path.clone()).collect();
    let mut options = short_boot(kernel, launch::run_word(&runs));
    options.initrd = Some(&image);
    options.timeout = Some(SMP_BOOT_TIMEOUT);
    let machine = Machine::Standard {
        cpus: SMP_TEST_CPUS,
    };
    let outcome = boot::boot_on(&options, machine).map_err(|e| e.0)?;
    let report = || {
        format!(
            "{}
{}",
            indent(tail(&outcome.console)),
            outcome.qemu_says()
        )
    };
    let online = cpus_online(&outcome.console);
    if online != Some(SMP_TEST_CPUS) {
        return Err(format!(
            "expected {SMP_TEST_CPUS} CPUs online, the kernel said {online:?}\n{}",
            report()
        ));
    }
    let timers = cpu_timers(&outcome.console);
    let ticking = timers
        .iter()
        .filter(|(online, ticks)| *online && *ticks > 0)
        .count();
    if timers.len() != SMP_TEST_CPUS as usize || ticking != timers.len() {
        return Err(format!(
            "expected {SMP_TEST_CPUS} CPUs online with their own APIC timers ticking, got {timers:?}\n{}",
            report()
        ));
    }
    if !outcome.console.iter().any(|line| line == BOOT_CPU_OFF_PIC) {
        return Err(format!(
            "expected the boot CPU on its APIC timer (`{BOOT_CPU_OFF_PIC}`)\n{}",
            report()
        ));
    }
    let busy = cpus_that_ran_threads(&outcome.console);
    if busy < 2 {
        return Err(format!(
            "expected threads to run on more than one CPU, {busy} did\n{}",
            report()
        ));
    }
    let expected: Vec<(String, i64)> = programs.into_iter().map(|p| (p, 0)).collect();
    if outcome.programs != expected {
        // The failed checks' own lines, wherever they are in the console.
        let failed: Vec<String> = outcome
            .console
            .iter()
            .filter(|line| line.contains("FAIL"))
            .cloned()
            .collect();
        return Err(format!(
            "expected {expected:?}, got {:?}\nfailed checks:\n{}\n{}",
            outcome.programs,
            indent(&failed),
            report()
        ));
    }
    frame_verdict(Some(&outcome))
}

/// The kernel's boot line saying the boot CPU ticks with its own APIC timer
/// and COM1 comes through the I/O APIC (the 8259 PIC and the PIT's
/// interrupt retired).
const BOOT_CPU_OFF_PIC: &str =
    "[neoos] boot cpu: APIC timer, COM1 through the I/O APIC, 8259 PIC masked";

/// (online, timer ticks) from each of the kernel's closing lines
/// `[neoos] cpu I (APIC id A): online, T timer ticks`.
fn cpu_timers(console: &[String]) -> Vec<(bool, u64)> {
    console
        .iter()
        .filter_map(|line| {
            let rest = line.strip_prefix("[neoos] cpu ")?;
            let (_, rest) = rest.split_once("): ")?;
            let (state, rest) = rest.split_once(", ")?;
            let ticks = rest.strip_suffix(" timer ticks")?.parse().ok()?;
            Some((state == "online", ticks))
        })
        .collect()
}

/// How many CPUs ran threads, from the kernel's closing lines
/// `[neoos] cpu I ran threads N times`.
fn cpus_that_ran_threads(console: &[String]) -> usize {
    console
        .iter()
        .filter_map(|line| {
            let rest = line.strip_prefix("[neoos] cpu ")?;
            let (_, runs) = rest.split_once(" ran threads ")?;
            runs.strip_suffix(" times")?.parse::<u64>().ok()
        })
        .filter(|&runs| runs > 0)
        .count()
}

/// N from the kernel's `[neoos] cpus: N online ...` line.
fn cpus_online(console: &[String]) -> Option<u32> {
    console.iter().find_map(|line| {
        let rest = line.strip_prefix("[neoos] cpus: ")?;
        let (count, rest) = rest.split_once(' ')?;
        rest.starts_with("online").then(|| count.parse().ok())?
    })
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
    machine: Machine,
    reporter: &mut Reporter,
) -> Result<(usize, BootOutcome)> {
    let runs: Vec<Run> = steps
        .iter()
        .map(|s| Run {
            path: cases[s.case].path.clone(),
            args: cases[s.case].args.clone(),
        })
        .collect();
    let options = BootOptions {
        kernel,
        initrd,
        command_line: launch::run_word(&runs),
        timeout: Some(SUITE_BOOT_TIMEOUT),
        quiet_limit: Some(QUIET_LIMIT),
        echo: false,
        interactive: false,
        gdb: false,
    };
    let mut decided = 0;
    let mut output: Vec<String> = Vec::new();
    // The last step's verdict waits for the end of the boot.
    let mut last: Option<(Listener, Verdict)> = None;
    let image = disk::fresh_image()?;
    let disk = DiskOptions {
        image: Some(image.clone()),
        ..DiskOptions::default()
    };
    let outcome = boot::boot_with_disk(&options, machine, &disk, |line| {
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
    });
    let _ = std::fs::remove_file(&image);
    let outcome = outcome?;
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
/// The CPUs of the suite's machine: `NEOOS_SUITE_CPUS` when set, else
/// [`SUITE_CPUS`].
fn suite_cpus() -> Result<u32> {
    let Some(value) = std::env::var_os(SUITE_CPUS_VAR) else {
        return Ok(SUITE_CPUS);
    };
    value
        .to_str()
        .and_then(|v| v.trim().parse::<u32>().ok())
        .filter(|n| (1..=MAX_CPUS).contains(n))
        .ok_or_else(|| {
            ToolError(format!(
                "{SUITE_CPUS_VAR}={}: not a number of CPUs from 1 to {MAX_CPUS}",
                value.to_string_lossy()
            ))
        })
}

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

/// The stack test's verdict, from every boot that powered off normally:
/// each must have reported its kernel stacks' deepest use, and that use
/// must stay under half the stack (room for frames to grow before a
/// stack overflows into its guard page).
fn stack_verdict(reports: &[Option<(u64, u64)>]) -> Verdict {
    if reports.is_empty() {
        return Err("no boot powered off normally".into());
    }
    let mut deepest = (0, 0);
    for report in reports {
        let Some((used, size)) = *report else {
            return Err("a boot powered off without its kernel-stack line".into());
        };
        if used == 0 || size == 0 {
            return Err(format!("implausible kernel-stack line: {used} of {size}"));
        }
        if used.saturating_mul(2) >= size {
            return Err(format!(
                "kernel stacks: deepest use {used} bytes of {size}, half or more \
                 (shrink the frames on system-call paths)"
            ));
        }
        deepest = deepest.max((used, size));
    }
    println!(
        "kernel stacks: deepest use {} bytes of {} over {} boots",
        deepest.0,
        deepest.1,
        reports.len()
    );
    Ok(())
}

/// From the kernel's closing line `kernel stacks: deepest use N bytes of S`.
fn deepest_stack_use(console: &[String]) -> Option<(u64, u64)> {
    let line = console
        .iter()
        .rev()
        .find(|l| l.contains("kernel stacks: deepest use"))?;
    let numbers: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    match numbers[..] {
        [used, size] => Some((used, size)),
        _ => None,
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

/// From the kernel's closing line `all programs done; F frames free or holding
/// files (S at start)`.
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

/// The console's last lines: [`LINES_BEFORE_A_BREAK`] of them, or more
/// when a silent boot's report (`[hang]` lines, the kernel's NMI report)
/// is longer: the whole report, and that many lines before it.
fn tail(console: &[String]) -> &[String] {
    let report = console
        .iter()
        .position(|l| l.starts_with("[hang]"))
        .unwrap_or(console.len());
    let start = console
        .len()
        .min(report)
        .saturating_sub(LINES_BEFORE_A_BREAK)
        .min(console.len().saturating_sub(LINES_BEFORE_A_BREAK));
    &console[start..]
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
    let cases = match suite_cpus().and_then(|_| discover()) {
        Ok(cases) => cases,
        Err(e) => {
            let trial = Trial::test("in_qemu_suite_found", move || Err(e.0.into()));
            libtest_mimic::run(&args, vec![trial]).exit();
        }
    };
    if args.list {
        let names = cases
            .iter()
            .map(|c| c.name.as_str())
            .chain([FRAME_TEST, STACK_TEST, SMP_TEST])
            .chain(DISK_SCENARIOS.iter().map(|d| d.name));
        let trials = names.map(|n| Trial::test(n, || Ok(()))).collect();
        libtest_mimic::run(&args, trials).exit();
    }
    let chosen: Vec<bool> = cases
        .iter()
        .map(|c| !c.ignored && selected(&args, &c.name))
        .collect();
    let frame_test = selected(&args, FRAME_TEST);
    let stack_test = selected(&args, STACK_TEST);
    let smp_test = selected(&args, SMP_TEST);
    let steps = plan(&cases, &chosen, frame_test || stack_test);

    let mut trials = Vec::new();
    let mut reporter = Reporter {
        senders: BTreeMap::new(),
        frame: None,
        stack: None,
        disk: Vec::new(),
        smp: None,
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
    let (tx, rx) = mpsc::channel();
    if stack_test {
        reporter.stack = Some(tx);
    }
    trials.push(waiting_trial(STACK_TEST, rx));
    let (tx, rx) = mpsc::channel();
    if smp_test {
        reporter.smp = Some(tx);
    }
    trials.push(waiting_trial(SMP_TEST, rx));
    for scenario in DISK_SCENARIOS {
        let (tx, rx) = mpsc::channel();
        if selected(&args, scenario.name) {
            reporter.disk.push((scenario, tx));
        }
        trials.push(waiting_trial(scenario.name, rx));
    }

    let suite = (!steps.is_empty() || !reporter.disk.is_empty() || smp_test).then(|| {
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

/// A test of the disk: boots on its own image and checks it on the host.
struct DiskScenario {
    name: &'static str,
    run: fn(&Path) -> Verdict,
}

const DISK_SCENARIOS: &[DiskScenario] = &[
    DiskScenario {
        name: "disk_stores_unmapped_and_written_reach_the_image_and_a_second_boot",
        run: disk_writes_reach_the_image,
    },
    DiskScenario {
        name: "disk_write_error_in_munmap_gives_e_io_keeps_the_pages_then_e_ok",
        run: disk_write_error_keeps_the_pages,
    },
    DiskScenario {
        name: "disk_read_error_gives_e_io_to_read_and_status_135_to_a_fault",
        run: disk_read_error_ends_the_faulting_program,
    },
    DiskScenario {
        name: "disk_flush_error_in_munmap_gives_e_io_keeps_the_pages_then_e_ok",
        run: disk_flush_error_keeps_the_pages,
    },
    DiskScenario {
        name: "disk_power_cut_right_after_munmap_keeps_the_bytes",
        run: disk_power_cut_keeps_the_bytes,
    },
    DiskScenario {
        name: "disk_flusher_writes_unsynced_data_by_itself",
        run: disk_flusher_writes_by_itself,
    },
    DiskScenario {
        name: "disk_file_larger_than_the_ram_disk_is_written_whole",
        run: disk_big_file_is_written_whole,
    },
    DiskScenario {
        name: "disk_waits_sleep_for_completion_interrupts_and_write_one_request_per_run",
        run: disk_completion_interrupts_and_runs,
    },
    DiskScenario {
        name: "disk_wait_of_msync_and_fsync_lets_other_calls_run_and_survives_a_kill",
        run: disk_wait_lets_others_run,
    },
    DiskScenario {
        name: "disk_wait_of_msync_and_fsync_lets_other_calls_run_on_one_cpu",
        run: disk_wait_lets_others_run_on_one_cpu,
    },
    DiskScenario {
        name: "disk_wait_write_error_in_msync_gives_eio_keeps_the_page_then_0",
        run: disk_msync_write_error_keeps_the_page,
    },
    DiskScenario {
        name: "disk_wait_flush_error_in_msync_gives_eio_keeps_the_page_then_0",
        run: disk_msync_flush_error_keeps_the_page,
    },
    DiskScenario {
        name: DISK_LINUX_SCENARIOS[0],
        run: disk_linux_namespace_leaves_the_tree,
    },
    DiskScenario {
        name: DISK_LINUX_SCENARIOS[1],
        run: disk_linux_preads_let_others_run,
    },
    DiskScenario {
        name: DISK_LINUX_SCENARIOS[2],
        run: disk_linux_pread_read_error,
    },
    DiskScenario {
        name: DISK_LINUX_SCENARIOS[3],
        run: disk_linux_sync_writes_what_an_exit_left,
    },
    DiskScenario {
        name: "disk_reclaim_256mib_file_sums_right_through_a_mapping_and_read_in_64mib_of_ram",
        run: disk_big_file_is_read_in_small_ram,
    },
    DiskScenario {
        name: "disk_reclaim_dirty_pages_of_a_160mib_shared_mapping_reach_the_image_in_64mib_of_ram",
        run: disk_big_dirty_mapping_reaches_the_image,
    },
    DiskScenario {
        name: "disk_reclaim_anonymous_memory_past_64mib_of_ram_ends_as_out_of_memory",
        run: disk_anonymous_memory_runs_out,
    },
    DiskScenario {
        name: "disk_wait_of_read_faults_and_reads_lets_other_calls_run_and_survives_a_kill",
        run: disk_read_faults_let_others_run,
    },
    DiskScenario {
        name: "disk_wait_of_read_faults_and_reads_lets_other_calls_run_on_one_cpu",
        run: disk_read_faults_let_others_run_on_one_cpu,
    },
    DiskScenario {
        name: "disk_wait_of_sys_munmap_lets_other_calls_run_reserves_its_range_and_survives_a_kill",
        run: disk_munmap_waits,
    },
    DiskScenario {
        name: "disk_wait_of_sys_munmap_lets_other_calls_run_on_one_cpu",
        run: disk_munmap_waits_on_one_cpu,
    },
    DiskScenario {
        name: "disk_wait_write_error_in_a_later_batch_of_sys_munmap_gives_e_io_keeps_the_mapping_then_e_ok",
        run: disk_munmap_later_batch_error_keeps_the_mapping,
    },
    DiskScenario {
        name: "disk_wait_of_an_exits_write_back_lets_its_parent_run_and_survives_a_kill",
        run: disk_exit_waits,
    },
    DiskScenario {
        name: "disk_wait_of_an_exits_write_back_lets_its_parent_run_on_one_cpu",
        run: disk_exit_waits_on_one_cpu,
    },
    DiskScenario {
        name: "disk_wait_write_error_in_an_exits_write_back_keeps_the_file_dirty_and_writes_it_again",
        run: disk_exit_write_error_is_tried_again,
    },
    DiskScenario {
        name: "disk_wait_of_partial_page_write_misses_lets_other_calls_run_and_survives_a_kill",
        run: disk_write_misses_wait,
    },
    DiskScenario {
        name: "disk_read_error_in_a_partial_page_write_gives_a_short_count_then_e_io_with_nothing_written",
        run: disk_write_miss_read_error,
    },
    DiskScenario {
        name: "disk_wait_of_an_fsyncs_inode_write_and_flush_lets_other_calls_run_and_survives_a_kill",
        run: disk_sync_waits,
    },
    DiskScenario {
        name: "disk_wait_of_an_fsyncs_inode_write_and_flush_lets_other_calls_run_on_one_cpu",
        run: disk_sync_waits_on_one_cpu,
    },
    DiskScenario {
        name: "disk_wait_write_error_of_an_fsyncs_inode_gives_e_io_without_a_flush_then_e_ok",
        run: disk_sync_inode_write_error,
    },
    DiskScenario {
        name: "disk_wait_of_namespace_metadata_reads_lets_other_calls_run_and_survives_a_kill",
        run: disk_namespace_waits,
    },
    DiskScenario {
        name: "disk_wait_of_namespace_metadata_reads_lets_other_calls_run_on_one_cpu",
        run: disk_namespace_waits_on_one_cpu,
    },
    DiskScenario {
        name: "disk_read_error_of_a_namespace_metadata_read_is_read_again",
        run: disk_namespace_read_error,
    },
    DiskScenario {
        name: DISK_LINUX_SCENARIOS[4],
        run: disk_linux_writev_waits,
    },
    DiskScenario {
        name: DISK_LINUX_SCENARIOS[5],
        run: disk_linux_writev_read_error,
    },
    DiskScenario {
        name: DISK_LINUX_SCENARIOS[6],
        run: disk_linux_flush_waits,
    },
    DiskScenario {
        name: DISK_LINUX_SCENARIOS[7],
        run: disk_linux_flush_error,
    },
    DiskScenario {
        name: "disk_reclaim_writes_dirty_pages_while_other_threads_run_and_survives_a_kill",
        run: disk_reclaim_writes_let_others_run,
    },
    DiskScenario {
        name: "disk_reclaim_write_error_keeps_the_pages_dirty_and_writes_them_again",
        run: disk_reclaim_write_error,
    },
    DiskScenario {
        name: DISK_LINUX_SCENARIOS[8],
        run: disk_linux_meta_waits,
    },
    DiskScenario {
        name: DISK_LINUX_SCENARIOS[9],
        run: disk_linux_meta_write_error,
    },
    DiskScenario {
        name: DISK_LINUX_SCENARIOS[10],
        run: disk_linux_holes_wait,
    },
    DiskScenario {
        name: DISK_LINUX_SCENARIOS[11],
        run: disk_linux_holes_write_error,
    },
    DiskScenario {
        name: DISK_LINUX_SCENARIOS[12],
        run: disk_linux_rest_waits,
    },
    DiskScenario {
        name: DISK_LINUX_SCENARIOS[13],
        run: disk_linux_rest_write_error,
    },
    DiskScenario {
        name: "disk_neo_creating_and_truncating_opens_write_while_other_calls_run",
        run: disk_neo_open_waits,
    },
    DiskScenario {
        name: "disk_write_error_after_a_neo_creating_open_gives_e_io_with_the_file_made",
        run: disk_neo_open_write_error,
    },
    DiskScenario {
        name: DISK_LINUX_SCENARIOS[14],
        run: disk_linux_uaccess_waits,
    },
    DiskScenario {
        name: DISK_LINUX_SCENARIOS[15],
        run: disk_linux_uaccess_read_error,
    },
    DiskScenario {
        name: DISK_LINUX_SCENARIOS[16],
        run: disk_linux_queue_waits,
    },
];

/// The disk scenarios whose programs are Linux (musl) programs of
/// [`DISK_LINUX_DIR`].
const DISK_LINUX_SCENARIOS: [&str; 17] = [
    "disk_linux_namespace_operations_leave_a_clean_image_with_the_tree",
    "disk_wait_of_linux_pread_readv_preadv_lets_other_calls_run",
    "disk_read_error_gives_eio_to_linux_pread_and_a_short_count_to_readv",
    "disk_linux_sync_writes_what_an_exit_left_and_gives_its_memory_back",
    "disk_wait_of_a_linux_writevs_partial_page_reads_lets_other_calls_run_and_survives_a_kill",
    "disk_read_error_in_a_linux_writevs_partial_page_reads_is_read_again",
    "disk_wait_of_a_linux_unlinks_flush_lets_other_calls_run_and_survives_a_kill",
    "disk_flush_error_after_a_linux_unlink_gives_eio_with_the_name_gone",
    "disk_linux_unlink_rename_mkdir_write_their_metadata_while_other_calls_run",
    "disk_metadata_write_error_after_a_linux_unlink_gives_eio_and_is_written_later",
    "disk_linux_msync_filling_holes_and_a_read_through_an_indirect_block_wait_without_the_lock",
    "disk_metadata_write_error_of_an_msync_filling_holes_gives_eio_and_the_next_writes_it",
    "disk_linux_truncating_open_truncate_and_orphan_close_write_while_other_calls_run",
    "disk_write_error_of_a_truncates_zeroed_tail_gives_eio_and_is_written_later",
    "disk_wait_of_a_calls_uncached_mapped_buffer_lets_other_calls_run_and_survives_a_kill",
    "disk_read_error_of_a_calls_mapped_buffer_gives_eio_with_nothing_moved",
    "disk_linux_write_back_and_read_in_more_pieces_than_the_queue_takes_wait_without_the_lock",
];
/// The disk scenarios' Linux programs (built with musl, as `/bin/NAME`).
const DISK_LINUX_DIR: &str = "user/tests/disk-linux";

/// user/tests/disk-linux/disk_linux_queue_wait.c (musl) over two boots: an
/// msync of 32 one-page runs (the virtio queue takes 5 requests), then,
/// on a fresh boot, a pread of the file's 32 pieces, each with nothing
/// sent under the kernel lock; the image is clean and holds the stores.
fn disk_linux_queue_waits(kernel: &Path) -> Verdict {
    let image = ScratchImage::new()?;
    for step in ["write", "read"] {
        let program = format!("/bin/disk_linux_queue_wait:{step}");
        disk_boot_done(kernel, &image.0, None, &program)?;
    }
    disk::e2fsck_clean(&image.0)?;
    let expected: Vec<u8> = (0..64 * PAGE)
        .map(|at| {
            let (page, i) = (at / PAGE, at % PAGE);
            match page % 2 {
                0 => (page * 13 + i * 3 + 1) as u8,
                _ => 0,
            }
        })
        .collect();
    image_holds(&image.0, "/usuario/rayas.bin", &expected)
}

/// [`disk_boot`] of `program` (`/bin/NAME` or `/bin/NAME:ARG`) that must
/// end with status 0 and print `NAME: done`.
fn disk_boot_done(kernel: &Path, image: &Path, rules: Option<&Path>, program: &str) -> Verdict {
    let console = disk_boot(kernel, image, rules, program, 0)?;
    let name = program.trim_start_matches("/bin/");
    let name = name.split(':').next().unwrap_or(name);
    if console.iter().any(|l| *l == format!("{name}: done")) {
        return Ok(());
    }
    let console = indent(tail(&console));
    Err(format!("{program} did not finish its checks:\n{console}"))
}

/// user/tests/disk-linux/disk_linux_namespace.c (musl) makes, moves,
/// replaces and removes files and folders on /home, and unlinks a file it
/// still holds open: e2fsck -fn finds the image clean (the open file's
/// inode and blocks were freed at its close) and debugfs sees exactly the
/// tree the program leaves, with the moved files' bytes and the mode set.
fn disk_linux_namespace_leaves_the_tree(kernel: &Path) -> Verdict {
    let image = ScratchImage::new()?;
    let console = disk_boot(kernel, &image.0, None, "/bin/disk_linux_namespace", 0)?;
    if !console.iter().any(|l| l == "disk_linux_namespace: done") {
        return Err("disk_linux_namespace did not finish its checks".into());
    }
    disk::e2fsck_clean(&image.0)?;
    let names = |dir: &str| -> std::result::Result<Vec<String>, String> {
        let listing = disk::debugfs_request(&image.0, &format!("ls -p {dir}")).map_err(|e| e.0)?;
        let mut names: Vec<String> = listing
            .lines()
            .filter_map(|l| l.split('/').nth(5).map(str::to_string))
            .filter(|n| !n.is_empty() && n != "." && n != "..")
            .collect();
        names.sort();
        Ok(names)
    };
    let tree = names("/tree")?;
    if tree != ["kept", "mode.txt", "replaced.txt"] {
        return Err(format!("debugfs ls /tree: {tree:?}"));
    }
    let kept = names("/tree/kept")?;
    if kept != ["data.txt"] {
        return Err(format!("debugfs ls /tree/kept: {kept:?}"));
    }
    image_holds(&image.0, "/tree/kept/data.txt", b"kept bytes\n")?;
    image_holds(&image.0, "/tree/replaced.txt", b"new\n")?;
    let stat = disk::debugfs_request(&image.0, "stat /tree/mode.txt").map_err(|e| e.0)?;
    if !stat.contains("Mode:  0600") {
        return Err(format!("mode.txt is not 0600:\n{stat}"));
    }
    Ok(())
}

/// user/tests/disk-linux/disk_linux_pread_wait.c (musl): another thread's
/// system calls ran while pread64, readv and preadv of a /home file waited
/// for the disk, with the right bytes and positions; the image is clean.
fn disk_linux_preads_let_others_run(kernel: &Path) -> Verdict {
    let image = ScratchImage::new()?;
    let console = disk_boot(kernel, &image.0, None, "/bin/disk_linux_pread_wait", 0)?;
    if !console.iter().any(|l| l == "disk_linux_pread_wait: done") {
        return Err("disk_linux_pread_wait did not finish its checks".into());
    }
    disk::e2fsck_clean(&image.0)
}

/// user/tests/disk-linux/disk_linux_pread_wait.c `eio` under rules failing
/// one read of blocks 2 and 5 of datos.bin: pread64 gives EIO with the
/// position kept, readv the short count of what it read before.
fn disk_linux_pread_read_error(kernel: &Path) -> Verdict {
    let image = ScratchImage::new()?;
    let rules = fail_once(&image.0, DATOS_ON_IMAGE, "read_aio", &[2, 5])?;
    let program = "/bin/disk_linux_pread_wait:eio";
    let console = disk_boot(kernel, &image.0, Some(&rules), program, 0)?;
    if !console.iter().any(|l| l == "disk_linux_pread_wait: done") {
        return Err("disk_linux_pread_wait eio did not finish its checks".into());
    }
    Ok(())
}

/// user/tests/disk-linux/disk_linux_sync.c (musl): a forked child's exit
/// leaves its dirty shared mapping of the seeds' file to the flusher; the
/// parent's sync returns with it written and its memory back; the image
/// holds the child's bytes and is clean.
fn disk_linux_sync_writes_what_an_exit_left(kernel: &Path) -> Verdict {
    let image = ScratchImage::new()?;
    let console = disk_boot(kernel, &image.0, None, "/bin/disk_linux_sync", 0)?;
    if !console.iter().any(|l| l == "disk_linux_sync: done") {
        return Err("disk_linux_sync did not finish its checks".into());
    }
    disk::e2fsck_clean(&image.0)?;
    let mut expected = datos();
    for (at, byte) in expected.iter_mut().enumerate() {
        let page = at / PAGE;
        if page.is_multiple_of(2) {
            *byte = (page * 7 + at % PAGE + 9) as u8;
        }
    }
    image_holds(&image.0, DATOS_ON_IMAGE, &expected)
}

/// NeoOS's path of the seeds' file, and its path on the image (whose root
/// is /home).
const DATOS_ON_IMAGE: &str = "/usuario/datos.bin";
const PAGE: usize = 4096;

/// Boots `program` with `image` as /home (under blkdebug `rules` if given);
/// the console when it ended with `status` and the kernel powered off.
fn disk_boot(
    kernel: &Path,
    image: &Path,
    rules: Option<&Path>,
    program: &str,
    status: i64,
) -> std::result::Result<Vec<String>, String> {
    disk_boot_in(kernel, image, rules, program, status, None)
}

/// [`disk_boot`] on a machine of `memory` RAM (QEMU's `-m`; `None`: the
/// default).
fn disk_boot_in(
    kernel: &Path,
    image: &Path,
    rules: Option<&Path>,
    program: &str,
    status: i64,
    memory: Option<&str>,
) -> std::result::Result<Vec<String>, String> {
    disk_boot_on(
        kernel,
        image,
        rules,
        program,
        status,
        memory,
        suite_cpus().map_err(|e| e.0)?,
    )
}

/// [`disk_boot_in`] on a machine of `cpus` CPUs.
fn disk_boot_on(
    kernel: &Path,
    image: &Path,
    rules: Option<&Path>,
    program: &str,
    status: i64,
    memory: Option<&str>,
    cpus: u32,
) -> std::result::Result<Vec<String>, String> {
    let options = short_boot(kernel, format!("run={program}"));
    let disk = DiskOptions {
        image: Some(image.to_path_buf()),
        blkdebug: rules.map(Path::to_path_buf),
        memory: memory.map(String::from),
        cut_power_at: None,
    };
    let outcome = boot::boot_with_disk(&options, Machine::Standard { cpus }, &disk, |_| {})
        .map_err(|e| e.0)?;
    // `program` may carry arguments (`PATH:ARG...`, as `run=` takes them).
    let path = program.split(':').next();
    let ended = outcome
        .programs
        .iter()
        .any(|(p, s)| Some(p.as_str()) == path && *s == status);
    if !ended || outcome.ending != Ending::Clean {
        return Err(format!(
            "{program} did not end with status {status} on a clean boot ({:?}):\n{}\n{}",
            outcome.ending,
            indent(tail(&outcome.console)),
            outcome.qemu_says()
        ));
    }
    Ok(outcome.console)
}

/// A fresh image, removed when the scenario is done with it.
struct ScratchImage(PathBuf);

impl ScratchImage {
    fn new() -> std::result::Result<Self, String> {
        disk::fresh_image().map(ScratchImage).map_err(|e| e.0)
    }
}

impl Drop for ScratchImage {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        let _ = std::fs::remove_file(self.0.with_extension("rules"));
    }
}

/// The bytes of `path` on the image, compared with `expected`.
fn image_holds(image: &Path, path: &str, expected: &[u8]) -> Verdict {
    let got = disk::debugfs_cat(image, path).map_err(|e| e.0)?;
    if got == expected {
        return Ok(());
    }
    let first = got.iter().zip(expected).position(|(a, b)| a != b);
    Err(format!(
        "debugfs cat {path}: {} bytes, want {}; first difference at {first:?}",
        got.len(),
        expected.len()
    ))
}

/// A blkdebug rules file next to the image failing, once each, the first
/// `event` request touching each of the sectors of `blocks` of `path`.
fn fail_once(
    image: &Path,
    path: &str,
    event: &str,
    blocks: &[u64],
) -> std::result::Result<PathBuf, String> {
    let mut rules = String::new();
    for &index in blocks {
        let block = disk::debugfs_bmap(image, path, index).map_err(|e| e.0)?;
        if block == 0 {
            return Err(format!("block {index} of {path} is a hole"));
        }
        let sector = block * u64::from(disk::IMAGE_BLOCK_SIZE) / 512;
        rules.push_str(&disk::fail_once_rule(event, sector));
    }
    let file = image.with_extension("rules");
    std::fs::write(&file, rules).map_err(|e| e.to_string())?;
    Ok(file)
}

/// The seeds' file as the image ships it.
fn datos() -> Vec<u8> {
    (0..initfs::DATOS_SIZE).map(initfs::datos_byte).collect()
}

/// user/tests/disk/disk_write.c stores through a mapping (two runs of dirty
/// pages) and writes a new file; the image is clean for e2fsck and holds
/// those bytes for debugfs; a second boot reads them back.
fn disk_writes_reach_the_image(kernel: &Path) -> Verdict {
    let image = ScratchImage::new()?;
    disk_boot(kernel, &image.0, None, "/bin/disk_write", 0)?;
    disk::e2fsck_clean(&image.0)?;
    let mut expected = datos();
    for p in [0usize, 1, 4] {
        for i in 0..PAGE {
            expected[p * PAGE + i] = (p * 13 + i * 5 + 1) as u8;
        }
    }
    image_holds(&image.0, DATOS_ON_IMAGE, &expected)?;
    let nuevo: Vec<u8> = (0..3 * PAGE + 100).map(|i| (i * 3 + 11) as u8).collect();
    image_holds(&image.0, "/usuario/nuevo.bin", &nuevo)?;
    disk_boot(kernel, &image.0, None, "/bin/disk_readback", 0)?;
    disk::e2fsck_clean(&image.0)
}

/// user/tests/disk/disk_eio.c under a rule failing the first write of
/// the file's first block: E_IO, nothing lost, then E_OK; the image holds
/// the stores.
fn disk_write_error_keeps_the_pages(kernel: &Path) -> Verdict {
    let image = ScratchImage::new()?;
    let rules = fail_once(&image.0, DATOS_ON_IMAGE, "write_aio", &[0])?;
    let console = disk_boot(kernel, &image.0, Some(&rules), "/bin/disk_eio", 0)?;
    if !console.iter().any(|l| l == "disk_eio: E_IO then E_OK") {
        return Err("disk_eio did not report E_IO then E_OK".into());
    }
    disk::e2fsck_clean(&image.0)?;
    let mut expected = datos();
    for (i, byte) in expected[..PAGE].iter_mut().enumerate() {
        *byte = (i ^ 0x5a) as u8;
    }
    image_holds(&image.0, DATOS_ON_IMAGE, &expected)
}

/// user/tests/disk/disk_msync_eio.c under `rules`: its first msync fails
/// with EIO and keeps the page, the second writes it; the image holds
/// both pages' stores and is clean.
fn disk_msync_error_keeps_the_page(kernel: &Path, image: &Path, rules: &Path) -> Verdict {
    let console = disk_boot(kernel, image, Some(rules), "/bin/disk_msync_eio", 0)?;
    if !console.iter().any(|l| l == "disk_msync_eio: EIO then 0") {
        return Err("disk_msync_eio did not report EIO then 0".into());
    }
    disk::e2fsck_clean(image)?;
    let mut expected = datos();
    for (i, byte) in expected[..2 * PAGE].iter_mut().enumerate() {
        *byte = if i < PAGE {
            i ^ 0x33
        } else {
            (i - PAGE) ^ 0x44
        } as u8;
    }
    image_holds(image, DATOS_ON_IMAGE, &expected)
}

/// [`disk_msync_error_keeps_the_page`] with the first write of the file's
/// first block failing once (a started write, without the kernel lock).
fn disk_msync_write_error_keeps_the_page(kernel: &Path) -> Verdict {
    let image = ScratchImage::new()?;
    let rules = fail_once(&image.0, DATOS_ON_IMAGE, "write_aio", &[0])?;
    disk_msync_error_keeps_the_page(kernel, &image.0, &rules)
}

/// [`disk_msync_error_keeps_the_page`] with the first device flush failing
/// once (the sync after the started writes).
fn disk_msync_flush_error_keeps_the_page(kernel: &Path) -> Verdict {
    let image = ScratchImage::new()?;
    let rules = image.0.with_extension("rules");
    let rule = "[inject-error]\nevent = \"flush_to_disk\"\nerrno = \"5\"\nonce = \"on\"\n";
    std::fs::write(&rules, rule).map_err(|e| e.to_string())?;
    disk_msync_error_keeps_the_page(kernel, &image.0, &rules)
}

/// user/tests/disk/disk_read_error.c under rules failing one read of the
/// file's blocks 2 and 5: sys_read gives E_IO, the fault ends it with 135.
fn disk_read_error_ends_the_faulting_program(kernel: &Path) -> Verdict {
    let image = ScratchImage::new()?;
    let rules = fail_once(&image.0, DATOS_ON_IMAGE, "read_aio", &[2, 5])?;
    let console = disk_boot(kernel, &image.0, Some(&rules), "/bin/disk_read_error", 135)?;
    if !console
        .iter()
        .any(|l| l == "disk_read_error: sys_read -> E_IO")
    {
        return Err("sys_read did not return E_IO".into());
    }
    Ok(())
}

/// user/tests/disk/disk_eio.c under a rule failing the first device flush
/// once: the data was written but not made durable, so sys_munmap returns
/// E_IO and keeps the pages; the second flushes and returns E_OK.
fn disk_flush_error_keeps_the_pages(kernel: &Path) -> Verdict {
    let image = ScratchImage::new()?;
    let rules = image.0.with_extension("rules");
    let rule = "[inject-error]\nevent = \"flush_to_disk\"\nerrno = \"5\"\nonce = \"on\"\n";
    std::fs::write(&rules, rule).map_err(|e| e.to_string())?;
    let console = disk_boot(kernel, &image.0, Some(&rules), "/bin/disk_eio", 0)?;
    if !console.iter().any(|l| l == "disk_eio: E_IO then E_OK") {
        return Err("disk_eio did not report E_IO then E_OK".into());
    }
    disk::e2fsck_clean(&image.0)
}

/// user/tests/disk/disk_power_cut.c: QEMU is killed as soon as sys_munmap
/// has returned E_OK; the stores are on the image and it is clean.
fn disk_power_cut_keeps_the_bytes(kernel: &Path) -> Verdict {
    let image = ScratchImage::new()?;
    cut_power_at(
        kernel,
        &image.0,
        "run=/bin/disk_power_cut",
        "disk_power_cut: unmapped",
    )?;
    disk::e2fsck_clean(&image.0)?;
    let mut expected = datos();
    for i in 0..PAGE {
        expected[PAGE + i] = (i * 11 + 7) as u8;
    }
    image_holds(&image.0, DATOS_ON_IMAGE, &expected)
}

/// user/tests/disk/disk_flusher.c (booted with `flush-age=1`) writes a
/// file and neither syncs nor closes it; once the flusher's requests have
/// come and gone the power is cut and the image holds the file.
fn disk_flusher_writes_by_itself(kernel: &Path) -> Verdict {
    let image = ScratchImage::new()?;
    let console = cut_power_at(
        kernel,
        &image.0,
        "run=/bin/disk_flusher flush-age=1",
        "disk_flusher: waited",
    )?;
    disk::e2fsck_clean(&image.0)?;
    let expected: Vec<u8> = (0..3 * PAGE + 10).map(|i| (i * 17 + 5) as u8).collect();
    image_holds(&image.0, "/usuario/later.bin", &expected)
        .map_err(|e| format!("{e}\n{}", indent(tail(&console))))
}

/// Boots with `command_line` on `image` and kills QEMU (a power cut) as
/// soon as the console shows `said`; returns the console.
fn cut_power_at(
    kernel: &Path,
    image: &Path,
    command_line: &str,
    said: &str,
) -> std::result::Result<Vec<String>, String> {
    let options = short_boot(kernel, command_line);
    let disk = DiskOptions {
        image: Some(image.to_path_buf()),
        blkdebug: None,
        memory: None,
        cut_power_at: Some(said.into()),
    };
    let outcome = boot::boot_with_disk(
        &options,
        Machine::Standard {
            cpus: suite_cpus().map_err(|e| e.0)?,
        },
        &disk,
        |_| {},
    )
    .map_err(|e| e.0)?;
    if outcome.console.last().map(String::as_str) != Some(said) {
        return Err(format!(
            "no power cut at {said:?} ({:?}):\n{}",
            outcome.ending,
            indent(tail(&outcome.console))
        ));
    }
    Ok(outcome.console)
}

/// user/tests/disk/disk_big_file.c writes a file one page larger than the
/// RAM disk could hold, with sys_write, and closes it: the image holds it.
fn disk_big_file_is_written_whole(kernel: &Path) -> Verdict {
    let image = ScratchImage::new()?;
    disk_boot(kernel, &image.0, None, "/bin/disk_big_file", 0)?;
    disk::e2fsck_clean(&image.0)?;
    let size = 32 * 1024 * 1024 + 100;
    let expected: Vec<u8> = (0..size).map(|i| (i / PAGE + i) as u8).collect();
    image_holds(&image.0, "/usuario/big.bin", &expected)
}

/// user/tests/disk/disk_wait_others_run.c on `cpus` CPUs: another thread's
/// system calls ran while msync(MS_SYNC) and fsync waited for the disk, a
/// writer killed mid-write-back left the disk usable, and the image holds
/// the last bytes and is clean.
fn disk_wait_others_run_on(kernel: &Path, cpus: u32) -> Verdict {
    let image = ScratchImage::new()?;
    let program = "/bin/disk_wait_others_run";
    let console = disk_boot_on(kernel, &image.0, None, program, 0, None, cpus)?;
    if !console.iter().any(|l| l == "disk_wait_others_run: done") {
        return Err("disk_wait_others_run did not finish its checks".into());
    }
    disk::e2fsck_clean(&image.0)?;
    let expected: Vec<u8> = (0..512 * PAGE)
        .map(|at| ((at / PAGE) * 5 + at % PAGE + 1) as u8)
        .collect();
    image_holds(&image.0, "/usuario/spread.bin", &expected)
}

fn disk_wait_lets_others_run(kernel: &Path) -> Verdict {
    disk_wait_others_run_on(kernel, suite_cpus().map_err(|e| e.0)?)
}

fn disk_wait_lets_others_run_on_one_cpu(kernel: &Path) -> Verdict {
    disk_wait_others_run_on(kernel, 1)
}

/// user/tests/disk/disk_read_fault_wait.c on `cpus` CPUs: another
/// thread's system calls ran while read faults waited for the disk, a
/// reader killed mid-fault left its frames and the disk usable, and the
/// image holds the file and is clean.
fn disk_read_faults_let_others_run_on(kernel: &Path, cpus: u32) -> Verdict {
    let image = ScratchImage::new()?;
    let program = match cpus {
        1 => "/bin/disk_read_fault_wait:one-cpu",
        _ => "/bin/disk_read_fault_wait",
    };
    let console = disk_boot_on(kernel, &image.0, None, program, 0, None, cpus)?;
    if !console.iter().any(|l| l == "disk_read_fault_wait: done") {
        return Err("disk_read_fault_wait did not finish its checks".into());
    }
    disk::e2fsck_clean(&image.0)?;
    let expected: Vec<u8> = (0..128 * PAGE)
        .map(|at| ((at / PAGE) * 3 + at % PAGE + 7) as u8)
        .collect();
    image_holds(&image.0, "/usuario/faults.bin", &expected)
}

fn disk_read_faults_let_others_run(kernel: &Path) -> Verdict {
    disk_read_faults_let_others_run_on(kernel, suite_cpus().map_err(|e| e.0)?)
}

fn disk_read_faults_let_others_run_on_one_cpu(kernel: &Path) -> Verdict {
    disk_read_faults_let_others_run_on(kernel, 1)
}

/// user/tests/disk/disk_munmap_wait.c on `cpus` CPUs: another thread's
/// system calls ran while sys_munmap waited for the disk, its mprotect,
/// sys_munmap and mmap(MAP_FIXED) of the range waited for the munmap's
/// end, an unmapper killed mid-write-back left its frames and the disk
/// usable, and the image holds the last bytes and is clean.
fn disk_munmap_waits_on(kernel: &Path, cpus: u32) -> Verdict {
    let image = ScratchImage::new()?;
    let program = "/bin/disk_munmap_wait";
    let console = disk_boot_on(kernel, &image.0, None, program, 0, None, cpus)?;
    if !console.iter().any(|l| l == "disk_munmap_wait: done") {
        return Err("disk_munmap_wait did not finish its checks".into());
    }
    disk::e2fsck_clean(&image.0)?;
    let expected: Vec<u8> = (0..512 * PAGE)
        .map(|at| ((at / PAGE) * 7 + at % PAGE + 3) as u8)
        .collect();
    image_holds(&image.0, "/usuario/unmapped.bin", &expected)
}

fn disk_munmap_waits(kernel: &Path) -> Verdict {
    disk_munmap_waits_on(kernel, suite_cpus().map_err(|e| e.0)?)
}

fn disk_munmap_waits_on_one_cpu(kernel: &Path) -> Verdict {
    disk_munmap_waits_on(kernel, 1)
}

/// user/tests/disk/disk_munmap_wait.c `eio` under a rule failing the
/// first write of block 200 of the seeds' file (the munmap's seventh batch
/// of 16 runs): E_IO with the mapping and its stores intact and pages
/// dirty, then E_OK; the image holds every even page's stores and is
/// clean.
fn disk_munmap_later_batch_error_keeps_the_mapping(kernel: &Path) -> Verdict {
    let image = ScratchImage::new()?;
    let rules = fail_once(&image.0, DATOS_ON_IMAGE, "write_aio", &[200])?;
    let program = "/bin/disk_munmap_wait:eio";
    let console = disk_boot(kernel, &image.0, Some(&rules), program, 0)?;
    if !console
        .iter()
        .any(|l| l == "disk_munmap_wait: E_IO then E_OK")
    {
        return Err("disk_munmap_wait did not report E_IO then E_OK".into());
    }
    disk::e2fsck_clean(&image.0)?;
    let mut expected = datos();
    for (at, byte) in expected.iter_mut().enumerate() {
        let page = at / PAGE;
        if page.is_multiple_of(2) {
            *byte = (page * 7 + at % PAGE + 5) as u8;
        }
    }
    image_holds(&image.0, DATOS_ON_IMAGE, &expected)
}

/// user/tests/disk/disk_exit_wait.c on `cpus` CPUs: a child's exit leaves
/// its dirty mapping of the seeds' file to the flusher, whose writes its
/// parent sees going while it runs; a child killed while it stores gives
/// its frames back once written; the image holds the last pass's bytes
/// and is clean.
fn disk_exit_waits_on(kernel: &Path, cpus: u32) -> Verdict {
    let image = ScratchImage::new()?;
    let program = "/bin/disk_exit_wait";
    let console = disk_boot_on(kernel, &image.0, None, program, 0, None, cpus)?;
    if !console.iter().any(|l| l == "disk_exit_wait: done") {
        return Err("disk_exit_wait did not finish its checks".into());
    }
    disk::e2fsck_clean(&image.0)?;
    let expected: Vec<u8> = (0..initfs::DATOS_SIZE)
        .map(|at| ((at / PAGE) * 7 + at % PAGE + 3) as u8)
        .collect();
    image_holds(&image.0, DATOS_ON_IMAGE, &expected)
}

fn disk_exit_waits(kernel: &Path) -> Verdict {
    disk_exit_waits_on(kernel, suite_cpus().map_err(|e| e.0)?)
}

fn disk_exit_waits_on_one_cpu(kernel: &Path) -> Verdict {
    disk_exit_waits_on(kernel, 1)
}

/// user/tests/disk/disk_exit_wait.c `eio` under a rule failing the first
/// write of block 100 of the seeds' file: the flusher's write of what the
/// child's exit left fails, the file stays dirty and is written again a
/// second later; the image holds the child's stores and is clean.
fn disk_exit_write_error_is_tried_again(kernel: &Path) -> Verdict {
    let image = ScratchImage::new()?;
    let rules = fail_once(&image.0, DATOS_ON_IMAGE, "write_aio", &[100])?;
    let program = "/bin/disk_exit_wait:eio";
    let console = disk_boot(kernel, &image.0, Some(&rules), program, 0)?;
    if !console
        .iter()
        .any(|l| l.starts_with("disk_exit_wait: eio: written again"))
    {
        return Err("disk_exit_wait did not report the file written again".into());
    }
    disk::e2fsck_clean(&image.0)?;
    let mut expected = datos();
    for (at, byte) in expected.iter_mut().enumerate() {
        let page = at / PAGE;
        if page.is_multiple_of(2) {
            *byte = (page * 7 + at % PAGE + 5) as u8;
        }
    }
    image_holds(&image.0, DATOS_ON_IMAGE, &expected)
}

/// user/tests/disk/disk_write_miss_wait.c: writes ending inside pages the
/// cache lacks read them without the kernel lock (a watcher thread sees a
/// write's read sent while its page is not resident), a writer killed
/// gives its frames back; the image holds the written bytes and is clean.
fn disk_write_misses_wait(kernel: &Path) -> Verdict {
    let image = ScratchImage::new()?;
    let program = "/bin/disk_write_miss_wait";
    let console = disk_boot(kernel, &image.0, None, program, 0)?;
    if !console.iter().any(|l| l == "disk_write_miss_wait: done") {
        return Err("disk_write_miss_wait did not finish its checks".into());
    }
    disk::e2fsck_clean(&image.0)?;
    let pages = 64;
    let end = (pages - 1) * PAGE + 100;
    let expected: Vec<u8> = (0..pages * PAGE)
        .map(|o| match o < end {
            true => (o * 5 + 1) as u8,
            false => ((o / PAGE) * 3 + o % PAGE + 7) as u8,
        })
        .collect();
    image_holds(&image.0, "/usuario/misses.bin", &expected)
}

/// user/tests/disk/disk_write_miss_wait.c `eio` under a rule failing the
/// first read of blocks 2 and 3 of the seeds' file: a short count, then
/// `E_IO` with nothing written, then the bytes; the image holds them and
/// is clean.
fn disk_write_miss_read_error(kernel: &Path) -> Verdict {
    let image = ScratchImage::new()?;
    let rules = fail_once(&image.0, DATOS_ON_IMAGE, "read_aio", &[2, 3])?;
    let program = "/bin/disk_write_miss_wait:eio";
    let console = disk_boot(kernel, &image.0, Some(&rules), program, 0)?;
    if !console
        .iter()
        .any(|l| l == "disk_write_miss_wait: eio: short count, then E_IO, then written")
    {
        return Err("disk_write_miss_wait did not report its eio run".into());
    }
    disk::e2fsck_clean(&image.0)?;
    let mut expected = datos();
    for (o, byte) in expected.iter_mut().enumerate().take(3 * PAGE + 10) {
        *byte = (o * 5 + 1) as u8;
    }
    image_holds(&image.0, DATOS_ON_IMAGE, &expected)
}

/// user/tests/disk/disk_interrupts.c unmaps 64 scattered dirty pages, then
/// 64 adjacent ones, and checks that the driver took completion interrupts
/// (its waits sleep); the console's counts show one data request per run,
/// and the image holds both passes' bytes.
fn disk_completion_interrupts_and_runs(kernel: &Path) -> Verdict {
    let image = ScratchImage::new()?;
    let console = disk_boot(kernel, &image.0, None, "/bin/disk_interrupts", 0)?;
    if !console.iter().any(|l| l == "disk_interrupts: done") {
        return Err("disk_interrupts did not finish its checks".into());
    }
    // QEMU's MADT overrides the PCI IRQs (5, 9, 10, 11) as level-triggered,
    // active high: the route must be what the override says.
    if !console.iter().any(|l| {
        l.contains("virtio-blk:")
            && l.contains("interrupt-driven")
            && l.contains("Level-triggered, active High")
    }) {
        return Err(format!(
            "the kernel did not wire the disk's interrupt as the MADT says:\n{}",
            indent(tail(&console))
        ));
    }
    disk::e2fsck_clean(&image.0)?;
    let expected: Vec<u8> = (0..128 * PAGE)
        .map(|at| {
            let (p, i) = (at / PAGE, at % PAGE);
            if (12..76).contains(&p) {
                (p * 3 + i * 11 + 1) as u8
            } else if p % 2 == 0 {
                (p * 7 + i) as u8
            } else {
                0x5a
            }
        })
        .collect();
    image_holds(&image.0, "/usuario/runs.bin", &expected)
}

/// RAM of the machine the reclaim scenarios boot: less than their files.
const SMALL_RAM: &str = "64M";
/// What the word at byte `8k` of `big256.bin` holds: `k` times this.
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// A fresh image of `size` holding, besides the standard files, the file
/// `name` (below `usuario/`) of `len` bytes (a multiple of 1 MiB), each
/// 1 MiB piece filled by `fill(offset, piece)`.
fn image_with_file(
    size: &str,
    name: &str,
    len: usize,
    fill: impl Fn(usize, &mut [u8]),
) -> std::result::Result<ScratchImage, String> {
    use std::io::Write;
    let image = ScratchImage(disk::fresh_image_path().map_err(|e| e.0)?);
    disk::create_image_with(&image.0, size, |root| {
        let file = std::fs::File::create(root.join("usuario").join(name))?;
        let mut out = std::io::BufWriter::new(file);
        let mut piece = vec![0u8; 1 << 20];
        for start in (0..len).step_by(piece.len()) {
            fill(start, &mut piece);
            out.write_all(&piece)?;
        }
        out.flush()?;
        Ok(())
    })
    .map_err(|e| e.0)?;
    Ok(image)
}

/// The kernel's `memory: N frames, M free` line says the machine had less
/// RAM than `bytes`.
fn ram_was_below(console: &[String], bytes: usize) -> Verdict {
    let frames = console
        .iter()
        .find_map(|l| l.strip_prefix("[neoos] memory: "))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse::<usize>().ok())
        .ok_or("no `memory: N frames` line")?;
    if frames * PAGE >= bytes {
        return Err(format!("{frames} frames: not less RAM than {bytes} bytes"));
    }
    Ok(())
}

/// user/tests/disk/disk_big_map.c on a 64 MiB machine: a 256 MiB file made
/// on the host reads right through one mapping and through sys_read.
fn disk_big_file_is_read_in_small_ram(kernel: &Path) -> Verdict {
    const SIZE: usize = 256 << 20;
    let image = image_with_file("320M", "big256.bin", SIZE, |start, piece| {
        for (k, word) in piece.chunks_exact_mut(8).enumerate() {
            let index = (start / 8 + k) as u64;
            word.copy_from_slice(&index.wrapping_mul(GOLDEN).to_le_bytes());
        }
    })?;
    let program = "/bin/disk_big_map";
    let console = disk_boot_in(kernel, &image.0, None, program, 0, Some(SMALL_RAM))?;
    ram_was_below(&console, SIZE / 4)?;
    for what in ["mapping sum right", "read sum right"] {
        let said = format!("disk_big_map: {what}");
        if !console.iter().any(|l| l.starts_with(&said)) {
            return Err(format!("no line {said:?}:\n{}", indent(tail(&console))));
        }
    }
    disk::e2fsck_clean(&image.0)
}

/// The kernel's `reclaim:` line (said at power-off when reclaim met dirty
/// pages) says it left dirty pages to the flusher's unlocked batches and
/// wrote fewer under the lock than it left.
fn reclaim_left_most_to_the_flusher(console: &[String]) -> Verdict {
    let said = console
        .iter()
        .find_map(|l| l.strip_prefix("[neoos] reclaim: "))
        .ok_or("no `reclaim:` line: reclaim met no dirty page")?;
    eprintln!("reclaim: {said}");
    let count = |word: &str| -> Option<u64> {
        let before = said.split(word).next()?;
        before.split_whitespace().last()?.parse().ok()
    };
    let (Some(handed), Some(locked)) = (
        count(" dirty pages left to the flusher"),
        count(" written under the lock"),
    ) else {
        return Err(format!("unreadable `reclaim: {said}`"));
    };
    if handed == 0 || locked >= handed {
        return Err(format!(
            "reclaim wrote as many under the lock as it left to the flusher: {said}"
        ));
    }
    Ok(())
}

/// user/tests/disk/disk_big_dirty.c on a 64 MiB machine: stores to every
/// page of a 160 MiB shared mapping reach the image (dirty pages written
/// to make room, the rest by sys_munmap); e2fsck finds it clean.
fn disk_big_dirty_mapping_reaches_the_image(kernel: &Path) -> Verdict {
    const SIZE: usize = 160 << 20;
    const STORED: usize = 16;
    let image = image_with_file("200M", "dirty160.bin", SIZE, |_, piece| piece.fill(0x11))?;
    let program = "/bin/disk_big_dirty";
    let console = disk_boot_in(kernel, &image.0, None, program, 0, Some(SMALL_RAM))?;
    ram_was_below(&console, SIZE / 2)?;
    if !console.iter().any(|l| l == "disk_big_dirty: unmapped") {
        return Err("disk_big_dirty did not report unmapped".into());
    }
    reclaim_left_most_to_the_flusher(&console)?;
    disk::e2fsck_clean(&image.0)?;
    let mut expected = vec![0x11u8; SIZE];
    for p in 0..SIZE / PAGE {
        for i in 0..STORED {
            let b = (p * 7 + i) as u8;
            expected[p * PAGE + i] = if b == 0x11 { 0x12 } else { b };
        }
    }
    image_holds(&image.0, "/usuario/dirty160.bin", &expected)
}

/// user/tests/disk/disk_anon_oom.c on a 64 MiB machine: 128 MiB of
/// anonymous memory touched ends the program as out of memory (137),
/// reclaim notwithstanding, and the kernel powers off cleanly.
fn disk_anonymous_memory_runs_out(kernel: &Path) -> Verdict {
    let image = ScratchImage::new()?;
    let program = "/bin/disk_anon_oom";
    let console = disk_boot_in(kernel, &image.0, None, program, 137, Some(SMALL_RAM))?;
    ram_was_below(&console, 128 << 20)?;
    if console
        .iter()
        .any(|l| l.starts_with("disk_anon_oom: touched"))
    {
        return Err("the program touched more anonymous memory than RAM".into());
    }
    disk::e2fsck_clean(&image.0)
}

/// The file of user/tests/disk/disk_reclaim_wait.c on the image.
const PRESSURE_ON_IMAGE: &str = "/usuario/presion.bin";
/// Its size: two and a half times the machine's RAM.
const PRESSURE_SIZE: usize = 160 << 20;

/// A fresh image with [`PRESSURE_ON_IMAGE`], every byte 0x11.
fn pressure_image() -> std::result::Result<ScratchImage, String> {
    image_with_file("320M", "presion.bin", PRESSURE_SIZE, |_, piece| {
        piece.fill(0x11)
    })
}

/// What [`PRESSURE_ON_IMAGE`] holds once disk_reclaim_wait.c wrote its
/// first `mib` MiB (the console's `wrote N MiB`), checked on the image.
fn pressure_written(image: &Path, console: &[String]) -> Verdict {
    let mib: usize = console
        .iter()
        .find_map(|l| l.strip_prefix("disk_reclaim_wait: wrote "))
        .and_then(|l| l.strip_suffix(" MiB"))
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("no `wrote N MiB` line:\n{}", indent(tail(console))))?;
    let mut expected = vec![0x11u8; PRESSURE_SIZE];
    for (p, page) in expected[..mib << 20].chunks_exact_mut(PAGE).enumerate() {
        page.fill((p * 13 + 7) as u8);
        page[..8].copy_from_slice(&(p as u64).to_le_bytes());
    }
    disk::e2fsck_clean(image)?;
    image_holds(image, PRESSURE_ON_IMAGE, &expected)
}

/// user/tests/disk/disk_reclaim_wait.c on a 64 MiB machine: while the main
/// thread overwrites a 160 MiB file, a second thread sees reclaim's dirty
/// pages being written (a request in flight while it runs); a writer
/// killed meanwhile ends with 137 and its frames come back; reclaim wrote
/// most pages without the lock; the image is clean and holds the bytes.
fn disk_reclaim_writes_let_others_run(kernel: &Path) -> Verdict {
    let image = pressure_image()?;
    let program = "/bin/disk_reclaim_wait";
    let console = disk_boot_in(kernel, &image.0, None, program, 0, Some(SMALL_RAM))?;
    ram_was_below(&console, PRESSURE_SIZE / 2)?;
    if !console.iter().any(|l| l == "disk_reclaim_wait: done") {
        return Err("disk_reclaim_wait did not finish its checks".into());
    }
    reclaim_left_most_to_the_flusher(&console)?;
    pressure_written(&image.0, &console)
}

/// user/tests/disk/disk_reclaim_wait.c `eio` on a 64 MiB machine under a
/// rule failing once the first write of page 100's block: the failed
/// write keeps its pages dirty and they are written again; the image
/// holds every byte and is clean.
fn disk_reclaim_write_error(kernel: &Path) -> Verdict {
    let image = pressure_image()?;
    let rules = fail_once(&image.0, PRESSURE_ON_IMAGE, "write_aio", &[100])?;
    let program = "/bin/disk_reclaim_wait:eio";
    let console = disk_boot_in(kernel, &image.0, Some(&rules), program, 0, Some(SMALL_RAM))?;
    for line in console.iter().filter(|l| l.contains("reclaim")) {
        eprintln!("{line}");
    }
    pressure_written(&image.0, &console)
}

/// user/tests/disk/disk_sync_wait.c on `cpus` CPUs: a watcher thread sees
/// an fsync's inode write and its flush in flight (the counts between its
/// requests), a writer killed in its fsync loop ends with 137; the image
/// is clean and holds the last bytes.
fn disk_sync_waits_on(kernel: &Path, cpus: u32) -> Verdict {
    let image = ScratchImage::new()?;
    let program = "/bin/disk_sync_wait";
    let console = disk_boot_on(kernel, &image.0, None, program, 0, None, cpus)?;
    if !console.iter().any(|l| l == "disk_sync_wait: done") {
        return Err("disk_sync_wait did not finish its checks".into());
    }
    disk::e2fsck_clean(&image.0)?;
    let expected: Vec<u8> = (0..16 * PAGE)
        .map(|at| ((at / PAGE) * 7 + at % PAGE + 3) as u8)
        .collect();
    image_holds(&image.0, "/usuario/sync.bin", &expected)
}

fn disk_sync_waits(kernel: &Path) -> Verdict {
    disk_sync_waits_on(kernel, suite_cpus().map_err(|e| e.0)?)
}

fn disk_sync_waits_on_one_cpu(kernel: &Path) -> Verdict {
    disk_sync_waits_on(kernel, 1)
}

/// user/tests/disk/disk_sync_wait.c's `eio` run under a rule failing once
/// the first write of the sector holding datos.bin's inode: the fsync
/// gives E_IO with no flush sent, the second writes the page and the inode
/// again and flushes; the image is clean and holds the bytes.
fn disk_sync_inode_write_error(kernel: &Path) -> Verdict {
    let image = ScratchImage::new()?;
    let located =
        disk::debugfs_request(&image.0, &format!("imap {DATOS_ON_IMAGE}")).map_err(|e| e.0)?;
    let number_after = |word: &str| -> Option<u64> {
        let rest = &located[located.find(word)? + word.len()..];
        let text = rest.trim_start().split([',', '\n']).next()?.trim();
        match text.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).ok(),
            None => text.parse().ok(),
        }
    };
    let (Some(block), Some(offset)) = (number_after("located at block"), number_after("offset"))
    else {
        return Err(format!("debugfs imap said: {located}"));
    };
    let sector = (block * u64::from(disk::IMAGE_BLOCK_SIZE) + offset) / 512;
    let rules = image.0.with_extension("rules");
    std::fs::write(&rules, disk::fail_once_rule("write_aio", sector)).map_err(|e| e.to_string())?;
    let program = "/bin/disk_sync_wait:eio";
    let console = disk_boot(kernel, &image.0, Some(&rules), program, 0)?;
    if !console
        .iter()
        .any(|l| l == "disk_sync_wait: eio: E_IO then E_OK")
    {
        return Err("disk_sync_wait did not report its eio run".into());
    }
    disk::e2fsck_clean(&image.0)?;
    let mut expected = datos();
    for (i, byte) in expected.iter_mut().enumerate().take(100) {
        *byte = (i * 3 + 1) as u8;
    }
    image_holds(&image.0, DATOS_ON_IMAGE, &expected)
}

/// Directories and files per directory of [`image_with_tree`].
const TREE_DIRS: usize = 48;
const TREE_FILES: usize = 64;

/// A fresh image holding, besides the standard files, `/arbol/dNN` for NN
/// below [`TREE_DIRS`], each with [`TREE_FILES`] files `fichero-NN-MMM`
/// whose 4 bytes are `NN` and `MMM % 100`, two digits each.
fn image_with_tree() -> std::result::Result<ScratchImage, String> {
    let image = ScratchImage(disk::fresh_image_path().map_err(|e| e.0)?);
    disk::create_image_with(&image.0, disk::IMAGE_SIZE, |root| {
        for dir in 0..TREE_DIRS {
            let folder = root.join(format!("arbol/d{dir:02}"));
            std::fs::create_dir_all(&folder)?;
            for file in 0..TREE_FILES {
                let bytes = format!("{dir:02}{:02}", file % 100);
                std::fs::write(folder.join(format!("fichero-{dir:02}-{file:03}")), bytes)?;
            }
        }
        Ok(())
    })
    .map_err(|e| e.0)?;
    Ok(image)
}

/// user/tests/disk/disk_namespace_wait.c on `cpus` CPUs: a watcher thread
/// sees a stat and a creating open of uncached paths wait for their
/// metadata reads, a walker killed while its stats wait ends with 137;
/// the image is clean and holds the file made last.
fn disk_namespace_waits_on(kernel: &Path, cpus: u32) -> Verdict {
    let image = image_with_tree()?;
    let program = "/bin/disk_namespace_wait";
    let console = disk_boot_on(kernel, &image.0, None, program, 0, None, cpus)?;
    if !console.iter().any(|l| l == "disk_namespace_wait: done") {
        return Err("disk_namespace_wait did not finish its checks".into());
    }
    disk::e2fsck_clean(&image.0)?;
    let last = TREE_DIRS - 1;
    image_holds(
        &image.0,
        &format!("/arbol/d{last:02}/fichero-{last:02}-999"),
        b"new!",
    )
}

fn disk_namespace_waits(kernel: &Path) -> Verdict {
    disk_namespace_waits_on(kernel, suite_cpus().map_err(|e| e.0)?)
}

fn disk_namespace_waits_on_one_cpu(kernel: &Path) -> Verdict {
    disk_namespace_waits_on(kernel, 1)
}

/// user/tests/disk/disk_namespace_wait.c's `eio` run under a rule failing
/// once the first read of /arbol/d07's directory block: the stat of a
/// file in it is E_OK (the metadata read is made again); the image is
/// clean.
fn disk_namespace_read_error(kernel: &Path) -> Verdict {
    let image = image_with_tree()?;
    let rules = fail_once(&image.0, "/arbol/d07", "read_aio", &[0])?;
    let program = "/bin/disk_namespace_wait:eio";
    let console = disk_boot(kernel, &image.0, Some(&rules), program, 0)?;
    if !console
        .iter()
        .any(|l| l == "disk_namespace_wait: eio: stat E_OK after a failed read")
    {
        return Err("disk_namespace_wait did not report its eio run".into());
    }
    disk::e2fsck_clean(&image.0)
}

/// user/tests/disk-linux/disk_linux_writev_wait.c (musl): a watcher
/// thread sees a writev's reads of the pages it writes in part go by, a
/// child writing in a loop is killed, the file reads back; e2fsck clean.
fn disk_linux_writev_waits(kernel: &Path) -> Verdict {
    let image = ScratchImage::new()?;
    let console = disk_boot(kernel, &image.0, None, "/bin/disk_linux_writev_wait", 0)?;
    if !console.iter().any(|l| l == "disk_linux_writev_wait: done") {
        return Err("disk_linux_writev_wait did not finish its checks".into());
    }
    disk::e2fsck_clean(&image.0)
}

/// disk_linux_writev_wait.c's `eio` run under rules failing once the reads
/// of blocks 2 and 5 of datos.bin: the writev writing them in part returns
/// its whole count (the reads are made again); the image holds its bytes.
fn disk_linux_writev_read_error(kernel: &Path) -> Verdict {
    let image = ScratchImage::new()?;
    let rules = fail_once(&image.0, DATOS_ON_IMAGE, "read_aio", &[2, 5])?;
    let program = "/bin/disk_linux_writev_wait:eio";
    let console = disk_boot(kernel, &image.0, Some(&rules), program, 0)?;
    if !console.iter().any(|l| l == "disk_linux_writev_wait: done") {
        return Err("disk_linux_writev_wait eio did not finish its checks".into());
    }
    disk::e2fsck_clean(&image.0)?;
    let mut expected = datos();
    for (i, byte) in expected[2 * PAGE + 100..5 * PAGE + 100]
        .iter_mut()
        .enumerate()
    {
        *byte = (i * 5 + 3) as u8;
    }
    image_holds(&image.0, DATOS_ON_IMAGE, &expected)
}

/// user/tests/disk-linux/disk_linux_flush_wait.c (musl): a watcher thread
/// sees an unlink's device flush on the device before the call returns;
/// chmod and rename work; a child chmodding in a loop is killed; e2fsck
/// clean.
fn disk_linux_flush_waits(kernel: &Path) -> Verdict {
    let image = ScratchImage::new()?;
    let console = disk_boot(kernel, &image.0, None, "/bin/disk_linux_flush_wait", 0)?;
    if !console.iter().any(|l| l == "disk_linux_flush_wait: done") {
        return Err("disk_linux_flush_wait did not finish its checks".into());
    }
    disk::e2fsck_clean(&image.0)
}

/// disk_linux_flush_wait.c's `eio` run under a rule failing the first
/// device flush once: the unlink gives EIO with its name gone; e2fsck
/// clean.
fn disk_linux_flush_error(kernel: &Path) -> Verdict {
    let image = ScratchImage::new()?;
    let rules = image.0.with_extension("rules");
    let rule = "[inject-error]\nevent = \"flush_to_disk\"\nerrno = \"5\"\nonce = \"on\"\n";
    std::fs::write(&rules, rule).map_err(|e| e.to_string())?;
    let program = "/bin/disk_linux_flush_wait:eio";
    let console = disk_boot(kernel, &image.0, Some(&rules), program, 0)?;
    if !console.iter().any(|l| l == "disk_linux_flush_wait: done") {
        return Err("disk_linux_flush_wait eio did not finish its checks".into());
    }
    disk::e2fsck_clean(&image.0)
}

/// user/tests/disk-linux/disk_linux_meta_wait.c (musl): a watcher thread
/// sees several metadata writes of an unlink, a rename and a mkdir on the
/// device at once before the call returns; a child renaming in a loop is
/// killed; e2fsck clean.
fn disk_linux_meta_waits(kernel: &Path) -> Verdict {
    let image = ScratchImage::new()?;
    disk_boot_done(kernel, &image.0, None, "/bin/disk_linux_meta_wait")?;
    disk::e2fsck_clean(&image.0)
}

/// disk_linux_meta_wait.c's `eio` run under a rule failing the first write
/// of /usuario's directory block once: the unlink gives EIO with its name
/// gone, the chmod after writes the block; e2fsck clean.
fn disk_linux_meta_write_error(kernel: &Path) -> Verdict {
    let image = ScratchImage::new()?;
    let rules = fail_once(&image.0, "/usuario", "write_aio", &[0])?;
    let program = "/bin/disk_linux_meta_wait:eio";
    disk_boot_done(kernel, &image.0, Some(&rules), program)?;
    disk::e2fsck_clean(&image.0)
}

/// user/tests/disk-linux/disk_linux_holes_wait.c (musl): a pread through
/// an indirect block not cached and msyncs filling holes of fresh sparse
/// files make no request under the lock (DiskSyncReads, DiskSyncWrites),
/// a watcher thread sees an msync's requests in flight before it returns,
/// a child doing the same in a loop is killed; e2fsck clean, and round
/// 0's file holds its stores.
fn disk_linux_holes_wait(kernel: &Path) -> Verdict {
    let image = ScratchImage::new()?;
    disk_boot_done(kernel, &image.0, None, "/bin/disk_linux_holes_wait")?;
    disk::e2fsck_clean(&image.0)?;
    image_holds(&image.0, "/usuario/huecos-00.bin", &holes_stored(0))
}

/// disk_linux_holes_wait.c's `eio` run under a rule failing the first
/// write of the first group's block bitmap once (the msync's metadata,
/// written after its data): the msync gives EIO, the next 0; the image is
/// clean and holds the stores.
fn disk_linux_holes_write_error(kernel: &Path) -> Verdict {
    let image = ScratchImage::new()?;
    let stats = disk::debugfs_request(&image.0, "stats").map_err(|e| e.0)?;
    let bitmap: u64 = stats
        .lines()
        .find_map(|l| l.trim().strip_prefix("Group  0: block bitmap at "))
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .ok_or("debugfs stats: no block bitmap")?;
    let rules = image.0.with_extension("rules");
    let sector = bitmap * u64::from(disk::IMAGE_BLOCK_SIZE) / 512;
    // Writes only: the msync's placing reads the bitmap first (without
    // the lock), and blkdebug's rule would fail that read instead.
    let rule = disk::fail_once_rule("write_aio", sector)
        .replace("once = \"on\"", "iotype = \"write\"\nonce = \"on\"");
    std::fs::write(&rules, rule).map_err(|e| e.to_string())?;
    let program = "/bin/disk_linux_holes_wait:eio";
    disk_boot_done(kernel, &image.0, Some(&rules), program)?;
    disk::e2fsck_clean(&image.0)?;
    image_holds(&image.0, "/usuario/huecos-00.bin", &holes_stored(0))
}

/// The bytes disk_linux_holes_wait.c leaves in round `n`'s file: 20 MiB of
/// zeros but `hueco-NN-II` 100 bytes into each 4 MiB's middle page.
fn holes_stored(n: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; 20 << 20];
    for i in 0..5 {
        let store = format!("hueco-{n:02}-{i:02}");
        let at = (2 << 20) + i * (4 << 20) + 100;
        bytes[at..at + store.len()].copy_from_slice(store.as_bytes());
    }
    bytes
}

/// user/tests/disk-linux/disk_linux_rest_wait.c (musl): an open with
/// O_TRUNC, a truncate inside a block and the last close of an unlinked
/// file each have several writes seen on the device before they return,
/// none written under the lock; a truncater killed in its loop; e2fsck
/// clean.
fn disk_linux_rest_waits(kernel: &Path) -> Verdict {
    let image = ScratchImage::new()?;
    disk_boot_done(kernel, &image.0, None, "/bin/disk_linux_rest_wait")?;
    disk::e2fsck_clean(&image.0)
}

/// user/tests/disk-linux/disk_linux_uaccess_wait.c (musl): a watcher
/// thread sees the read of a write's buffer page, a read's and a stat's
/// path page, each in an uncached mapping of a /home file, on the device
/// before the call returns; a child writing so in a loop is killed;
/// e2fsck clean.
fn disk_linux_uaccess_waits(kernel: &Path) -> Verdict {
    let image = ScratchImage::new()?;
    disk_boot_done(kernel, &image.0, None, "/bin/disk_linux_uaccess_wait")?;
    disk::e2fsck_clean(&image.0)
}

/// disk_linux_rest_wait.c's `eio` run under a rule failing the first
/// write of datos.bin's block 1 once: the truncate to 4196 bytes gives EIO
/// with its length, the chmod after writes the zeroed tail; the image is
/// clean and holds datos.bin's first 4196 bytes, then zeros to 8192.
fn disk_linux_rest_write_error(kernel: &Path) -> Verdict {
    let image = ScratchImage::new()?;
    let rules = fail_once(&image.0, "/usuario/datos.bin", "write_aio", &[1])?;
    let program = "/bin/disk_linux_rest_wait:eio";
    disk_boot_done(kernel, &image.0, Some(&rules), program)?;
    disk::e2fsck_clean(&image.0)?;
    let mut expected = datos();
    expected.truncate(4096 + 100);
    expected.resize(8192, 0);
    image_holds(&image.0, "/usuario/datos.bin", &expected)
}

/// user/tests/disk/disk_neo_open_wait.c on one CPU (the watcher runs
/// while the opener sleeps): NeoOS opens with O_CREAT and O_TRUNC each
/// seen with requests on the device before they return; a truncater
/// killed in its loop ends with 137; e2fsck clean.
fn disk_neo_open_waits(kernel: &Path) -> Verdict {
    let image = ScratchImage::new()?;
    let program = "/bin/disk_neo_open_wait";
    let console = disk_boot_on(kernel, &image.0, None, program, 0, None, 1)?;
    if !console.iter().any(|l| l == "disk_neo_open_wait: done") {
        let console = indent(tail(&console));
        return Err(format!(
            "disk_neo_open_wait did not finish its checks:\n{console}"
        ));
    }
    disk::e2fsck_clean(&image.0)
}

/// disk_neo_open_wait.c's `eio` run under a rule failing the first write
/// of /usuario's directory block once: the creating open gives E_IO, the
/// file is there after; the image is clean and holds its bytes.
fn disk_neo_open_write_error(kernel: &Path) -> Verdict {
    let image = ScratchImage::new()?;
    let rules = fail_once(&image.0, "/usuario", "write_aio", &[0])?;
    let program = "/bin/disk_neo_open_wait:eio";
    let console = disk_boot(kernel, &image.0, Some(&rules), program, 0)?;
    if !console
        .iter()
        .any(|l| l == "disk_neo_open_wait: eio: E_IO then the file is there")
    {
        let console = indent(tail(&console));
        return Err(format!(
            "disk_neo_open_wait eio did not report its run:\n{console}"
        ));
    }
    disk::e2fsck_clean(&image.0)?;
    image_holds(&image.0, "/usuario/nuevo-eio", b"eio!")
}

/// disk_linux_uaccess_wait.c's `eio` run under rules failing once the
/// reads of blocks 2 and 5 of datos.bin: a write from page 2 of a mapping
/// and a read into page 5 give EIO with nothing moved, then their count;
/// the image is unchanged.
fn disk_linux_uaccess_read_error(kernel: &Path) -> Verdict {
    let image = ScratchImage::new()?;
    let rules = fail_once(&image.0, DATOS_ON_IMAGE, "read_aio", &[2, 5])?;
    let program = "/bin/disk_linux_uaccess_wait:eio";
    disk_boot_done(kernel, &image.0, Some(&rules), program)?;
    disk::e2fsck_clean(&image.0)?;
    image_holds(&image.0, DATOS_ON_IMAGE, &datos())
}
