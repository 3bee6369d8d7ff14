//! What the loader learns from an ELF file beyond its segments: whether it
//! is a NeoOS program (the NeoOS note in a `PT_NOTE` segment) or a Linux
//! one, whether it needs a dynamic linker (refused), and for a Linux
//! program what its auxiliary vector and program break need.

use elf::abi::{PT_INTERP, PT_LOAD, PT_PHDR};
use elf::endian::LittleEndian;
use elf::file::FileHeader;
use elf::segment::SegmentTable;
use neoos_abi::linux::{NOTE_NAME, NOTE_TYPE};
use neoos_abi::PAGE_SIZE;

/// The size of one ELF64 program header.
pub const PHENT: u64 = 56;

/// Which kind of program a file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgramKind {
    /// Carries the NeoOS note.
    Neo,
    /// A static program without the note: a Linux program.
    Linux(LinuxImage),
    /// Asks for a dynamic linker (`PT_INTERP`): NeoOS has none.
    Dynamic,
}

/// Facts about a Linux program's image for its initial stack and break.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinuxImage {
    /// Where the program headers are in memory (0 when no segment loads
    /// them: the auxiliary vector then reports none).
    pub phdr: u64,
    /// How many program headers there are (0 when `phdr` is 0).
    pub phnum: u64,
    /// The page-aligned end of the highest loaded segment: the first
    /// program break.
    pub brk_start: u64,
}

/// Classifies the program whose file header is `ehdr` and program headers
/// `segments`; `neo_note` says whether a `PT_NOTE` segment holds the NeoOS
/// note.
pub fn classify(
    ehdr: &FileHeader<LittleEndian>,
    segments: &SegmentTable<'_, LittleEndian>,
    neo_note: bool,
) -> ProgramKind {
    if segments.iter().any(|s| s.p_type == PT_INTERP) {
        return ProgramKind::Dynamic;
    }
    if neo_note {
        return ProgramKind::Neo;
    }
    let phoff = ehdr.e_phoff;
    let phnum = u64::from(ehdr.e_phnum);
    let phdr = segments
        .iter()
        .find(|s| s.p_type == PT_PHDR)
        .map(|s| s.p_vaddr)
        .or_else(|| {
            let headers_end = phoff.checked_add(phnum * PHENT)?;
            segments.iter().find_map(|s| {
                let inside = s.p_type == PT_LOAD
                    && phoff >= s.p_offset
                    && headers_end <= s.p_offset.saturating_add(s.p_filesz);
                inside
                    .then(|| s.p_vaddr.checked_add(phoff - s.p_offset))
                    .flatten()
            })
        })
        .unwrap_or(0);
    let end = segments
        .iter()
        .filter(|s| s.p_type == PT_LOAD)
        .map(|s| s.p_vaddr.saturating_add(s.p_memsz))
        .max()
        .unwrap_or(0);
    let page = PAGE_SIZE as u64;
    ProgramKind::Linux(LinuxImage {
        phdr,
        phnum: if phdr == 0 { 0 } else { phnum },
        brk_start: end.saturating_add(page - 1) & !(page - 1),
    })
}

fn word(bytes: &[u8], at: usize) -> Option<usize> {
    let b = bytes.get(at..at + 4)?;
    Some(u32::from_le_bytes(b.try_into().ok()?) as usize)
}

/// Whether the notes in `notes` (one `PT_NOTE` segment) include the NeoOS
/// note: owner `NeoOS`, type [`NOTE_TYPE`].
pub fn has_neoos_note(mut notes: &[u8]) -> bool {
    while let (Some(namesz), Some(descsz), Some(kind)) =
        (word(notes, 0), word(notes, 4), word(notes, 8))
    {
        let name_end = 12usize.saturating_add(namesz);
        let Some(name) = notes.get(12..name_end) else {
            return false;
        };
        if name == NOTE_NAME && kind == NOTE_TYPE as usize {
            return true;
        }
        let next = name_end
            .checked_next_multiple_of(4)
            .and_then(|n| n.checked_add(descsz))
            .and_then(|n| n.checked_next_multiple_of(4));
        match next.and_then(|n| notes.get(n..)) {
            Some(rest) => notes = rest,
            None => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn note(name: &[u8], kind: u32, desc: &[u8]) -> Vec<u8> {
        let mut n = Vec::new();
        n.extend_from_slice(&(name.len() as u32).to_le_bytes());
        n.extend_from_slice(&(desc.len() as u32).to_le_bytes());
        n.extend_from_slice(&kind.to_le_bytes());
        n.extend_from_slice(name);
        n.resize(n.len().next_multiple_of(4), 0);
        n.extend_from_slice(desc);
        n.resize(n.len().next_multiple_of(4), 0);
        n
    }

    #[test]
    fn the_neoos_note_is_found_after_other_notes() {
        let mut notes = note(b"GNU\0", 3, &[0xab; 20]);
        notes.extend(note(b"NeoOS\0", 1, &1u32.to_le_bytes()));
        assert!(has_neoos_note(&notes));
    }

    #[test]
    fn other_owners_types_and_truncated_notes_are_not_the_neoos_note() {
        assert!(!has_neoos_note(&note(b"GNU\0", 1, &[1, 0, 0, 0])));
        assert!(!has_neoos_note(&note(b"NeoOS\0", 2, &[1, 0, 0, 0])));
        assert!(!has_neoos_note(&note(b"NeoOSX\0", 1, &[1, 0, 0, 0])));
        let whole = note(b"NeoOS\0", 1, &[1, 0, 0, 0]);
        assert!(!has_neoos_note(&whole[..14]));
        assert!(!has_neoos_note(&[]));
        let mut huge = note(b"GNU\0", 3, &[]);
        huge[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(!has_neoos_note(&huge), "an overlong size ends the search");
        let mut huge_name = note(b"GNU\0", 3, &[]);
        huge_name[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(
            !has_neoos_note(&huge_name),
            "an overlong name ends the search"
        );
    }
}
