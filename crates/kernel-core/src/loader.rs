//! Loading a program: reads an ELF64 executable's headers through the page
//! cache (its ELF header, program headers and notes, never the whole file),
//! builds a new address space whose segments are private mappings of the
//! file (pages come from the page cache on first touch, shared by every
//! process running the program until one writes), zero-filled memory past
//! each segment's file part, and the initial stack: argc and argv for a
//! NeoOS program (one with the NeoOS note), the Linux layout with
//! environment and auxiliary vector for any other static program. A program
//! that needs a dynamic linker is refused.

use alloc::vec::Vec;

use elf::abi::{PF_W, PF_X, PT_LOAD, PT_NOTE};
use elf::endian::LittleEndian;
use elf::file::{Class, FileHeader};
use elf::segment::{ProgramHeader, SegmentTable};
use neoos_abi::layout::{STACK_SIZE, STACK_TOP, USER_END};
use neoos_abi::mman::{MAP_ANON, MAP_FIXED, MAP_PRIVATE, PROT_EXEC, PROT_READ, PROT_WRITE};
use neoos_abi::PAGE_SIZE;
use neoos_mm::{AsId, Errno, FileAccess, FileId, Hw, MemorySystem};

use crate::fs::Node;
use crate::kernel::Kernel;
use crate::linux::program::{classify, has_neoos_note, ProgramKind, PHENT};
use crate::linux::stack::{linux_stack_block, AuxValues, ENVIRONMENT};
use crate::linux::{LinuxState, ProgramAbi};
use crate::platform::Platform;
use crate::stack::argument_block;

const PAGE: u64 = PAGE_SIZE as u64;
/// A page of zeros to copy from (a static: 4 KiB on the kernel stack is
/// an eighth of it).
static ZERO_PAGE: [u8; PAGE_SIZE] = [0; PAGE_SIZE];

/// The size of the ELF64 file header.
const EHDR_SIZE: usize = 64;
/// Most bytes of program headers accepted (Linux's bound too): 1,170
/// headers.
const MAX_PHDR_BYTES: u64 = 64 * 1024;
/// Most bytes of a `PT_NOTE` segment read when looking for the NeoOS note
/// (it comes first in a NeoOS program's notes).
const MAX_NOTE_BYTES: u64 = PAGE;

/// A loaded program: its address space, page table and first registers.
pub struct Loaded<P: Platform> {
    pub space: AsId,
    pub table: P::PageTable,
    pub frame: P::UserFrame,
    pub abi: ProgramAbi,
}

/// What the loader reads of a program file: its ELF header and program
/// headers, and whether it carries the NeoOS note. The segments are
/// mapped from the file, never read here.
struct ProgramHeaders {
    ehdr: FileHeader<LittleEndian>,
    /// The program header table's bytes (`e_phnum` entries of [`PHENT`]).
    table: Vec<u8>,
    file_size: u64,
    neo_note: bool,
}

impl ProgramHeaders {
    fn segments(&self) -> SegmentTable<'_, LittleEndian> {
        SegmentTable::new(LittleEndian, Class::ELF64, &self.table)
    }

    /// Whether segment `s`'s file part lies within the file.
    fn within_file(&self, s: &ProgramHeader) -> bool {
        s.p_offset
            .checked_add(s.p_filesz)
            .is_some_and(|end| end <= self.file_size)
    }
}

impl<P: Platform> Kernel<P> {
    /// Opens `path` (the caller closes it) and reads its headers.
    fn open_program(&mut self, path: &str) -> Result<(FileId, ProgramHeaders), Errno> {
        let file = match self.fs.lookup(path) {
            Some(Node::File(id)) => id,
            Some(Node::Dir) => return Err(Errno::Perm),
            None => return Err(Errno::NoEnt),
        };
        self.file_io().open_ref(file);
        match self.read_headers(file) {
            Ok(headers) => Ok((file, headers)),
            Err(e) => {
                let _ = self.file_io().close_ref(file);
                Err(e)
            }
        }
    }

