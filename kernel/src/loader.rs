//! Loading a program: reads an ELF64 executable through the page cache, builds
//! a new address space whose segments are private mappings of the file (pages
//! come from the page cache on first touch, shared by every process running
//! the program until one writes), zero-filled memory past each segment's file
//! part, and a stack holding argc and argv; returns the first user frame.

use alloc::vec::Vec;

use elf::abi::{PF_W, PF_X, PT_LOAD};
use elf::endian::LittleEndian;
use elf::ElfBytes;
use neoos_abi::layout::{STACK_SIZE, STACK_TOP};
use neoos_abi::mman::{MAP_ANON, MAP_FIXED, MAP_PRIVATE, PROT_EXEC, PROT_READ, PROT_WRITE};
use neoos_mm::{AsId, Errno, FileAccess, FileId, Hw, MemorySystem};

use crate::arch::traps::TrapFrame;
use crate::fs::Node;
use crate::memory::HardwarePageTable;
use crate::process::Kernel;

/// Largest program file accepted: the loader reads the file whole into the
/// kernel heap to parse it, so this stays well below the heap's reserve.
const MAX_PROGRAM_SIZE: u64 = 4 * 1024 * 1024;
/// Most bytes of arguments (strings and pointers) a program may get.
const MAX_ARGUMENT_BYTES: usize = 64 * 1024;

/// Opens `path` (the caller closes it) and reads it whole.
fn open_program(k: &mut Kernel, path: &str) -> Result<(FileId, Vec<u8>), Errno> {
    let file = match k.fs.lookup(path) {
        Some(Node::File(id)) => id,
        Some(Node::Dir) => return Err(Errno::Perm),
        None => return Err(Errno::NoEnt),
    };
    k.memory.file_open_ref(file, k.fs.disk.len(file));
    let (memory, mut io) = k.memory_io();
    let size = memory.file_size(file).unwrap_or(0);
    let read = if size > MAX_PROGRAM_SIZE {
        Err(Errno::NoMem)
    } else {
        let mut data = alloc::vec![0u8; size as usize];
        memory.file_read(&mut io, file, 0, &mut data).map(|_| data)
    };
    match read {
        Ok(data) => Ok((file, data)),
        Err(e) => {
            let _ = memory.file_close_ref(&mut io, file);
            Err(e)
        }
    }
}

/// Builds the address space of `path` with `argv`.
pub fn load(
    k: &mut Kernel,
    path: &str,
    argv: &[Vec<u8>],
) -> Result<(AsId, HardwarePageTable, TrapFrame), Errno> {
    let (file, data) = open_program(k, path)?;
    let loaded = load_opened(k, file, &data, argv);
    // The mappings hold their own references to the file.
    let (memory, mut io) = k.memory_io();
    let _ = memory.file_close_ref(&mut io, file);
    loaded
}

fn load_opened(
    k: &mut Kernel,
    file: FileId,
    data: &[u8],
    argv: &[Vec<u8>],
) -> Result<(AsId, HardwarePageTable, TrapFrame), Errno> {
    let elf = ElfBytes::<LittleEndian>::minimal_parse(data).map_err(|_| Errno::Perm)?;
    if elf.ehdr.e_machine != elf::abi::EM_X86_64 || elf.ehdr.e_type != elf::abi::ET_EXEC {
        return Err(Errno::Perm);
    }
    let segments = elf.segments().ok_or(Errno::Perm)?;
    let mut table = HardwarePageTable::new().ok_or(Errno::NoMem)?;
    let space = k.memory.create_address_space();
    let mut hw = Hw::new(&mut table, &mut k.frames, &mut k.fs.disk);
    let built = (|| {
        for s in segments
            .iter()
            .filter(|s| s.p_type == PT_LOAD && s.p_memsz > 0)
        {
            map_segment(&mut k.memory, space, &mut hw, file, &s)?;
        }
        let stack_base = STACK_TOP - STACK_SIZE;
        k.memory.mmap(
            space,
            &mut hw,
            stack_base,
            STACK_SIZE,
            PROT_READ | PROT_WRITE,
            MAP_PRIVATE | MAP_ANON | MAP_FIXED,
            None,
            0,
        )?;
        let (block, rsp) = argument_block(argv)?;
        k.memory.copy_to_user(space, &mut hw, rsp, &block, false)?;
        Ok(TrapFrame::new_user(elf.ehdr.e_entry, rsp))
    })();
    match built {
        Ok(frame) => Ok((space, table, frame)),
        Err(e) => {
            let _ = k.memory.destroy_address_space(space, &mut hw);
            table.destroy();
            Err(e)
        }
    }
}

