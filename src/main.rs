//! `cargo run` — builds NeoOS and boots it under QEMU. Its arguments are
//! parsed by clap: `cargo run -- --help` lists them.
//!
//! ```text
//! cargo run                         the demo, then power off
//! cargo run -- prog.c [more.c ...]  compile your programs, run them in order as /user/NAME
//! cargo run -- --musl prog.c        build prog.c with musl-gcc -static: a Linux program
//! cargo run -- ./a.out              run a prebuilt static x86_64 ELF program
//! cargo run -- p.c --args "a 'b c'"  run p with arguments a and "b c" (split like a shell)
//! cargo run -- --shell              an interactive shell
//! cargo run -- --cpus 4 ...         boot with 4 CPUs (default 1)
//! cargo run -- --gdb ...            wait for gdb on localhost:1234 (no time limit)
//! cargo run -- --timeout 60 ...     time limit in seconds (default 120)
//! cargo run -- --bench [--linux]    the benchmark of docs/benchmarks.md
//! cargo run -- --icount prog.c      your programs on the benchmark machine
//!                                   (`rdtsc` counts guest instructions)
//! cargo run -- --soak N [--calls M] N children of M random system calls each
//! cargo run -- --disk IMG ...       /home on the ext2 image IMG (made when missing, kept)
//! cargo run -- --memory 64M ...     the guest's RAM
//! cargo run -- --blkdebug RULES ... QEMU's blkdebug driver with RULES under the disk
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser};

use neoos::bench::{self, BenchOptions};
use neoos::boot::{self, BootOptions, Ending, Machine};
use neoos::disk::{self, DiskOptions};
use neoos::launch::{self, Run};
use neoos::{build, initfs, out_dir, repo_root, Result, ToolError};

/// Most CPUs `--cpus` accepts (the kernel's limit; QEMU's PC machine
/// allows 255 with the xAPIC).
const MAX_CPUS: i64 = 64;
/// The time limit of a boot, unless --timeout says otherwise.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// The benchmark's, per boot (instruction counting slows QEMU down).
const DEFAULT_BENCH_TIMEOUT: Duration = Duration::from_secs(1800);
/// The folder of the image that holds your own programs (never /bin, so
/// that no program of yours is shadowed by a built-in one of the same name).
const USER_PROGRAMS_DIR: &str = "/user";