    /// Reads the ELF header and the program headers of open `file`
    /// through the page cache, and its notes up to [`MAX_NOTE_BYTES`] a
    /// segment: O(headers), whatever the file's size. `Perm` (no program)
    /// for a file too short for what its header says, a class other than
    /// ELF64, a header entry size other than [`PHENT`], no program headers
    /// or more than [`MAX_PHDR_BYTES`] of them.
    fn read_headers(&mut self, file: FileId) -> Result<ProgramHeaders, Errno> {
        let size = self.file_io().size(file);
        let mut bytes = [0u8; EHDR_SIZE];
        self.read_exactly(file, 0, &mut bytes)?;
        let ident = elf::file::parse_ident::<LittleEndian>(&bytes).map_err(|_| Errno::Perm)?;
        if ident.1 != Class::ELF64 {
            return Err(Errno::Perm);
        }
        let ehdr = FileHeader::parse_tail(ident, &bytes[elf::abi::EI_NIDENT..])
            .map_err(|_| Errno::Perm)?;
        let len = u64::from(ehdr.e_phnum) * PHENT;
        let end = ehdr.e_phoff.checked_add(len).ok_or(Errno::Perm)?;
        if u64::from(ehdr.e_phentsize) != PHENT
            || ehdr.e_phnum == 0
            || ehdr.e_phnum == elf::abi::PN_XNUM
            || len > MAX_PHDR_BYTES
            || end > size
        {
            return Err(Errno::Perm);
        }
        let mut table = crate::buffer::zeroed(len as usize)?;
        self.read_exactly(file, ehdr.e_phoff, &mut table)?;
        let mut headers = ProgramHeaders {
            ehdr,
            table,
            file_size: size,
            neo_note: false,
        };
        headers.neo_note = self.has_note(file, &headers)?;
        Ok(headers)
    }

