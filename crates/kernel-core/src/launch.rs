//! The launch list of the kernel command line: `run=ENTRY,ENTRY,...`, where
//! an entry is a program's path optionally followed by its arguments, each
//! after a `:` and percent-encoded (`/user/echo:two%20words:it%27s`). This
//! module owns decoding an entry into the program's path and argv (argv[0]
//! is the path) and the encoding the host tool writes, so that spaces,
//! commas, colons, quotes and any byte survive the command line. A malformed
//! entry decodes to an error that names what is wrong; nothing here panics.

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Separates the programs of the launch list.
pub const ENTRY_SEPARATOR: char = ',';
/// Separates a program's path from each of its arguments.
pub const ARG_SEPARATOR: char = ':';

/// One program to start: its path and its whole argv (argv[0] is the path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    pub path: String,
    pub argv: Vec<Vec<u8>>,
}

/// What is wrong with an entry of the launch list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LaunchError {
    /// The entry has no path before its arguments.
    EmptyPath,
    /// Argument `arg` (1 = the first after the path) has a `%` at byte
    /// `at` not followed by two hexadecimal digits.
    BadEscape { arg: usize, at: usize },
    /// Argument `arg` holds, at byte `at`, a byte that must be
    /// percent-encoded.
    UnencodedByte { arg: usize, at: usize, byte: u8 },
}

impl fmt::Display for LaunchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LaunchError::EmptyPath => f.write_str("no program path before its arguments"),
            LaunchError::BadEscape { arg, at } => write!(
                f,
                "argument {arg}: '%' at byte {at} is not followed by two hexadecimal digits"
            ),
            LaunchError::UnencodedByte { arg, at, byte } => write!(
                f,
                "argument {arg}: byte {byte:#04x} at byte {at} must be percent-encoded"
            ),
        }
    }
}

/// An entry of the launch list that does not decode: its text, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadEntry {
    pub entry: String,
    pub error: LaunchError,
}

/// An entry of the launch list, decoded or not.
pub type LaunchEntry = Result<Launch, BadEntry>;

/// The entries of the launch list `list` (the text after `run=`), in order;
/// empty entries are skipped.
pub fn parse_launch_list(list: &str) -> VecDeque<LaunchEntry> {
    list.split(ENTRY_SEPARATOR)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            parse_entry(entry).map_err(|error| BadEntry {
                entry: String::from(entry),
                error,
            })
        })
        .collect()
}

/// Decodes one entry: `PATH` or `PATH:ARG:ARG...` (an empty ARG is an
/// empty argument).
pub fn parse_entry(entry: &str) -> Result<Launch, LaunchError> {
    let mut parts = entry.split(ARG_SEPARATOR);
    let path = parts.next().unwrap_or_default();
    if path.is_empty() {
        return Err(LaunchError::EmptyPath);
    }
    let mut argv = Vec::new();
    argv.push(Vec::from(path.as_bytes()));
    for (index, encoded) in parts.enumerate() {
        argv.push(decode_arg(encoded.as_bytes(), index + 1)?);
    }
    Ok(Launch {
        path: String::from(path),
        argv,
    })
}

/// Whether `byte` stands for itself in an encoded argument.
fn is_plain(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'/' | b'=' | b'+')
}

