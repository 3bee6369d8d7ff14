//! Random sequences of every namespace and file operation, checked step by
//! step against an in-memory model (contents and the error each call must
//! give), then against e2fsprogs: `e2fsck -fn` clean and `debugfs rdump` of
//! the whole tree equal to the model. Small images make space run out.

mod common;

use common::*;
use neoos_ext2::{Ext2Error, FileType, ROOT_INO};
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;

#[derive(Clone, Debug, PartialEq)]
enum Node {
    Dir,
    File(Vec<u8>),
}

/// The expected tree: path ("" is the root, else "/a/b") -> node.
type Model = BTreeMap<String, Node>;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, items: &'a [String]) -> &'a String {
        &items[self.below(items.len() as u64) as usize]
    }
}

const NAMES: [&str; 5] = ["a", "b", "c", "dd", "a-much-longer-name-for-a-file-entry"];

fn parent_and_name(path: &str) -> (&str, &str) {
    let cut = path.rfind('/').unwrap();
    (&path[..cut], &path[cut + 1..])
}

fn dirs(model: &Model) -> Vec<String> {
    model
        .iter()
        .filter(|(_, n)| **n == Node::Dir)
        .map(|(p, _)| p.clone())
        .collect()
}

fn files(model: &Model) -> Vec<String> {
    model
        .iter()
        .filter(|(_, n)| **n != Node::Dir)
        .map(|(p, _)| p.clone())
        .collect()
}

fn children(model: &Model, dir: &str) -> usize {
    let prefix = format!("{dir}/");
    model.keys().filter(|p| p.starts_with(&prefix)).count()
}

fn ino_of(fs: &mut Ext2<FileDevice>, path: &str) -> u32 {
    if path.is_empty() {
        ROOT_INO
    } else {
        fs.lookup_path(path).unwrap()
    }
}

use neoos_ext2::Ext2;

/// What `rename(from, to)` must do in the model, or the error it must give.
fn model_rename(model: &mut Model, from: &str, to: &str) -> Result<(), Ext2Error> {
    let moving = model.get(from).cloned().ok_or(Ext2Error::NotFound)?;
    if to == from {
        return Ok(()); // POSIX: renaming a name onto itself does nothing
    }
    if moving == Node::Dir && to.starts_with(&format!("{from}/")) {
        return Err(Ext2Error::InvalidArgument);
    }
    match (model.get(to), &moving) {
        (Some(Node::Dir), Node::File(_)) => return Err(Ext2Error::IsDir),
        (Some(Node::File(_)), Node::Dir) => return Err(Ext2Error::NotDir),
        (Some(Node::Dir), Node::Dir) if children(model, to) > 0 => return Err(Ext2Error::NotEmpty),
        _ => {}
    }
    let prefix = format!("{from}/");
    let moved: Vec<(String, Node)> = model
        .iter()
        .filter(|(p, _)| *p == from || p.starts_with(&prefix))
        .map(|(p, n)| (format!("{to}{}", &p[from.len()..]), n.clone()))
        .collect();
    model.retain(|p, _| p != from && !p.starts_with(&prefix));
    model.extend(moved);
    Ok(())
}

/// One random operation; counts the calls that ran out of space.
fn step(fs: &mut Ext2<FileDevice>, model: &mut Model, rng: &mut Rng, no_space: &mut usize) {
    let dir_list = dirs(model);
    let file_list = files(model);
    let dir = rng.pick(&dir_list).clone();
    let name = NAMES[rng.below(NAMES.len() as u64) as usize];
    let path = format!("{dir}/{name}");
    match rng.below(10) {
        0 | 1 => {
            let dir_ino = ino_of(fs, &dir);
            match fs.create(dir_ino, name.as_bytes(), 0o644) {
                Ok(_) => assert!(model.insert(path, Node::File(Vec::new())).is_none()),
                Err(Ext2Error::Exists) => assert!(model.contains_key(&path)),
                Err(Ext2Error::NoSpace) => {
                    *no_space += 1;
                    assert!(!model.contains_key(&path))
                }
                Err(e) => panic!("create {path}: {e}"),
            }
        }
        2..=4 if !file_list.is_empty() => {
            let file = rng.pick(&file_list).clone();
            let offset = if rng.below(4) == 0 {
                rng.below(2 << 20)
            } else {
                rng.below(40_000)
            };
            let data = pattern(rng.below(30_000) as usize, rng.next() as u32);
            let ino = ino_of(fs, &file);
            let written = match fs.write_at(ino, offset, &data) {
                Ok(n) => {
                    *no_space += usize::from(n < data.len());
                    n
                }
                Err(Ext2Error::NoSpace) => {
                    *no_space += 1;
                    0
                }
                Err(e) => panic!("write {file}: {e}"),
            };
            if written > 0 {
                let Some(Node::File(bytes)) = model.get_mut(&file) else {
                    unreachable!()
                };
                let end = offset as usize + written;
                if bytes.len() < end {
                    bytes.resize(end, 0);
                }
                bytes[offset as usize..end].copy_from_slice(&data[..written]);
            }
        }
        5 if !file_list.is_empty() => {
            let file = rng.pick(&file_list).clone();
            let size = rng.below(300_000);
            let ino = ino_of(fs, &file);
            fs.truncate(ino, size).unwrap();
            let Some(Node::File(bytes)) = model.get_mut(&file) else {
                unreachable!()
            };
            bytes.resize(size as usize, 0);
        }
        6 => {
            let dir_ino = ino_of(fs, &dir);
            let result = fs.unlink(dir_ino, name.as_bytes());
            let expected = match model.get(&path) {
                None => Err(Ext2Error::NotFound),
                Some(Node::Dir) => Err(Ext2Error::IsDir),
                Some(Node::File(_)) => Ok(()),
            };
            assert_eq!(result, expected, "unlink {path}");
            if result.is_ok() {
                model.remove(&path);
            }
        }
        7 => {
            let dir_ino = ino_of(fs, &dir);
            match fs.mkdir(dir_ino, name.as_bytes(), 0o755) {
                Ok(_) => assert!(model.insert(path, Node::Dir).is_none()),
                Err(Ext2Error::Exists) => assert!(model.contains_key(&path)),
                Err(Ext2Error::NoSpace) => {
                    *no_space += 1;
                    assert!(!model.contains_key(&path))
                }
                Err(e) => panic!("mkdir {path}: {e}"),
            }
        }
        8 => {
            let dir_ino = ino_of(fs, &dir);
            let result = fs.rmdir(dir_ino, name.as_bytes());
            let expected = match model.get(&path) {
                None => Err(Ext2Error::NotFound),
                Some(Node::File(_)) => Err(Ext2Error::NotDir),
                Some(Node::Dir) if children(model, &path) > 0 => Err(Ext2Error::NotEmpty),
                Some(Node::Dir) => Ok(()),
            };
            assert_eq!(result, expected, "rmdir {path}");
            if result.is_ok() {
                model.remove(&path);
            }
        }
        _ => {
            let all: Vec<String> = model.keys().filter(|p| !p.is_empty()).cloned().collect();
            if all.is_empty() {
                return;
            }
            let from = rng.pick(&all).clone();
            let (from_dir, from_name) = parent_and_name(&from);
            let from_dir_ino = ino_of(fs, from_dir);
            let to_dir_ino = ino_of(fs, &dir);
            let result = fs.rename(
                from_dir_ino,
                from_name.as_bytes(),
                to_dir_ino,
                name.as_bytes(),
            );
            if result == Err(Ext2Error::NoSpace) {
                *no_space += 1;
                return; // the target directory could not grow: nothing changed
            }
            let expected = model_rename(model, &from, &path);
            assert_eq!(result, expected, "rename {from} -> {path}");
        }
    }
}

