//! Just enough of a 32-bit little-endian ELF file for `size` (section sizes) and `bench`
//! (a symbol's address, the functions a profile is summed over): its section headers and
//! its symbol table.

/// One section header.
#[derive(Clone, Copy, Debug)]
pub struct Section {
    pub kind: u32,
    pub flags: u32,
    /// Where it is loaded.
    pub addr: u32,
    pub offset: usize,
    pub size: usize,
    /// For a symbol table: the index of its string table.
    pub link: usize,
}

pub const SHT_SYMTAB: u32 = 2;
pub const SHT_NOBITS: u32 = 8;
pub const SHF_WRITE: u32 = 1;
pub const SHF_ALLOC: u32 = 2;

/// The section headers, or `None` if `elf` is not a 32-bit little-endian ELF file or a
/// header lies outside it.
pub fn sections(elf: &[u8]) -> Option<Vec<Section>> {
    if elf.get(..6)? != b"\x7fELF\x01\x01" {
        return None;
    }
    let (offset, entry, count) =
        (u32_at(elf, 0x20)? as usize, u16_at(elf, 0x2E)? as usize, u16_at(elf, 0x30)? as usize);
    (0..count)
        .map(|i| {
            let h = offset + i * entry;
            Some(Section {
                kind: u32_at(elf, h + 4)?,
                flags: u32_at(elf, h + 8)?,
                addr: u32_at(elf, h + 12)?,
                offset: u32_at(elf, h + 16)? as usize,
                size: u32_at(elf, h + 20)? as usize,
                link: u32_at(elf, h + 24)? as usize,
            })
        })
        .collect()
}

/// One entry of the symbol table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Symbol<'a> {
    pub name: &'a str,
    /// For a Thumb function, the low bit is set; [`Symbol::start`] clears it.
    pub value: u32,
    pub size: u32,
    /// `STT_*`: the low 4 bits of `st_info`.
    pub kind: u8,
}

pub const STT_FUNC: u8 = 2;

impl Symbol<'_> {
    /// The address of the symbol's first byte.
    pub fn start(&self) -> u32 {
        if self.kind == STT_FUNC { self.value & !1 } else { self.value }
    }
}

/// Every symbol with a readable name, or `None` if `elf` is not a 32-bit little-endian
/// ELF file or has no symbol table.
pub fn symbols(elf: &[u8]) -> Option<Vec<Symbol<'_>>> {
    let sections = sections(elf)?;
    let symtab = sections.iter().find(|s| s.kind == SHT_SYMTAB)?;
    let strtab = sections.get(symtab.link)?;
    Some(
        (0..symtab.size / 16)
            .map(|i| symtab.offset + 16 * i)
            .filter_map(|s| {
                let start = strtab.offset + u32_at(elf, s)? as usize;
                let end = start + elf.get(start..)?.iter().position(|&b| b == 0)?;
                Some(Symbol {
                    name: std::str::from_utf8(elf.get(start..end)?).ok()?,
                    value: u32_at(elf, s + 4)?,
                    size: u32_at(elf, s + 8)?,
                    kind: elf.get(s + 12)? & 0xF,
                })
            })
            .collect(),
    )
}

/// The `len` bytes loaded at `addr`, from the allocated section with file contents that
/// holds them.
pub fn bytes_at(elf: &[u8], addr: u32, len: usize) -> Option<&[u8]> {
    let sections = sections(elf)?;
    let section = sections.iter().find(|s| {
        s.flags & SHF_ALLOC != 0 && s.kind != SHT_NOBITS && addr >= s.addr && (addr - s.addr) as usize + len <= s.size
    })?;
    let at = section.offset + (addr - section.addr) as usize;
    elf.get(at..at + len)
}

/// The value of the symbol `name` in the symbol table.
pub fn symbol(elf: &[u8], name: &str) -> Option<u32> {
    symbols(elf)?.into_iter().find(|s| s.name == name).map(|s| s.value)
}

fn u16_at(elf: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(elf.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(elf: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(elf.get(at..at + 4)?.try_into().ok()?))
}