/// Builds NeoOS, boots it under QEMU and runs the demo, your C programs, the
/// shell, the soak or the benchmark. Exit status: 0 when every program ran
/// and exited with 0 and the kernel powered off normally; 1 otherwise; 2 when
/// nothing could be built or started.
#[derive(Parser)]
#[command(name = "neoos", version, after_help = AFTER_HELP)]
struct Options {
    /// Programs to run in order, in one boot: C files (compiled against
    /// libneo, or with --musl as Linux programs) or prebuilt static x86_64
    /// ELF executables (NeoOS or Linux). Each is installed as /user/NAME
    /// (NAME: the file name without its extension).
    #[arg(value_name = "PROGRAM")]
    programs: Vec<PathBuf>,
    /// Arguments of the PROGRAM just before, split like a shell would
    /// (quotes, backslashes): `prog.c --args "-n 'two words'"` runs prog with
    /// argv {"/user/prog", "-n", "two words"}. Given twice, the words add up.
    #[arg(
        long = "args",
        value_name = "ARGS",
        allow_hyphen_values = true,
        requires = "programs"
    )]
    args: Vec<String>,
    /// Build the C files given with `musl-gcc -static` (installing
    /// musl-tools when missing): Linux programs, run with NeoOS's Linux
    /// personality.
    #[arg(long, conflicts_with_all = ["shell", "bench", "soak"])]
    musl: bool,
    /// Boot into the interactive shell.
    #[arg(long, conflicts_with = "programs")]
    shell: bool,
    /// Start QEMU's gdb stub on localhost:1234 and wait for gdb; no time limit.
    #[arg(long, conflicts_with = "timeout")]
    gdb: bool,
    /// CPUs of the emulated machine (QEMU's -smp; with --icount, of the
    /// benchmark machine). The kernel starts them all, reports how many are
    /// online and runs threads on every one.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=MAX_CPUS),
          conflicts_with = "bench")]
    cpus: u32,
    /// Time limit of the boot in seconds [default: 120; with --bench 1800 per boot].
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    timeout: Option<u64>,
    /// Measure the benchmark of docs/benchmarks.md (runs alone).
    #[arg(long, conflicts_with_all = ["programs", "shell", "gdb", "soak"])]
    bench: bool,
    /// Run the programs on the benchmark machine (QEMU `-icount
    /// shift=0,sleep=off`, the CPU flags and memory of --bench), where
    /// `rdtsc` counts guest instructions: time your own code the way the
    /// benchmark does [default time limit: 1800 s].
    #[arg(long, conflicts_with_all = ["shell", "bench", "soak"])]
    icount: bool,
    /// With --bench: measure Linux too, on the same emulated machine.
    #[arg(long, requires = "bench")]
    linux: bool,
    /// Run /bin/soak: CHILDREN fuzzer children of random system calls (runs alone).
    #[arg(long, value_name = "CHILDREN", value_parser = clap::value_parser!(u64).range(1..),
          conflicts_with_all = ["programs", "shell"])]
    soak: Option<u64>,
    /// With --soak: system calls per child.
    #[arg(long, value_name = "N", requires = "soak", default_value_t = 1500)]
    calls: u64,
    /// The ext2 image mounted at /home (virtio-blk), kept after power-off;
    /// made with `mke2fs -t ext2 -d` holding /usuario/datos.bin (NeoOS's
    /// /home/usuario/datos.bin) when it does not exist. Without it, a fresh
    /// image under target/neoos/disks is used and removed after the boot.
    #[arg(long, value_name = "IMG", conflicts_with = "bench")]
    disk: Option<PathBuf>,
    /// The guest's RAM, as QEMU's -m takes it (e.g. 256M, 1G; at least
    /// 64M) [default: 512M].
    #[arg(long, value_name = "SIZE", conflicts_with = "bench")]
    memory: Option<String>,
    /// Put QEMU's blkdebug driver, with this rules file, under the disk
    /// (fault injection: see QEMU's docs/devel/blkdebug.txt).
    #[arg(long, value_name = "RULES", conflicts_with = "bench")]
    blkdebug: Option<PathBuf>,
}

const AFTER_HELP: &str = "\
Examples:
  cargo run                          the demo, then power off
  cargo run -- ~/hello.c more.c      run /user/hello, then /user/more
  cargo run -- --musl hello.c        hello.c built with musl, run as a Linux program
  cargo run -- ./hello-static        a prebuilt static ELF program
  cargo run -- a.c --args \"-v 'x y'\" b.c   a gets argv {/user/a, -v, x y}, then b runs
  cargo run -- --cpus 4              the demo on 4 CPUs (the kernel reports how many are online)
  cargo run -- --soak 1000           1000 fuzzer children, 1500 calls each
  cargo run -- --disk home.img p.c   p runs with /home on home.img (kept)
  cargo run -- --icount prog.c       prog.c on the benchmark machine (rdtsc = instructions)
  cargo run -- --bench --linux       the benchmark, with Linux measured too";

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
    let matches = Options::command().get_matches();
    let o = Options::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let args = args_of_programs(&matches)?;
    let timeout = o.timeout.map(Duration::from_secs);
    if o.bench {
        return bench::run(&BenchOptions {
            linux: o.linux,
            timeout: timeout.unwrap_or(DEFAULT_BENCH_TIMEOUT),
        });
    }
    let user_programs = user_programs(&o.programs, &args, o.musl)?;
    build::ensure_tools()?;
    if user_programs.iter().any(|p| p.build == HowBuilt::Musl) {
        build::ensure_musl()?;
    }
    let (image_path, to_run) = image_with(&user_programs, &o)?;
    eprintln!("neoos: building the kernel (with the programs and files built in)");
    let kernel = build::kernel(&image_path)?;
    let command_line = if o.shell {
        "run=/bin/shell".to_string()
    } else if to_run.is_empty() {
        "run=/bin/demo".to_string()
    } else {
        launch::run_word(&to_run)
    };
    if o.gdb {
        eprintln!(
            "neoos: QEMU waits for gdb: gdb {} -ex 'target remote :1234'",
            kernel.display()
        );
    }
    let (machine, default_timeout) = if o.icount {
        (Machine::Benchmark { cpus: o.cpus }, DEFAULT_BENCH_TIMEOUT)
    } else {
        (Machine::Standard { cpus: o.cpus }, DEFAULT_TIMEOUT)
    };
    let options = BootOptions {
        kernel: &kernel,
        initrd: None,
        command_line,
        timeout: if o.gdb {
            None
        } else {
            Some(timeout.unwrap_or(default_timeout))
        },
        quiet_limit: None,
        echo: true,
        interactive: o.shell,
        gdb: o.gdb,
    };
    let (disk, fresh) = disk_options(&o)?;
    let outcome = boot::boot_with_disk(&options, machine, &disk, |_| {});
    if let Some(fresh) = fresh {
        let _ = std::fs::remove_file(fresh);
    }
    let paths: Vec<String> = to_run.into_iter().map(|run| run.path).collect();
    report(&outcome?, &paths)
}

