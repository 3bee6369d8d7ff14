//! The programs to run and their arguments, as the host tool gets them and
//! as it writes them on the kernel command line: `--args` text split like a
//! shell would (the `shlex` crate), and the `run=` launch list whose entries
//! carry each program's arguments percent-encoded (the kernel decodes them
//! with the same crate, `neoos_kernel_core::launch`).

use neoos_kernel_core::launch::encode_entry;

use crate::{Result, ToolError};

/// The arguments of `--args TEXT`: `TEXT` split like a POSIX shell splits
/// words (single quotes, double quotes, backslash escapes; a word starting
/// with `#` begins a comment). An unclosed quote or a trailing backslash
/// is an error.
pub fn split_args(text: &str) -> Result<Vec<String>> {
    shlex::split(text).ok_or_else(|| {
        ToolError(format!(
            "--args {text:?}: an unclosed quote or a trailing backslash"
        ))
    })
}

/// One program to start: its path in the image and its arguments (after
/// argv[0], which is the path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub path: String,
    pub args: Vec<String>,
}

impl Run {
    /// `path` with no arguments.
    pub fn bare(path: &str) -> Self {
        Run {
            path: path.to_string(),
            args: Vec::new(),
        }
    }
}

/// The kernel command line's `run=` word that starts `runs` in order.
pub fn run_word(runs: &[Run]) -> String {
    let entries: Vec<String> = runs
        .iter()
        .map(|run| {
            let args: Vec<&[u8]> = run.args.iter().map(|a| a.as_bytes()).collect();
            encode_entry(&run.path, &args)
        })
        .collect();
    format!("run={}", entries.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use neoos_kernel_core::launch::parse_launch_list;

    #[test]
    fn args_split_like_a_shell() {
        let cases: [(&str, &[&str]); 7] = [
            ("", &[]),
            ("  one   two ", &["one", "two"]),
            (
                r#""two words" 'single "inner"'"#,
                &["two words", "single \"inner\""],
            ),
            (
                r#"it\'s a\ b "q\"d" 'x\y'"#,
                &["it's", "a b", "q\"d", "x\\y"],
            ),
            (r#"'' """#, &["", ""]),
            ("-l --long=a,b:c", &["-l", "--long=a,b:c"]),
            (
                "sh -c 'echo hi > /tmp/f; cat /tmp/f'",
                &["sh", "-c", "echo hi > /tmp/f; cat /tmp/f"],
            ),
        ];
        for (text, want) in cases {
            assert_eq!(split_args(text).unwrap(), want, "{text}");
        }
    }

    #[test]
    fn unclosed_quotes_are_refused() {
        for text in ["'open", "\"open", "trailing\\"] {
            let error = split_args(text).unwrap_err();
            assert!(error.0.contains("unclosed quote"), "{text}: {error}");
        }
    }

    #[test]
    fn the_run_word_round_trips_through_the_kernels_decoder() {
        let runs = [
            Run {
                path: "/user/a".into(),
                args: split_args(r#"plain "two words" 'it'\''s' a,b:c 100% "" é\ ü"#).unwrap(),
            },
            Run::bare("/bin/demo"),
            Run {
                path: "/user/b".into(),
                args: vec!["\"quoted\"".into(), "tab\there\nnewline".into()],
            },
        ];
        let word = run_word(&runs);
        assert!(!word.contains(char::is_whitespace), "{word}");
        let list = word.strip_prefix("run=").unwrap();
        let decoded: Vec<Run> = parse_launch_list(list)
            .into_iter()
            .map(|entry| {
                let launch = entry.unwrap();
                assert_eq!(launch.argv[0], launch.path.as_bytes());
                Run {
                    path: launch.path,
                    args: launch.argv[1..]
                        .iter()
                        .map(|a| String::from_utf8(a.clone()).unwrap())
                        .collect(),
                }
            })
            .collect();
        assert_eq!(decoded, runs);
        assert_eq!(
            runs[0].args,
            ["plain", "two words", "it's", "a,b:c", "100%", "", "é ü"]
        );
    }
}
