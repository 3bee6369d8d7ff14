//! Random operation sequences over both personalities, checked after every
//! step against a page-granular reference model: layout (which pages are
//! mapped, with which protection), contents seen by user loads, page-cache
//! and on-disk file contents, frame accounting; no frame left at the end.

use neoos_abi::mman;
use neoos_mm::testing::Machine;
use neoos_mm::{AsId, Errno, FaultError, FileAccess, FileId, PAGE_SIZE};
use proptest::prelude::*;
use std::collections::BTreeMap;

const BASE: u64 = 0x1000_0000;
const SLOTS: u64 = 24;
const FILE_PAGES: u64 = 6;
const FILES: usize = 2;
const MAX_PROCS: usize = 3;

type Bytes = [u8; 8];
/// Source of the k-th page of a new mapping.
type SrcFn = Box<dyn Fn(u64) -> Src>;
/// (flags, file, source of each page, shared, maximal write permission).
type MapPlan = (u32, Option<(FileId, FileAccess)>, SrcFn, bool, bool);

#[derive(Clone, Copy, Debug, PartialEq)]
enum Src {
    Anon,
    SharedAnon(usize, u64),
    File(usize, u64),
}

#[derive(Clone, Copy, Debug)]
struct MPage {
    read: bool,
    write: bool,
    max_write: bool,
    shared: bool,
    src: Src,
    own: Option<Bytes>,
}

#[derive(Clone, Debug)]
struct Neo {
    proc: usize,
    start: u64,
    pages: u64,
}

#[derive(Default)]
struct Model {
    procs: BTreeMap<usize, BTreeMap<u64, MPage>>,
    cache: Vec<Vec<Bytes>>,
    disk: Vec<Vec<Bytes>>,
    shared_anon: Vec<Vec<Bytes>>,
    neo: Vec<Neo>,
}

impl Model {
    fn content(&self, p: &MPage) -> Result<Bytes, FaultError> {
        if let Some(b) = p.own {
            return Ok(b);
        }
        match p.src {
            Src::Anon => Ok([0; 8]),
            Src::SharedAnon(o, i) => Ok(self.shared_anon[o][i as usize]),
            Src::File(f, i) if i < FILE_PAGES => Ok(self.cache[f][i as usize]),
            Src::File(..) => Err(FaultError::BeyondEndOfFile),
        }
    }

    fn load(&self, proc: usize, vpn: u64) -> Result<Bytes, FaultError> {
        let p = self.procs[&proc].get(&vpn).ok_or(FaultError::NotMapped)?;
        if !p.read {
            return Err(FaultError::NotPermitted);
        }
        self.content(p)
    }

    fn store(&mut self, proc: usize, vpn: u64, v: Bytes) -> Result<(), FaultError> {
        let p = *self.procs[&proc].get(&vpn).ok_or(FaultError::NotMapped)?;
        if !p.write {
            return Err(FaultError::NotPermitted);
        }
        self.content(&p)?;
        if p.shared {
            match p.src {
                Src::SharedAnon(o, i) => self.shared_anon[o][i as usize] = v,
                Src::File(f, i) => self.cache[f][i as usize] = v,
                Src::Anon => unreachable!(),
            }
        } else if let Some(pg) = self.procs.get_mut(&proc).and_then(|m| m.get_mut(&vpn)) {
            pg.own = Some(v);
        }
        Ok(())
    }

    fn touches_neo(&mut self, proc: usize, lo: u64, hi: u64) {
        self.neo.retain(|n| {
            let (s, e) = (n.start / PAGE_SIZE, n.start / PAGE_SIZE + n.pages);
            !(n.proc == proc && s < hi && lo < e)
        });
    }

    fn unmap(&mut self, proc: usize, lo: u64, hi: u64) {
        self.touches_neo(proc, lo, hi);
        if let Some(m) = self.procs.get_mut(&proc) {
            m.retain(|&v, _| v < lo || v >= hi);
        }
    }

    fn all_mapped(&self, proc: usize, lo: u64, hi: u64) -> bool {
        (lo..hi).all(|v| self.procs[&proc].contains_key(&v))
    }

