//! Booting NeoOS under QEMU: the command line, the time limit, and reading what
//! the kernel reports on the serial console (line by line, as it comes) and
//! what QEMU itself says on its standard error.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::disk::DiskOptions;
use crate::{Result, ToolError};

/// QEMU's exit status when the kernel powered off after running every program.
pub const QEMU_SUCCESS: i32 = 33;
/// QEMU's exit status when the kernel itself failed (panic or kernel fault).
pub const QEMU_KERNEL_FAILURE: i32 = 35;

/// Kernel console lines reporting a program's end look like
/// `[neoos] program /bin/x (pid 3) ended with status 0`.
const PROGRAM_PREFIX: &str = "[neoos] program ";

/// How to boot.
pub struct BootOptions<'a> {
    pub kernel: &'a Path,
    /// An image for the boot loader to hand over (Linux's initramfs). NeoOS
    /// needs none: its initial file system is built into the kernel.
    pub initrd: Option<&'a Path>,
    /// The kernel command line.
    pub command_line: String,
    /// The time limit; `None` for none (a boot waiting for gdb).
    pub timeout: Option<Duration>,
    /// A second limit: the boot also times out when its console stays
    /// silent this long (a hang among programs that each print as they
    /// end, however many there are and however loaded the machine).
    pub quiet_limit: Option<Duration>,
    /// Echo the console to our stdout while it runs.
    pub echo: bool,
    /// Interactive: console on the terminal, stdin passed through.
    pub interactive: bool,
    /// Start QEMU's gdb stub (port 1234) and wait for the debugger.
    pub gdb: bool,
}

/// How a boot ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ending {
    /// The kernel powered off normally.
    Clean,
    /// The kernel reported its own failure.
    KernelFailure,
    /// The time limit ran out.
    TimedOut,
    /// QEMU ended otherwise (0 means a triple fault with -no-reboot).
    Other(Option<i32>),
}

/// What a boot produced.
pub struct BootOutcome {
    pub ending: Ending,
    /// Every console line.
    pub console: Vec<String>,
    /// (program path, exit status) for each program the kernel ran.
    pub programs: Vec<(String, i64)>,
    /// What QEMU wrote to its standard error (its own errors and warnings).
    pub qemu_stderr: String,
}

impl BootOutcome {
    /// QEMU's standard error under a heading, for a report of a failed boot
    /// (empty when QEMU said nothing).
    pub fn qemu_says(&self) -> String {
        if self.qemu_stderr.trim().is_empty() {
            return String::new();
        }
        let lines: String = self
            .qemu_stderr
            .lines()
            .map(|l| format!("    {l}\n"))
            .collect();
        format!("QEMU's standard error:\n{lines}")
    }
}

/// The emulated machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Machine {
    /// What `cargo run` and `cargo test` boot, with this many CPUs
    /// (QEMU's `-smp`).
    Standard { cpus: u32 },
    /// The machine of docs/benchmarks.md (and of performance-targets.md):
    /// 1 GiB, a CPU without LA57/ERMS/RDRAND/RDSEED, and `-icount` so that the
    /// guest's time stamp counter counts guest instructions; this many CPUs
    /// (1 but for the threads lines: QEMU then runs them in turn, and the
    /// count is the machine's).
    Benchmark { cpus: u32 },
}

impl Machine {
    /// The standard machine with one CPU (what `cargo run` boots unless
    /// told `--cpus`).
    pub const ONE_CPU: Machine = Machine::Standard { cpus: 1 };
    /// The benchmark machine with one CPU (every line but the threads').
    pub const BENCHMARK: Machine = Machine::Benchmark { cpus: 1 };

