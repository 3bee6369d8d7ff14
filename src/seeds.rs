//! The specification's own C examples: every ```c block of every seed document
//! in `../shared/seeds/`, to be compiled verbatim and run on NeoOS.

use std::path::{Path, PathBuf};

use crate::{repo_root, Result};

/// One example: where it came from and its code.
pub struct SeedExample {
    /// A name for the program: the seed file's stem and the example's number.
    pub name: String,
    pub code: String,
    /// Whether the example defines `main` (else it is a function to call).
    pub has_main: bool,
}

fn defines_main(code: &str) -> bool {
    code.match_indices("main").any(|(i, _)| {
        let before = code[..i]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        let after = code[i + 4..].trim_start().starts_with('(');
        before && after
    })
}

/// The seeds folder beside the repository (it may be missing).
pub fn seeds_dir() -> PathBuf {
    repo_root().join("../shared/seeds")
}

/// The C code blocks of a seed document, in order.
pub fn c_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let fence = line.trim_start();
        match current.as_mut() {
            None if fence.starts_with("```c") && fence[4..].trim().is_empty() => {
                current = Some(String::new())
            }
            None => {}
            Some(_) if fence.starts_with("```") => blocks.extend(current.take()),
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
        }
    }
    blocks
}

/// Every example of every seed in `dir`.
pub fn examples(dir: &Path) -> Result<Vec<SeedExample>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();
    let mut out = Vec::new();
    for file in files
        .iter()
        .filter(|f| f.extension().is_some_and(|x| x == "txt"))
    {
        let text = std::fs::read_to_string(file)?;
        let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("seed");
        let short = stem.split('_').next().unwrap_or(stem);
        // Blocks without a function body (a prototype) are not programs.
        let programs = c_blocks(&text)
            .into_iter()
            .filter(|code| code.contains('{'));
        for (i, code) in programs.enumerate() {
            let has_main = defines_main(&code);
            out.push(SeedExample {
                name: format!("seed{short}_example{}", i + 1),
                code,
                has_main,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_blocks_takes_only_c_fences() {
        let text = "x\n```c\nint a;\n```\n```sh\nls\n```\n  ```c\nvoid main() {}\n  ```\n";
        assert_eq!(
            c_blocks(text),
            vec!["int a;\n".to_string(), "void main() {}\n".to_string()]
        );
    }

    #[test]
    fn defines_main_finds_main_but_not_other_names() {
        assert!(defines_main("void main() {}"));
        assert!(defines_main("int main (void) { return 0; }"));
        assert!(!defines_main("void domain(void) {} int mainly;"));
    }
}