    fn write_back(&mut self, f: usize, i: u64) {
        if i < FILE_PAGES {
            self.disk[f][i as usize] = self.cache[f][i as usize];
        }
    }
}

#[derive(Clone, Debug)]
enum Kind {
    PrivateAnon,
    SharedAnon,
    File {
        file: usize,
        shared: bool,
        offset: u64,
    },
}

#[derive(Clone, Debug)]
enum Op {
    Mmap {
        proc: usize,
        slot: u64,
        pages: u64,
        kind: Kind,
        write: bool,
    },
    Munmap {
        proc: usize,
        slot: u64,
        pages: u64,
        misalign: bool,
    },
    Mprotect {
        proc: usize,
        slot: u64,
        pages: u64,
        prot: u8,
    },
    Msync {
        proc: usize,
        slot: u64,
        pages: u64,
    },
    DontNeed {
        proc: usize,
        slot: u64,
        pages: u64,
    },
    Store {
        proc: usize,
        slot: u64,
        value: u8,
    },
    Load {
        proc: usize,
        slot: u64,
    },
    NeoMmap {
        proc: usize,
        file: usize,
        offset: u64,
        pages: u64,
    },
    NeoMunmap {
        which: usize,
        wrong_size: bool,
        device_fails: bool,
    },
    NeoStore {
        which: usize,
        page: u64,
        value: u8,
    },
    BsdMunmapNeo {
        which: usize,
    },
    FileWrite {
        file: usize,
        page: u64,
        value: u8,
    },
    FileSync {
        file: usize,
    },
    Fork {
        proc: usize,
    },
    Exit {
        proc: usize,
    },
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::PrivateAnon),
        Just(Kind::SharedAnon),
        (0..FILES, any::<bool>(), 0..FILE_PAGES + 2).prop_map(|(file, shared, offset)| {
            Kind::File {
                file,
                shared,
                offset,
            }
        }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let proc = 0..MAX_PROCS;
    let slot = 0..SLOTS;
    let pages = 1..6u64;
    prop_oneof![
        4 => (proc.clone(), slot.clone(), pages.clone(), kind(), any::<bool>()).prop_map(|(proc, slot, pages, kind, write)| Op::Mmap { proc, slot, pages, kind, write }),
        2 => (proc.clone(), slot.clone(), pages.clone(), any::<bool>()).prop_map(|(proc, slot, pages, m)| Op::Munmap { proc, slot, pages, misalign: m && slot % 5 == 0 }),
        2 => (proc.clone(), slot.clone(), pages.clone(), 0..3u8).prop_map(|(proc, slot, pages, prot)| Op::Mprotect { proc, slot, pages, prot }),
        1 => (proc.clone(), slot.clone(), pages.clone()).prop_map(|(proc, slot, pages)| Op::Msync { proc, slot, pages }),
        1 => (proc.clone(), slot.clone(), pages.clone()).prop_map(|(proc, slot, pages)| Op::DontNeed { proc, slot, pages }),
        6 => (proc.clone(), slot.clone(), any::<u8>()).prop_map(|(proc, slot, value)| Op::Store { proc, slot, value }),
        4 => (proc.clone(), slot.clone()).prop_map(|(proc, slot)| Op::Load { proc, slot }),
        2 => (proc.clone(), 0..FILES, 0..FILE_PAGES, 1..5u64).prop_map(|(proc, file, offset, pages)| Op::NeoMmap { proc, file, offset, pages }),
        2 => (0..4usize, any::<bool>(), any::<bool>()).prop_map(|(which, wrong_size, device_fails)| Op::NeoMunmap { which, wrong_size, device_fails }),
        3 => (0..4usize, 0..5u64, any::<u8>()).prop_map(|(which, page, value)| Op::NeoStore { which, page, value }),
        1 => (0..4usize).prop_map(|which| Op::BsdMunmapNeo { which }),
        2 => (0..FILES, 0..FILE_PAGES, any::<u8>()).prop_map(|(file, page, value)| Op::FileWrite { file, page, value }),
        1 => (0..FILES).prop_map(|file| Op::FileSync { file }),
        1 => proc.clone().prop_map(|proc| Op::Fork { proc }),
        1 => proc.prop_map(|proc| Op::Exit { proc }),
    ]
}

