//! Loading a program: reads an ELF64 executable through the page cache, builds
//! a new address space with its segments (private memory, filled from the
//! file) and a stack holding argc and argv, and returns the first user frame.

use alloc::vec::Vec;

use elf::abi::{PF_W, PF_X, PT_LOAD};
use elf::endian::LittleEndian;
use elf::ElfBytes;
use neoos_abi::layout::{STACK_SIZE, STACK_TOP};
use neoos_abi::mman::{MAP_ANON, MAP_FIXED, MAP_PRIVATE, PROT_EXEC, PROT_READ, PROT_WRITE};
use neoos_mm::{AsId, Errno, Hw, Io};

use crate::arch::traps::TrapFrame;
use crate::fs::Node;
use crate::memory::HardwarePageTable;
use crate::process::Kernel;

/// Largest program file accepted.
const MAX_PROGRAM_SIZE: u64 = 64 * 1024 * 1024;
/// Most bytes of arguments (strings and pointers) a program may get.
const MAX_ARGUMENT_BYTES: usize = 64 * 1024;

fn read_program(k: &mut Kernel, path: &str) -> Result<Vec<u8>, Errno> {
    let file = match k.fs.lookup(path) {
        Some(Node::File(id)) => id,
        Some(Node::Dir) => return Err(Errno::Perm),
        None => return Err(Errno::NoEnt),
    };
    k.memory.file_open_ref(file, k.fs.disk.len(file));
    let mut io = Io {
        frames: &mut k.frames,
        pager: &mut k.fs.disk,
    };
    let size = k.memory.file_size(file).unwrap_or(0);
    let result = if size > MAX_PROGRAM_SIZE {
        Err(Errno::NoMem)
    } else {
        let mut data = alloc::vec![0u8; size as usize];
        k.memory
            .file_read(&mut io, file, 0, &mut data)
            .map(|_| data)
    };
    let _ = k.memory.file_close_ref(&mut io, file);
    result
}

/// Builds the address space of `path` with `argv`.
pub fn load(
    k: &mut Kernel,
    path: &str,
    argv: &[Vec<u8>],
) -> Result<(AsId, HardwarePageTable, TrapFrame), Errno> {
    let data = read_program(k, path)?;
    let elf = ElfBytes::<LittleEndian>::minimal_parse(&data).map_err(|_| Errno::Perm)?;
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
            let start = s.p_vaddr & !0xfff;
            let end = s.p_vaddr.checked_add(s.p_memsz).ok_or(Errno::Perm)?;
            let mut prot = PROT_READ;
            if s.p_flags & PF_W != 0 {
                prot |= PROT_WRITE;
            }
            if s.p_flags & PF_X != 0 {
                prot |= PROT_EXEC;
            }
            k.memory.mmap(
                space,
                &mut hw,
                start,
                end - start,
                prot,
                MAP_PRIVATE | MAP_ANON | MAP_FIXED,
                None,
                0,
            )?;
            let file_end = s.p_offset.checked_add(s.p_filesz).ok_or(Errno::Perm)?;
            let bytes = data
                .get(s.p_offset as usize..file_end as usize)
                .ok_or(Errno::Perm)?;
            k.memory
                .copy_to_user(space, &mut hw, s.p_vaddr, bytes, true)?;
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