/// Our view of the tree equals the model.
fn check_ours(fs: &mut Ext2<FileDevice>, model: &Model) {
    for (path, node) in model {
        let ino = ino_of(fs, path);
        let stat = fs.stat(ino).unwrap();
        match node {
            Node::Dir => {
                assert_eq!(stat.file_type, FileType::Directory);
                let entries = fs.read_dir(ino).unwrap().len() - 2;
                assert_eq!(
                    entries,
                    model
                        .keys()
                        .filter(|p| p.rfind('/').map(|c| &p[..c]) == Some(path.as_str())
                            && !p.is_empty())
                        .count(),
                    "entries of {path}"
                );
            }
            Node::File(bytes) => {
                assert_eq!(stat.size, bytes.len() as u64, "size of {path}");
                let mut buf = vec![0; bytes.len()];
                fs.read_at(ino, 0, &mut buf).unwrap();
                assert!(buf == *bytes, "contents of {path}");
            }
        }
    }
}

/// debugfs's dump of the whole tree equals the model.
fn check_with_debugfs(image: &Path, model: &Model, out: &Path) {
    fs::create_dir_all(out).unwrap();
    let status = Command::new(tool("debugfs"))
        .arg("-R")
        .arg(format!("rdump / {}", out.display()))
        .arg(image)
        .output()
        .unwrap();
    assert!(status.status.success());
    for (path, node) in model {
        let host = out.join(path.trim_start_matches('/'));
        match node {
            Node::Dir => assert!(host.is_dir(), "{path} is a directory for debugfs"),
            Node::File(bytes) => assert!(
                fs::read(&host).unwrap() == *bytes,
                "debugfs contents of {path}"
            ),
        }
    }
}

/// Runs `steps` random operations; returns how many ran out of space.
fn run(seed: u64, block_size: u32, size_kib: u64, steps: usize) -> usize {
    let scratch = Scratch::new("random");
    let image = scratch.join("img");
    mke2fs(&image, block_size, size_kib, None, &["-N", "128"]);
    let mut model = Model::new();
    model.insert(String::new(), Node::Dir);
    model.insert("/lost+found".into(), Node::Dir);
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut fs = mount(&image);
    let mut no_space = 0;
    for _ in 0..steps {
        step(&mut fs, &mut model, &mut rng, &mut no_space);
    }
    check_ours(&mut fs, &model);
    drop(fs.into_device().unwrap());
    assert_fsck_clean(&image);
    check_with_debugfs(&image, &model, &scratch.join("dump"));
    no_space
}

#[test]
fn random_operations_match_the_model_1k() {
    for seed in 1..=3 {
        assert_eq!(run(seed, 1024, 16 << 10, 250), 0);
    }
}

#[test]
fn random_operations_match_the_model_2k() {
    assert_eq!(run(7, 2048, 16 << 10, 250), 0);
}

#[test]
fn random_operations_match_the_model_4k() {
    assert_eq!(run(11, 4096, 16 << 10, 250), 0);
}

#[test]
fn random_operations_on_a_small_image_run_out_of_space_cleanly() {
    for seed in 20..=22 {
        let no_space = run(seed, 1024, 384, 500);
        assert!(no_space > 0, "seed {seed} never ran out of space");
    }
}