struct World {
    m: Machine,
    model: Model,
    ids: BTreeMap<usize, AsId>,
    files: Vec<FileId>,
    next_anon: usize,
}

fn file_bytes(f: usize, i: u64) -> Bytes {
    [(f as u8) * 16 + i as u8 + 1; 8]
}

impl World {
    fn new() -> Self {
        let mut m = Machine::new();
        let mut model = Model::default();
        let mut files = Vec::new();
        for f in 0..FILES {
            let mut data = vec![0u8; (FILE_PAGES * PAGE_SIZE) as usize];
            let mut pages = Vec::new();
            for i in 0..FILE_PAGES {
                let b = file_bytes(f, i);
                data[(i * PAGE_SIZE) as usize..][..8].copy_from_slice(&b);
                pages.push(b);
            }
            files.push(m.create_file(100 + f as u64, &data));
            model.cache.push(pages.clone());
            model.disk.push(pages);
        }
        let mut ids = BTreeMap::new();
        ids.insert(0, m.new_space());
        model.procs.insert(0, BTreeMap::new());
        World {
            m,
            model,
            ids,
            files,
            next_anon: 0,
        }
    }

    fn access(f: usize) -> FileAccess {
        if f == 0 {
            FileAccess::ReadWrite
        } else {
            FileAccess::ReadOnly
        }
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Mmap {
                proc,
                slot,
                pages,
                ref kind,
                write,
            } => self.mmap(proc, slot, pages, kind, write),
            Op::Munmap {
                proc,
                slot,
                pages,
                misalign,
            } => {
                let Some(&id) = self.ids.get(&proc) else {
                    return;
                };
                let addr = BASE + slot * PAGE_SIZE + u64::from(misalign) * 8;
                let r = self
                    .m
                    .with(id, |vm, hw| vm.munmap(id, hw, addr, pages * PAGE_SIZE));
                if misalign {
                    assert_eq!(r, Err(Errno::Inval));
                } else {
                    assert_eq!(r, Ok(()));
                    let lo = addr / PAGE_SIZE;
                    self.model.unmap(proc, lo, lo + pages);
                }
            }
            Op::Mprotect {
                proc,
                slot,
                pages,
                prot,
            } => {
                let Some(&id) = self.ids.get(&proc) else {
                    return;
                };
                let addr = BASE + slot * PAGE_SIZE;
                let bits = [
                    mman::PROT_NONE,
                    mman::PROT_READ,
                    mman::PROT_READ | mman::PROT_WRITE,
                ][prot as usize];
                let r = self.m.with(id, |vm, hw| {
                    vm.mprotect(id, hw, addr, pages * PAGE_SIZE, bits)
                });
                let lo = addr / PAGE_SIZE;
                let expect = if !self.model.all_mapped(proc, lo, lo + pages) {
                    Err(Errno::NoMem)
                } else if prot == 2
                    && (lo..lo + pages).any(|v| !self.model.procs[&proc][&v].max_write)
                {
                    Err(Errno::Access)
                } else {
                    Ok(())
                };
                assert_eq!(r, expect);
                if r.is_ok() {
                    self.model.touches_neo(proc, lo, lo + pages);
                    for v in lo..lo + pages {
                        let p = self
                            .model
                            .procs
                            .get_mut(&proc)
                            .unwrap()
                            .get_mut(&v)
                            .unwrap();
                        p.read = prot >= 1;
                        p.write = prot == 2;
                    }
                }
            }
            Op::Msync { proc, slot, pages } => {
                let Some(&id) = self.ids.get(&proc) else {
                    return;
                };
                let addr = BASE + slot * PAGE_SIZE;
                let r = self.m.with(id, |vm, hw| {
                    vm.msync(id, hw, addr, pages * PAGE_SIZE, mman::MS_SYNC)
                });
                let lo = addr / PAGE_SIZE;
                if !self.model.all_mapped(proc, lo, lo + pages) {
                    assert_eq!(r, Err(Errno::NoMem));
                    return;
                }
                assert_eq!(r, Ok(()));
                for v in lo..lo + pages {
                    let p = self.model.procs[&proc][&v];
                    if let (true, Src::File(f, i)) = (p.shared, p.src) {
                        self.model.write_back(f, i);
                    }
                }
            }
            Op::DontNeed { proc, slot, pages } => {
                let Some(&id) = self.ids.get(&proc) else {
                    return;
                };
                let addr = BASE + slot * PAGE_SIZE;
                let r = self.m.with(id, |vm, hw| {
                    vm.madvise(id, hw, addr, pages * PAGE_SIZE, mman::MADV_DONTNEED)
                });
                let lo = addr / PAGE_SIZE;
                if !self.model.all_mapped(proc, lo, lo + pages) {
                    assert_eq!(r, Err(Errno::NoMem));
                    return;
                }
                assert_eq!(r, Ok(()));
                for v in lo..lo + pages {
                    self.model
                        .procs
                        .get_mut(&proc)
                        .unwrap()
                        .get_mut(&v)
                        .unwrap()
                        .own = None;
                }
            }
            Op::Store { proc, slot, value } => self.store(proc, BASE / PAGE_SIZE + slot, value),
            Op::Load { proc, slot } => self.load(proc, BASE / PAGE_SIZE + slot),
            Op::NeoMmap {
                proc,
                file,
                offset,
                pages,
            } => self.neo_mmap(proc, file, offset, pages),
            Op::NeoMunmap {
                which,
                wrong_size,
                device_fails,
            } => {
                let Some(n) = self.model.neo.get(which).cloned() else {
                    return;
                };
                let id = self.ids[&n.proc];
                let size =
                    (n.pages * PAGE_SIZE) as i64 + if wrong_size { PAGE_SIZE as i64 } else { 0 };
                self.m.pager.fail_writes = u32::from(device_fails);
                let r = self
                    .m
                    .with(id, |vm, hw| vm.neo_munmap(id, hw, n.start, size));
                self.m.pager.fail_writes = 0;
                if wrong_size {
                    assert_eq!(r, Err(Errno::Inval));
                    return;
                }
                if device_fails && r == Err(Errno::Io) {
                    return; // nothing changed: check() verifies it
                }
                assert_eq!(r, Ok(()));
                let lo = n.start / PAGE_SIZE;
                for v in lo..lo + n.pages {
                    if let Src::File(f, i) = self.model.procs[&n.proc][&v].src {
                        self.model.write_back(f, i);
                    }
                }
                self.model.unmap(n.proc, lo, lo + n.pages);
            }
            Op::NeoStore { which, page, value } => {
                let Some(n) = self.model.neo.get(which).cloned() else {
                    return;
                };
                self.store(n.proc, n.start / PAGE_SIZE + page % n.pages, value);
            }
            Op::BsdMunmapNeo { which } => {
                let Some(n) = self.model.neo.get(which).cloned() else {
                    return;
                };
                let id = self.ids[&n.proc];
                self.m
                    .with(id, |vm, hw| vm.munmap(id, hw, n.start, n.pages * PAGE_SIZE))
                    .unwrap();
                let lo = n.start / PAGE_SIZE;
                self.model.unmap(n.proc, lo, lo + n.pages);
            }
            Op::FileWrite { file, page, value } => {
                let f = self.files[file];
                let r = self
                    .m
                    .with_io(|vm, io| vm.file_write(io, f, page * PAGE_SIZE, &[value; 8]));
                assert_eq!(r, Ok(8));
                self.model.cache[file][page as usize] = [value; 8];
            }
            Op::FileSync { file } => {
                let f = self.files[file];
                self.m.with_io(|vm, io| vm.file_sync(io, f)).unwrap();
                for i in 0..FILE_PAGES {
                    self.model.write_back(file, i);
                }
            }
            Op::Fork { proc } => {
                let Some(&id) = self.ids.get(&proc) else {
                    return;
                };
                let Some(free) = (0..MAX_PROCS).find(|p| !self.ids.contains_key(p)) else {
                    return;
                };
                let child = self.m.fork(id).unwrap();
                self.ids.insert(free, child);
                let pages = self.model.procs[&proc].clone();
                self.model.procs.insert(free, pages);
                let copies: Vec<Neo> = self
                    .model
                    .neo
                    .iter()
                    .filter(|n| n.proc == proc)
                    .map(|n| Neo {
                        proc: free,
                        ..n.clone()
                    })
                    .collect();
                self.model.neo.extend(copies);
            }
            Op::Exit { proc } => {
                let Some(id) = self.ids.remove(&proc) else {
                    return;
                };
                self.m.exit(id).unwrap();
                let pages = self.model.procs.remove(&proc).unwrap();
                for p in pages.values() {
                    if let (true, Src::File(f, i)) = (p.shared, p.src) {
                        self.model.write_back(f, i);
                    }
                }
                self.model.neo.retain(|n| n.proc != proc);
            }
        }
    }

    fn mmap(&mut self, proc: usize, slot: u64, pages: u64, kind: &Kind, write: bool) {
        let Some(&id) = self.ids.get(&proc) else {
            return;
        };
        let addr = BASE + slot * PAGE_SIZE;
        let prot = mman::PROT_READ | if write { mman::PROT_WRITE } else { 0 };
        let (flags, file, src_of, shared, max_write): MapPlan = match *kind {
            Kind::PrivateAnon => (
                mman::MAP_PRIVATE | mman::MAP_ANON,
                None,
                Box::new(|_| Src::Anon),
                false,
                true,
            ),
            Kind::SharedAnon => {
                let o = self.next_anon;
                (
                    mman::MAP_SHARED | mman::MAP_ANON,
                    None,
                    Box::new(move |k| Src::SharedAnon(o, k)),
                    true,
                    true,
                )
            }
            Kind::File {
                file,
                shared,
                offset,
            } => {
                let flags = if shared {
                    mman::MAP_SHARED
                } else {
                    mman::MAP_PRIVATE
                };
                let fa = Self::access(file);
                (
                    flags,
                    Some((self.files[file], fa)),
                    Box::new(move |k| Src::File(file, offset + k)),
                    shared,
                    !shared || fa == FileAccess::ReadWrite,
                )
            }
        };
        let offset = match *kind {
            Kind::File { offset, .. } => (offset * PAGE_SIZE) as i64,
            _ => 0,
        };
        let r = self.m.with(id, |vm, hw| {
            vm.mmap(
                id,
                hw,
                addr,
                pages * PAGE_SIZE,
                prot,
                flags | mman::MAP_FIXED,
                file,
                offset,
            )
        });
        if write && !max_write {
            assert_eq!(r, Err(Errno::Access));
            return;
        }
        assert_eq!(r, Ok(addr));
        if matches!(kind, Kind::SharedAnon) {
            self.model.shared_anon.push(vec![[0; 8]; pages as usize]);
            self.next_anon += 1;
        }
        let lo = addr / PAGE_SIZE;
        self.model.unmap(proc, lo, lo + pages);
        let map = self.model.procs.get_mut(&proc).unwrap();
        for k in 0..pages {
            map.insert(
                lo + k,
                MPage {
                    read: true,
                    write,
                    max_write,
                    shared,
                    src: src_of(k),
                    own: None,
                },
            );
        }
    }

    fn neo_mmap(&mut self, proc: usize, file: usize, offset: u64, pages: u64) {
        let Some(&id) = self.ids.get(&proc) else {
            return;
        };
        let f = self.files[file];
        let fa = Self::access(file);
        let r = self.m.with(id, |vm, hw| {
            vm.neo_mmap(
                id,
                hw,
                f,
                fa,
                (offset * PAGE_SIZE) as i64,
                (pages * PAGE_SIZE) as i64,
            )
        });
        if offset + pages > FILE_PAGES {
            assert_eq!(r, Err(Errno::Inval));
            return;
        }
        let start = r.unwrap();
        let lo = start / PAGE_SIZE;
        let map = self.model.procs.get_mut(&proc).unwrap();
        for k in 0..pages {
            assert!(!map.contains_key(&(lo + k)), "neo_mmap over a used page");
            let write = fa == FileAccess::ReadWrite;
            map.insert(
                lo + k,
                MPage {
                    read: true,
                    write,
                    max_write: write,
                    shared: true,
                    src: Src::File(file, offset + k),
                    own: None,
                },
            );
        }
        self.model.neo.push(Neo { proc, start, pages });
    }

    fn store(&mut self, proc: usize, vpn: u64, value: u8) {
        let Some(&id) = self.ids.get(&proc) else {
            return;
        };
        let r = self.m.store(id, vpn * PAGE_SIZE, &[value; 8]);
        let expect = self.model.store(proc, vpn, [value; 8]);
        assert_eq!(r, expect, "store at {:#x}", vpn * PAGE_SIZE);
    }

    fn load(&mut self, proc: usize, vpn: u64) {
        let Some(&id) = self.ids.get(&proc) else {
            return;
        };
        let r = self
            .m
            .load(id, vpn * PAGE_SIZE, 8)
            .map(|v| <Bytes>::try_from(v.as_slice()).unwrap());
        assert_eq!(
            r,
            self.model.load(proc, vpn),
            "load at {:#x}",
            vpn * PAGE_SIZE
        );
    }

    fn check(&mut self) {
        assert_eq!(
            self.m.vm.stats().frames_in_use,
            self.m.frames.live_count() as u64
        );
        for (&proc, &id) in &self.ids {
            let model = &self.model.procs[&proc];
            let total: u64 = self
                .m
                .vm
                .maps(id)
                .map(|m| (m.end - m.start) / PAGE_SIZE)
                .sum();
            assert_eq!(
                total,
                model.len() as u64,
                "mapped page count of proc {proc}"
            );
            for (&vpn, p) in model {
                let m = self
                    .m
                    .vm
                    .mapping_at(id, vpn * PAGE_SIZE)
                    .expect("model page not mapped");
                assert_eq!(
                    (m.prot.read, m.prot.write),
                    (p.read, p.write),
                    "prot at {:#x}",
                    vpn * PAGE_SIZE
                );
            }
        }
        for f in 0..FILES {
            for i in 0..FILE_PAGES {
                let mut buf = [0u8; 8];
                let file = self.files[f];
                self.m
                    .with_io(|vm, io| vm.file_read(io, file, i * PAGE_SIZE, &mut buf))
                    .unwrap();
                assert_eq!(
                    buf, self.model.cache[f][i as usize],
                    "cache of file {f} page {i}"
                );
                let disk = &self.m.pager.contents(file)[(i * PAGE_SIZE) as usize..][..8];
                assert_eq!(
                    disk, &self.model.disk[f][i as usize],
                    "disk of file {f} page {i}"
                );
            }
        }
    }

    fn finish(mut self) {
        let procs: Vec<usize> = self.ids.keys().copied().collect();
        for proc in procs {
            let vpns: Vec<u64> = self.model.procs[&proc].keys().copied().collect();
            for vpn in vpns {
                self.load(proc, vpn);
            }
            self.apply(&Op::Exit { proc });
        }
        self.check_after_exit();
    }

    fn check_after_exit(mut self) {
        for f in 0..FILES {
            let file = self.files[f];
            self.m.close(file).unwrap();
            for i in 0..FILE_PAGES {
                let disk = &self.m.pager.contents(file)[(i * PAGE_SIZE) as usize..][..8];
                assert_eq!(disk, &self.model.cache[f][i as usize]);
            }
        }
        assert_eq!(self.m.frames.live_count(), 0, "frames left after teardown");
        assert_eq!(self.m.vm.stats().frames_in_use, 0);
        assert_eq!(self.m.vm.object_count(), 0);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, max_shrink_iters: 2000, .. ProptestConfig::default() })]

    #[test]
    fn random_operations_agree_with_the_reference_model(ops in proptest::collection::vec(op(), 1..60)) {
        let mut w = World::new();
        for op in &ops {
            w.apply(op);
            w.check();
        }
        w.finish();
    }
}