    /// Whether a `PT_NOTE` segment (its first [`MAX_NOTE_BYTES`], within
    /// the file) holds the NeoOS note.
    fn has_note(&mut self, file: FileId, h: &ProgramHeaders) -> Result<bool, Errno> {
        for s in h.segments().iter().filter(|s| s.p_type == PT_NOTE) {
            if !h.within_file(&s) {
                continue;
            }
            let mut notes = crate::buffer::zeroed(s.p_filesz.min(MAX_NOTE_BYTES) as usize)?;
            self.read_exactly(file, s.p_offset, &mut notes)?;
            if has_neoos_note(&notes) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Reads `buf.len()` bytes of `file` at `offset`; `Perm` when the file
    /// ends first.
    fn read_exactly(&mut self, file: FileId, offset: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let (memory, mut io) = self.memory_io();
        let n = memory.file_read(&mut io, file, offset, buf)?;
        if n < buf.len() {
            return Err(Errno::Perm);
        }
        Ok(())
    }

    /// Builds the address space of `path` with `argv` (a Linux program
    /// gets the standard environment, [`ENVIRONMENT`]).
    pub fn load(&mut self, path: &str, argv: &[Vec<u8>]) -> Result<Loaded<P>, Errno> {
        self.load_with_env(path, argv, &ENVIRONMENT)
    }

    /// Builds the address space of `path` with `argv` and, for a Linux
    /// program, environment `envp` (`execve`). Not inlined: its frame and
    /// its callers' (spawn, execve) would add up on the kernel stack.
    #[inline(never)]
    pub fn load_with_env<E: AsRef<[u8]>>(
        &mut self,
        path: &str,
        argv: &[Vec<u8>],
        envp: &[E],
    ) -> Result<Loaded<P>, Errno> {
        let (file, headers) = self.open_program(path)?;
        let loaded = self.load_opened(path, file, &headers, argv, envp);
        // The mappings hold their own references to the file.
        let _ = self.file_io().close_ref(file);
        loaded
    }

    #[inline(never)]
    fn load_opened<E: AsRef<[u8]>>(
        &mut self,
        path: &str,
        file: FileId,
        headers: &ProgramHeaders,
        argv: &[Vec<u8>],
        envp: &[E],
    ) -> Result<Loaded<P>, Errno> {
        let ehdr = &headers.ehdr;
        if ehdr.e_machine != elf::abi::EM_X86_64 {
            return Err(Errno::Perm);
        }
        let segments = headers.segments();
        let kind = classify(ehdr, &segments, headers.neo_note);
        if kind == ProgramKind::Dynamic {
            self.platform.report(format_args!(
                "{path} is dynamically linked: NeoOS runs static programs only"
            ));
            return Err(Errno::Perm);
        }
        if ehdr.e_type != elf::abi::ET_EXEC {
            self.platform.report(format_args!(
                "{path} is not an executable at a fixed address (ELF type {}, not \
                 ET_EXEC; a position-independent program is ET_DYN): NeoOS cannot run it",
                ehdr.e_type
            ));
            return Err(Errno::Perm);
        }
        // The first return to user mode goes to the entry: one outside the
        // user half would fault in the kernel's iretq, not in the program.
        if ehdr.e_entry >= USER_END {
            self.platform.report(format_args!(
                "{path}: entry point {:#x} is outside user space: NeoOS cannot run it",
                ehdr.e_entry
            ));
            return Err(Errno::Perm);
        }
        let (abi, stack, brk_start) = match kind {
            ProgramKind::Neo => (ProgramAbi::Neo, argument_block(argv)?, 0),
            ProgramKind::Linux(image) => {
                let aux = AuxValues {
                    phdr: image.phdr,
                    phnum: image.phnum,
                    entry: ehdr.e_entry,
                    hwcap: self.platform.hwcap(),
                    random: self.random_bytes(),
                };
                let stack = linux_stack_block(argv, envp, path.as_bytes(), &aux)?;
                let abi = ProgramAbi::Linux(LinuxState::default());
                (abi, stack, image.brk_start)
            }
            ProgramKind::Dynamic => return Err(Errno::Perm),
        };
        let mut table = self.platform.new_page_table().ok_or(Errno::NoMem)?;
        let space = self.memory.create_address_space();
        let brk = neoos_mm::ProgramBreak {
            start: brk_start,
            end: brk_start,
        };
        self.memory.set_program_break(space, brk);
        let mut hw = Hw::new(&mut table, self.platform.frames(), &mut self.fs.disk);
        let memory = &mut self.memory;
        let built = (|| {
            for s in segments
                .iter()
                .filter(|s| s.p_type == PT_LOAD && s.p_memsz > 0)
            {
                if !headers.within_file(&s) {
                    return Err(Errno::Perm); // a truncated file
                }
                map_segment(memory, space, &mut hw, file, &s)?;
            }
            let stack_base = STACK_TOP - STACK_SIZE;
            memory.mmap(
                space,
                &mut hw,
                stack_base,
                STACK_SIZE,
                PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANON | MAP_FIXED,
                None,
                0,
            )?;
            let (block, rsp) = &stack;
            memory.copy_to_user(space, &mut hw, *rsp, block, false)?;
            Ok(rsp)
        })();
        match built {
            Ok(rsp) => Ok(Loaded {
                space,
                table,
                frame: self.platform.user_frame(ehdr.e_entry, *rsp),
                abi,
            }),
            Err(e) => {
                let _ = memory.destroy_address_space(space, &mut hw);
                self.platform.free_page_table(table);
                Err(e)
            }
        }
    }
}

impl<P: Platform> Kernel<P> {
    /// 16 bytes from the platform's random source (`AT_RANDOM`).
    fn random_bytes(&mut self) -> [u8; 16] {
        let mut bytes = [0u8; 16];
        for half in bytes.chunks_exact_mut(8) {
            half.copy_from_slice(&self.platform.random_u64().to_le_bytes());
        }
        bytes
    }
}

/// Maps one `PT_LOAD` segment: its file part as a private mapping of the
/// program file, the rest of its memory (`.bss`) zero-filled.
fn map_segment(
    memory: &mut MemorySystem,
    space: AsId,
    hw: &mut Hw,
    file: FileId,
    s: &ProgramHeader,
) -> Result<(), Errno> {
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
    let file_pages_end = file_end.checked_next_multiple_of(PAGE).ok_or(Errno::Perm)?;
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
            memory.copy_to_user(space, hw, file_end, &ZERO_PAGE[..tail], true)?;
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