    /// QEMU's arguments for this machine (memory, CPU, CPUs, clock).
    pub fn qemu_args(self) -> Vec<String> {
        match self {
            Machine::Standard { cpus } => ["-m", "512M", "-cpu", "max,-la57", "-smp"]
                .iter()
                .map(|a| a.to_string())
                .chain([cpus.max(1).to_string()])
                .collect(),
            Machine::Benchmark { cpus } => [
                "-m",
                "1G",
                "-cpu",
                "max,-la57,-erms,-rdrand,-rdseed",
                "-smp",
                &cpus.max(1).to_string(),
                "-icount",
                "shift=0,sleep=off",
            ]
            .iter()
            .map(|a| a.to_string())
            .collect(),
        }
    }
}

/// QEMU's command for `o` on `machine`; `monitor` is a Unix socket for
/// QEMU's monitor (the hang report of [`hang_report`]), or none.
fn qemu_command(o: &BootOptions, machine: Machine, monitor: Option<&Path>) -> Command {
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.arg("-kernel")
        .arg(o.kernel)
        .args(["-append", &o.command_line])
        .args(machine.qemu_args())
        .args(["-no-reboot", "-display", "none"])
        .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"])
        .args(["-serial", "mon:stdio"]);
    match monitor {
        Some(socket) => cmd
            .arg("-monitor")
            .arg(format!("unix:{},server=on,wait=off", socket.display())),
        None => cmd.args(["-monitor", "none"]),
    };
    if let Some(image) = o.initrd {
        cmd.arg("-initrd").arg(image);
    }
    if o.gdb {
        cmd.args(["-s", "-S"]);
    }
    cmd
}

/// The kernel's report that it refused its initial file system or an entry
/// of it (`[neoos] initial file system bad: entry /bin/x refused: Exists`).
const INITFS_BAD_PREFIX: &str = "[neoos] initial file system bad: ";

/// Whether `line` is the kernel's report of a bad initial file system.
pub fn is_initfs_report(line: &str) -> bool {
    line.starts_with(INITFS_BAD_PREFIX)
}

/// Parses a program-end line into (path, status).
pub fn parse_program_line(line: &str) -> Option<(String, i64)> {
    let rest = line.trim_end().strip_prefix(PROGRAM_PREFIX)?;
    let (path, rest) = rest.split_once(' ')?;
    let status = rest.rsplit_once("ended with status ")?.1.trim();
    Some((path.to_string(), status.parse().ok()?))
}

/// Boots the standard machine with one CPU, waits for the end (or the
/// time limit) and collects the console.
pub fn boot(o: &BootOptions) -> Result<BootOutcome> {
    boot_on(o, Machine::ONE_CPU)
}

/// As [`boot`], on `machine`.
pub fn boot_on(o: &BootOptions, machine: Machine) -> Result<BootOutcome> {
    boot_watching(o, machine, |_| {})
}

/// As [`boot_on`], calling `on_line` with each console line as it arrives
/// (after echoing it when `o.echo`).
pub fn boot_watching(
    o: &BootOptions,
    machine: Machine,
    on_line: impl FnMut(&str),
) -> Result<BootOutcome> {
    boot_with_disk(o, machine, &DiskOptions::default(), on_line)
}

/// As [`boot_watching`], with a disk (and the guest's RAM size) as `disk`
/// says. A power cut (`disk.cut_power_at`) ends as `Ending::Other(None)`.
pub fn boot_with_disk(
    o: &BootOptions,
    machine: Machine,
    disk: &DiskOptions,
    on_line: impl FnMut(&str),
) -> Result<BootOutcome> {
    boot_with_qemu_args(o, machine, disk, &[], on_line)
}