/// The arguments of each program given, in order: every `--args` belongs
/// to the last PROGRAM before it and is split like a shell would.
fn args_of_programs(matches: &ArgMatches) -> Result<Vec<Vec<String>>> {
    let programs: Vec<usize> = matches
        .indices_of("programs")
        .map(Iterator::collect)
        .unwrap_or_default();
    let mut args = vec![Vec::new(); programs.len()];
    let texts = matches.get_many::<String>("args").into_iter().flatten();
    let places = matches.indices_of("args").into_iter().flatten();
    for (text, place) in texts.zip(places) {
        let Some(owner) = programs.iter().rposition(|&p| p < place) else {
            return Err(ToolError(format!(
                "--args {text:?} comes before any PROGRAM: put it after the program it is for"
            )));
        };
        args[owner].extend(launch::split_args(text)?);
    }
    Ok(args)
}

/// The disk of the boot: --disk's image (made when missing) or a fresh one
/// (returned second, to remove after the boot).
fn disk_options(o: &Options) -> Result<(DiskOptions, Option<PathBuf>)> {
    let (image, fresh) = match &o.disk {
        Some(image) => {
            if !image.exists() {
                eprintln!("neoos: making {} (mke2fs -t ext2)", image.display());
                disk::create_image(image)?;
            }
            (image.clone(), None)
        }
        None => {
            let image = disk::fresh_image()?;
            (image.clone(), Some(image))
        }
    };
    if let Some(memory) = &o.memory {
        disk::check_memory(memory)?;
    }
    if let Some(rules) = &o.blkdebug {
        if !rules.is_file() {
            return Err(ToolError(format!(
                "{}: no such rules file",
                rules.display()
            )));
        }
    }
    let disk = DiskOptions {
        image: Some(image.canonicalize()?),
        blkdebug: o.blkdebug.as_ref().map(|r| r.canonicalize()).transpose()?,
        memory: o.memory.clone(),
        cut_power_at: None,
    };
    Ok((disk, fresh))
}