/// Maps one `PT_LOAD` segment: its file part as a private mapping of the
/// program file, the rest of its memory (`.bss`) zero-filled.
fn map_segment(
    memory: &mut MemorySystem,
    space: AsId,
    hw: &mut Hw,
    file: FileId,
    s: &elf::segment::ProgramHeader,
) -> Result<(), Errno> {
    const PAGE: u64 = 4096;
    if s.p_vaddr % PAGE != s.p_offset % PAGE {
        return Err(Errno::Perm); // not loadable by mapping: a broken ELF file
    }
    let start = s.p_vaddr & !(PAGE - 1);
    let file_end = s.p_vaddr.checked_add(s.p_filesz).ok_or(Errno::Perm)?;
    let end = s.p_vaddr.checked_add(s.p_memsz).ok_or(Errno::Perm)?;
    if end < file_end {
        return Err(Errno::Perm);
    }
    let prot = segment_prot(s.p_flags);
    let file_pages_end = file_end.next_multiple_of(PAGE);
    if s.p_filesz > 0 {
        let offset = i64::try_from(s.p_offset & !(PAGE - 1)).map_err(|_| Errno::Perm)?;
        let file = Some((file, FileAccess::ReadOnly));
        let flags = MAP_PRIVATE | MAP_FIXED;
        memory.mmap(
            space,
            hw,
            start,
            file_pages_end - start,
            prot,
            flags,
            file,
            offset,
        )?;
        // The file's bytes after the segment's own, in its last page, read as
        // zeros (a private copy of that page).
        let tail = (file_pages_end - file_end) as usize;
        if end > file_end && tail > 0 {
            let zeros = alloc::vec![0u8; tail];
            memory.copy_to_user(space, hw, file_end, &zeros, true)?;
        }
    }
    let zero_start = if s.p_filesz > 0 {
        file_pages_end
    } else {
        start
    };
    if end > zero_start {
        let flags = MAP_PRIVATE | MAP_ANON | MAP_FIXED;
        memory.mmap(
            space,
            hw,
            zero_start,
            end - zero_start,
            prot,
            flags,
            None,
            0,
        )?;
    }
    Ok(())
}

fn segment_prot(flags: u32) -> u32 {
    let mut prot = PROT_READ;
    if flags & PF_W != 0 {
        prot |= PROT_WRITE;
    }
    if flags & PF_X != 0 {
        prot |= PROT_EXEC;
    }
    prot
}

/// The initial stack contents, to be placed at the returned address just
/// below `STACK_TOP`: argc, argv pointers, NULL, then the strings.
fn argument_block(argv: &[Vec<u8>]) -> Result<(Vec<u8>, u64), Errno> {
    let strings: usize = argv.iter().map(|a| a.len() + 1).sum();
    let pointers = (argv.len() + 2) * 8;
    let total = (pointers + strings).next_multiple_of(16);
    if total > MAX_ARGUMENT_BYTES {
        return Err(Errno::Inval);
    }
    let base = STACK_TOP - total as u64;
    let mut block = alloc::vec![0u8; total];
    block[..8].copy_from_slice(&(argv.len() as u64).to_le_bytes());
    let mut string_at = pointers;
    for (i, arg) in argv.iter().enumerate() {
        let pointer = base + string_at as u64;
        block[8 + i * 8..16 + i * 8].copy_from_slice(&pointer.to_le_bytes());
        block[string_at..string_at + arg.len()].copy_from_slice(arg);
        string_at += arg.len() + 1;
    }
    Ok((block, base))
}