/// The argument `encoded` (number `arg`, for errors) percent-decoded.
fn decode_arg(encoded: &[u8], arg: usize) -> Result<Vec<u8>, LaunchError> {
    let mut bytes = Vec::with_capacity(encoded.len());
    let mut at = 0;
    while let Some(&byte) = encoded.get(at) {
        if byte == b'%' {
            let high = encoded.get(at + 1).and_then(|&d| hex_value(d));
            let low = encoded.get(at + 2).and_then(|&d| hex_value(d));
            let (Some(high), Some(low)) = (high, low) else {
                return Err(LaunchError::BadEscape { arg, at });
            };
            bytes.push(high << 4 | low);
            at += 3;
        } else if is_plain(byte) {
            bytes.push(byte);
            at += 1;
        } else {
            return Err(LaunchError::UnencodedByte { arg, at, byte });
        }
    }
    Ok(bytes)
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// The entry that starts `path` with arguments `args` (after argv[0]).
/// `path` must hold neither [`ENTRY_SEPARATOR`], [`ARG_SEPARATOR`] nor
/// whitespace (the host tool refuses such program names).
pub fn encode_entry(path: &str, args: &[&[u8]]) -> String {
    let mut entry = String::from(path);
    for arg in args {
        entry.push(ARG_SEPARATOR);
        for &byte in *arg {
            if is_plain(byte) {
                entry.push(char::from(byte));
            } else {
                entry.push('%');
                entry.push(hex_digit(byte >> 4));
                entry.push(hex_digit(byte & 0xf));
            }
        }
    }
    entry
}

fn hex_digit(value: u8) -> char {
    char::from(b"0123456789ABCDEF"[usize::from(value & 0xf)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn argv_of(entry: &str) -> Vec<Vec<u8>> {
        parse_entry(entry).unwrap().argv
    }

    #[test]
    fn a_bare_path_has_argv_of_the_path_alone() {
        let launch = parse_entry("/bin/demo").unwrap();
        assert_eq!(launch.path, "/bin/demo");
        assert_eq!(launch.argv, vec![b"/bin/demo".to_vec()]);
    }

    #[test]
    fn arguments_follow_the_path_percent_decoded() {
        assert_eq!(
            argv_of("/user/p:two%20words:it%27s:%2c%3A%25::x"),
            vec![
                b"/user/p".to_vec(),
                b"two words".to_vec(),
                b"it's".to_vec(),
                b",:%".to_vec(),
                b"".to_vec(),
                b"x".to_vec(),
            ]
        );
    }

    #[test]
    fn every_byte_survives_the_round_trip() {
        let all: Vec<u8> = (0..=255).collect();
        let args: [&[u8]; 5] = [&all, b"", b"a b", b"\"q\" 'r' \\", b",:%=+"];
        let entry = encode_entry("/user/p", &args);
        assert!(!entry.contains([' ', ',', '"', '\'', '\\', '\n']));
        assert_eq!(parse_launch_list(&entry).len(), 1);
        let argv = argv_of(&entry);
        assert_eq!(argv[0], b"/user/p");
        assert_eq!(
            argv[1..].iter().map(Vec::as_slice).collect::<Vec<_>>(),
            args
        );
    }

    #[test]
    fn the_list_keeps_order_and_skips_empty_entries() {
        let list = parse_launch_list(",/bin/a,,/bin/b:x%2Cy,");
        let paths: Vec<_> = list
            .iter()
            .map(|e| e.as_ref().unwrap().path.clone())
            .collect();
        assert_eq!(paths, ["/bin/a", "/bin/b"]);
        assert_eq!(list[1].as_ref().unwrap().argv[1], b"x,y");
    }

    #[test]
    fn malformed_entries_are_reported_not_panicked_on() {
        let cases: [(&str, LaunchError); 7] = [
            (":x", LaunchError::EmptyPath),
            ("/p:%", LaunchError::BadEscape { arg: 1, at: 0 }),
            ("/p:a%4", LaunchError::BadEscape { arg: 1, at: 1 }),
            ("/p:ok:%zz", LaunchError::BadEscape { arg: 2, at: 0 }),
            ("/p:%4g", LaunchError::BadEscape { arg: 1, at: 0 }),
            (
                "/p:a'b",
                LaunchError::UnencodedByte {
                    arg: 1,
                    at: 1,
                    byte: b'\'',
                },
            ),
            (
                "/p:é",
                LaunchError::UnencodedByte {
                    arg: 1,
                    at: 0,
                    byte: 0xc3,
                },
            ),
        ];
        for (entry, error) in cases {
            assert_eq!(parse_entry(entry), Err(error.clone()), "{entry}");
            let list = parse_launch_list(entry);
            let bad = list[0].as_ref().unwrap_err();
            assert_eq!(bad.entry, entry);
            assert!(!std::format!("{}", bad.error).is_empty());
        }
    }

    #[test]
    fn hostile_lists_of_any_bytes_never_panic() {
        const ALPHABET: [char; 17] = [
            '%', ':', ',', '/', 'a', 'Z', '0', '9', ' ', '\'', 'x', '"', '\\', 'f', 'F', 'é', '\0',
        ];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..2000 {
            let len = (seed % 24) as usize;
            let text: String = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    ALPHABET[(seed % ALPHABET.len() as u64) as usize]
                })
                .collect();
            for entry in parse_launch_list(&text) {
                match entry {
                    Ok(launch) => assert_eq!(launch.argv[0], launch.path.as_bytes()),
                    Err(bad) => assert!(!bad.entry.is_empty()),
                }
            }
        }
    }
}