/// As [`boot_with_disk`], with `extra` added to QEMU's arguments (the
/// benchmark's `-trace` of the disk's requests).
pub fn boot_with_qemu_args(
    o: &BootOptions,
    machine: Machine,
    disk: &DiskOptions,
    extra: &[String],
    mut on_line: impl FnMut(&str),
) -> Result<BootOutcome> {
    let monitor = (o.timeout.is_some() || o.quiet_limit.is_some()).then(monitor_socket);
    let mut cmd = qemu_command(o, machine, monitor.as_deref());
    cmd.args(disk.qemu_args());
    cmd.args(extra);
    if let Some(memory) = &disk.memory {
        cmd.args(["-m", memory]);
    }
    if o.interactive {
        let status = cmd.status()?;
        let ending = ending_of(status.code());
        return Ok(BootOutcome {
            ending,
            console: Vec::new(),
            programs: Vec::new(),
            qemu_stderr: String::new(),
        });
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| ToolError(format!("cannot start QEMU: {e}")))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let stderr_reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stderr.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    });
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).split(b'\n') {
            let Ok(line) = line else { break };
            let text = String::from_utf8_lossy(&line)
                .trim_end_matches('\r')
                .to_string();
            if tx.send(text).is_err() {
                break;
            }
        }
    });
    let deadline = o.timeout.map(|t| Instant::now() + t);
    let mut last_line = Instant::now();
    let mut console = Vec::new();
    let mut timed_out = false;
    loop {
        let now = Instant::now();
        let quiet_too_long = o.quiet_limit.is_some_and(|q| now >= last_line + q);
        if quiet_too_long || deadline.is_some_and(|d| now >= d) {
            timed_out = true;
            if let Some(socket) = &monitor {
                // Where each CPU is, then the kernel's own report (an NMI).
                let report = hang_report(socket, o.kernel);
                let until = Instant::now() + NMI_REPORT_TIME;
                let kernel_says = std::iter::from_fn(|| {
                    rx.recv_timeout(until.saturating_duration_since(Instant::now()))
                        .ok()
                })
                .map(|line| with_kernel_function(line, o.kernel));
                for line in report.into_iter().chain(kernel_says) {
                    if o.echo {
                        println!("{line}");
                    }
                    on_line(&line);
                    console.push(line);
                }
            }
            let _ = child.kill();
            break;
        }
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                last_line = Instant::now();
                if o.echo {
                    println!("{line}");
                }
                on_line(&line);
                let cut = disk.cut_power_at.as_deref() == Some(line.as_str());
                console.push(line);
                if cut {
                    let _ = child.kill();
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
    }
    let status = child.wait()?;
    if let Some(socket) = &monitor {
        let _ = std::fs::remove_file(socket);
    }
    let _ = reader.join();
    let qemu_stderr = stderr_reader.join().unwrap_or_default();
    let ending = if timed_out {
        Ending::TimedOut
    } else {
        ending_of(status.code())
    };
    let programs = console
        .iter()
        .filter_map(|l| parse_program_line(l))
        .collect();
    Ok(BootOutcome {
        ending,
        console,
        programs,
        qemu_stderr,
    })
}

/// How long the console is still read after the NMI of a silent machine.
const NMI_REPORT_TIME: Duration = Duration::from_secs(3);

/// A fresh path for a boot's monitor socket.
fn monitor_socket() -> PathBuf {
    static BOOTS: AtomicUsize = AtomicUsize::new(0);
    let n = BOOTS.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("neoos-monitor-{}-{n}.sock", std::process::id()))
}

/// What each CPU of a silent machine was doing, asked of QEMU's monitor
/// (`info registers -a`): a line per CPU with its `rip`, `rsp`, privilege
/// level, whether it is halted, and the kernel function `rip` is in
/// (`addr2line` on `kernel`), each starting `[hang] `. Then injects an NMI,
/// to which the kernel answers with its own state on the console.
fn hang_report(socket: &Path, kernel: &Path) -> Vec<String> {
    let Ok(mut stream) = UnixStream::connect(socket) else {
        return vec![format!(
            "[hang] QEMU's monitor did not answer at {}",
            socket.display()
        )];
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(3)));
    let _ = stream.write_all(b"info registers -a\n");
    let mut text = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            break;
        }
        text.extend_from_slice(&buf[..n]);
    }
    let _ = stream.write_all(b"nmi\n");
    cpu_lines(&String::from_utf8_lossy(&text), |rip| {
        function_at(kernel, rip)
    })
}