/// Compiles the built-in programs and yours into the initial file system;
/// returns the image's file and the programs to run, in order.
fn image_with(user_programs: &[UserProgram], o: &Options) -> Result<(PathBuf, Vec<Run>)> {
    eprintln!("neoos: building the programs");
    let mut image = initfs::standard()?;
    if let Err(e) = image.busybox() {
        if o.shell {
            return Err(e);
        }
        eprintln!("neoos: /bin/busybox left out of the image: {e}");
    }
    let programs = build::c_programs_in(
        &repo_root().join("user/programs"),
        &out_dir().join("run-bin"),
    )?;
    for (name, binary) in programs {
        image.program(&format!("/bin/{name}"), &binary)?;
    }
    let mut to_run = Vec::new();
    if !user_programs.is_empty() {
        image.dir(USER_PROGRAMS_DIR)?;
    }
    for program in user_programs {
        let binary = out_dir().join("user-bin").join(&program.name);
        let warnings = build::Warnings::Shown;
        match program.build {
            HowBuilt::Libneo => build::c_program(&program.source, &[], warnings, &binary)?,
            HowBuilt::Musl => build::musl_program(&program.source, warnings, &binary)?,
            HowBuilt::Prebuilt => {
                std::fs::copy(&program.source, &binary)
                    .map_err(|e| ToolError(format!("{}: {e}", program.source.display())))?;
            }
        }
        image.program(&program.path, &binary)?;
        to_run.push(Run {
            path: program.path.clone(),
            args: program.args.clone(),
        });
    }
    if let Some(children) = o.soak {
        image.file("/etc/soak", format!("{children} {}", o.calls).as_bytes())?;
        to_run.push(Run::bare("/bin/soak"));
    }
    let image_path = out_dir().join("initfs.cpio");
    image.write(&image_path)?;
    Ok((image_path, to_run))
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
    if !ok {
        eprint!("{}", outcome.qemu_says());
    }
    if let Some(line) = outcome.console.iter().find(|l| boot::is_initfs_report(l)) {
        eprintln!("neoos: the kernel refused the image: {line}");
        ok = false;
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

/// One of your programs: its name, its path in the image, its source and
/// how it becomes a program.
#[derive(Debug)]
struct UserProgram {
    name: String,
    path: String,
    source: PathBuf,
    build: HowBuilt,
    /// Its arguments (after argv[0]).
    args: Vec<String>,
}

/// How one of your programs becomes a program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HowBuilt {
    /// A C file compiled against libneo: a NeoOS program.
    Libneo,
    /// A C file built with `musl-gcc -static`: a Linux program.
    Musl,
    /// An ELF executable, installed as it is.
    Prebuilt,
}

/// Whether `path` is an ELF file (it starts with the ELF magic).
fn is_elf(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok_and(|_| magic == *b"\x7fELF")
}

/// Your programs, each at `/user/NAME`; refuses two programs of one name and
/// names the kernel cannot run. ELF files are prebuilt programs; C files
/// are built with musl when `musl`, else against libneo.
fn user_programs(
    sources: &[PathBuf],
    args: &[Vec<String>],
    musl: bool,
) -> Result<Vec<UserProgram>> {
    let mut seen: BTreeMap<String, &Path> = BTreeMap::new();
    let mut programs = Vec::new();
    for (index, source) in sources.iter().enumerate() {
        let build = if is_elf(source) {
            HowBuilt::Prebuilt
        } else if musl {
            HowBuilt::Musl
        } else {
            HowBuilt::Libneo
        };
        let name = program_name(source)?;
        if let Some(other) = seen.insert(name.clone(), source) {
            return Err(ToolError(format!(
                "{} and {} would both be {USER_PROGRAMS_DIR}/{name}: rename one",
                other.display(),
                source.display()
            )));
        }
        programs.push(UserProgram {
            path: format!("{USER_PROGRAMS_DIR}/{name}"),
            name,
            source: source.clone(),
            build,
            args: args.get(index).cloned().unwrap_or_default(),
        });
    }
    Ok(programs)
}

/// A program's name in the image: its file name without `.c`. The kernel's
/// command line lists programs separated by commas and spaces, their
/// arguments after colons, so a name holds none of them.
fn program_name(source: &Path) -> Result<String> {
    let name = source
        .file_stem()
        .and_then(|s| s.to_str())
        .filter(|n| !n.is_empty() && !n.starts_with('.'))
        .ok_or_else(|| ToolError(format!("{}: not a program file name", source.display())))?;
    if name.contains(|c: char| matches!(c, ',' | ':' | '/') || !c.is_ascii_graphic()) {
        return Err(ToolError(format!(
            "{}: a program name is printable ASCII without spaces, commas or colons",
            source.display()
        )));
    }
    Ok(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn your_programs_go_to_their_own_folder() {
        let programs =
            user_programs(&["/x/hello.c".into(), "y/more.c".into()], &[], false).unwrap();
        let paths: Vec<(&str, &Path)> = programs
            .iter()
            .map(|p| (p.path.as_str(), p.source.as_path()))
            .collect();
        assert_eq!(
            paths,
            [
                ("/user/hello", Path::new("/x/hello.c")),
                ("/user/more", Path::new("y/more.c"))
            ]
        );
    }

    #[test]
    fn two_programs_of_one_name_are_refused() {
        let error =
            user_programs(&["a/hello.c".into(), "b/hello.c".into()], &[], false).unwrap_err();
        assert!(error.0.contains("would both be /user/hello"), "{error}");
    }

    #[test]
    fn names_the_command_line_cannot_carry_are_refused() {
        for bad in ["a,b.c", "two words.c", ".c"] {
            assert!(program_name(Path::new(bad)).is_err(), "{bad} accepted");
        }
        assert_eq!(
            program_name(Path::new("dir/ok-name_1.c")).unwrap(),
            "ok-name_1"
        );
    }

    #[test]
    fn elf_files_are_prebuilt_and_c_files_follow_musl() {
        let dir = std::env::temp_dir().join(format!("neoos-elf-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let elf = dir.join("prog");
        std::fs::write(&elf, b"\x7fELF\x02\x01\x01").unwrap();
        let c = dir.join("hello.c");
        std::fs::write(&c, b"int main(void) { return 0; }").unwrap();
        let how = |musl| {
            user_programs(&[elf.clone(), c.clone()], &[], musl)
                .unwrap()
                .iter()
                .map(|p| p.build)
                .collect::<Vec<_>>()
        };
        assert_eq!(how(false), [HowBuilt::Prebuilt, HowBuilt::Libneo]);
        assert_eq!(how(true), [HowBuilt::Prebuilt, HowBuilt::Musl]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_options_are_consistent() {
        use clap::CommandFactory;
        Options::command().debug_assert();
    }

    #[test]
    fn gdb_and_a_time_limit_do_not_go_together() {
        assert!(Options::try_parse_from(["neoos", "--gdb", "--timeout", "5"]).is_err());
        assert!(Options::try_parse_from(["neoos", "--calls", "5"]).is_err());
        assert!(Options::try_parse_from(["neoos", "--linux"]).is_err());
        let o = Options::try_parse_from(["neoos", "--soak", "3", "--", "--odd.c"]);
        assert!(o.is_err(), "--soak runs alone");
        assert!(Options::try_parse_from(["neoos", "--icount", "--bench"]).is_err());
        let o = Options::try_parse_from(["neoos", "--icount", "a.c"]).unwrap();
        assert!(o.icount && o.programs == [PathBuf::from("a.c")]);
        let o = Options::try_parse_from(["neoos", "--", "--odd.c"]).unwrap();
        assert_eq!(o.programs, vec![PathBuf::from("--odd.c")]);
    }

    fn args_of(command: &[&str]) -> Result<Vec<Vec<String>>> {
        let matches = Options::command()
            .try_get_matches_from(command)
            .map_err(|e| ToolError(e.to_string()))?;
        args_of_programs(&matches)
    }

    #[test]
    fn args_belong_to_the_program_before_them() {
        let args = args_of(&[
            "neoos",
            "a.c",
            "--args",
            "-v 'x y'",
            "b.c",
            "c.c",
            "--args",
            "1",
            "--args",
            r#""it's" \"q\""#,
        ])
        .unwrap();
        assert_eq!(
            args,
            [vec!["-v", "x y"], vec![], vec!["1", "it's", "\"q\""]]
        );
        assert_eq!(args_of(&["neoos", "a.c"]).unwrap(), [Vec::<String>::new()]);
    }

    #[test]
    fn args_without_a_program_or_with_an_open_quote_are_refused() {
        assert!(
            args_of(&["neoos", "--args", "x"]).is_err(),
            "no program at all"
        );
        let early = args_of(&["neoos", "--timeout", "5", "--args", "x"]);
        assert!(early.is_err());
        let open = args_of(&["neoos", "a.c", "--args", "'open"]).unwrap_err();
        assert!(open.0.contains("unclosed quote"), "{open}");
    }

    #[test]
    fn a_name_with_a_colon_is_refused() {
        assert!(program_name(Path::new("a:b.c")).is_err());
    }
}