/// A `[hang]` line per CPU of QEMU's register dump `text`, each naming the
/// code at its `rip` as `name_code` says.
fn cpu_lines(text: &str, name_code: impl Fn(&str) -> String) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cpu = "";
    let mut rsp = "?";
    for line in text.lines() {
        if let Some(rest) = line.trim().strip_prefix("CPU#") {
            cpu = rest;
        }
        if let Some(value) = register(line, "RSP=") {
            rsp = value;
        }
        let Some(rip) = register(line, "RIP=") else {
            continue;
        };
        let cpl = register(line, "CPL=").unwrap_or("?");
        let halted = register(line, "HLT=").unwrap_or("?");
        lines.push(format!(
            "[hang] CPU#{cpu}: rip {rip} rsp {rsp} CPL={cpl} HLT={halted} in {}",
            name_code(rip)
        ));
    }
    lines
}

/// An NMI report line naming a kernel address (`at rip 0x...`, `called
/// from 0x...`), with the function holding it appended.
fn with_kernel_function(line: String, kernel: &Path) -> String {
    let address = ["at rip 0x", "called from 0x"]
        .iter()
        .find_map(|tag| register(&line, tag))
        .map(|a| a.trim_end_matches(','))
        .filter(|a| a.starts_with("ffffffff"));
    match address {
        Some(a) => {
            let function = function_at(kernel, a);
            format!("{line} in {function}")
        }
        None => line,
    }
}

/// The hex value after `name` in a line of QEMU's register dump.
fn register<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let at = line.find(name)? + name.len();
    line[at..].split_whitespace().next()
}

/// The function of `kernel` holding `address` (hex), by `addr2line`, with
/// the functions it was inlined into (`inner < outer`).
fn function_at(kernel: &Path, address: &str) -> String {
    Command::new("addr2line")
        .args(["-f", "-i", "-C", "-e"])
        .arg(kernel)
        .arg(format!("0x{address}"))
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.lines().step_by(2).collect::<Vec<_>>().join(" < "))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "?".to_string())
}

fn ending_of(code: Option<i32>) -> Ending {
    match code {
        Some(QEMU_SUCCESS) => Ending::Clean,
        Some(QEMU_KERNEL_FAILURE) => Ending::KernelFailure,
        other => Ending::Other(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_register_dump_gives_a_line_per_cpu() {
        let dump = "CPU#0\n\
            RAX=0000000000000000 RBX=0000000000000001\n\
            RSI=0000000000000000 RDI=0000000000000000 RBP=ffffffff80bf2850 RSP=ffffffff80bf2830\n\
            RIP=ffffffff80178eb3 RFL=00000046 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=0\n\
            CPU#1\n\
            RSI=0000000000000000 RDI=0000000000000000 RBP=0000000000000000 RSP=00007fffffefffc8\n\
            RIP=0000000000401010 RFL=00000202 [-------] CPL=3 II=0 A20=1 SMM=0 HLT=1\n";
        let lines = cpu_lines(dump, |rip| format!("f{}", &rip[12..]));
        assert_eq!(
            lines,
            [
                "[hang] CPU#0: rip ffffffff80178eb3 rsp ffffffff80bf2830 CPL=0 HLT=0 in f8eb3",
                "[hang] CPU#1: rip 0000000000401010 rsp 00007fffffefffc8 CPL=3 HLT=1 in f1010",
            ]
        );
    }

    #[test]
    fn standard_machine_has_the_cpus_asked_for() {
        let args = Machine::Standard { cpus: 4 }.qemu_args();
        let smp = args.iter().position(|a| a == "-smp").expect("-smp given");
        assert_eq!(args[smp + 1], "4");
        let args = Machine::ONE_CPU.qemu_args();
        let smp = args.iter().position(|a| a == "-smp").expect("-smp given");
        assert_eq!(args[smp + 1], "1");
    }

    #[test]
    fn program_line_parses_path_and_status() {
        let line = "[neoos] program /bin/hello (pid 3) ended with status 139\r";
        assert_eq!(parse_program_line(line), Some(("/bin/hello".into(), 139)));
        assert_eq!(parse_program_line("[neoos] something else"), None);
    }
}
