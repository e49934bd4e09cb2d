//! `cargo xtask bench --profile`: where the instructions of one inference go, summed per
//! function of the firmware from the plugin's per-address counts.

use std::fmt::Write as _;

use anyhow::Context as _;

use crate::elf::{self, STT_FUNC};

/// Executed instructions of one function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hot {
    pub function: String,
    pub start: u32,
    pub instructions: u64,
}

/// The plugin's `ADDR COUNT` lines (hexadecimal address, decimal count).
pub fn parse(text: &str) -> anyhow::Result<Vec<(u32, u64)>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let mut parts = line.split_whitespace();
            let addr = parts.next().and_then(|a| u32::from_str_radix(a, 16).ok());
            let count = parts.next().and_then(|c| c.parse().ok());
            addr.zip(count).with_context(|| format!("unreadable profile line `{line}`"))
        })
        .collect()
}

/// Sums `counts` per function of `elf`, most executed first; addresses outside every
/// function are summed as `?`.
pub fn by_function(elf_bytes: &[u8], counts: &[(u32, u64)]) -> anyhow::Result<Vec<Hot>> {
    let mut functions: Vec<(u32, u32, &str)> = elf::symbols(elf_bytes)
        .context("the firmware has no readable symbol table")?
        .into_iter()
        .filter(|s| s.kind == STT_FUNC && s.size > 0)
        .map(|s| (s.start(), s.size, s.name))
        .collect();
    functions.sort_unstable();
    let mut hot: Vec<Hot> = Vec::new();
    for &(addr, count) in counts {
        let at = functions.partition_point(|&(start, ..)| start <= addr);
        let (function, start) = match at.checked_sub(1).map(|i| functions[i]) {
            Some((start, size, name)) if addr - start < size => (demangle(name), start),
            _ => ("?".to_string(), 0),
        };
        match hot.iter_mut().find(|h| h.start == start && h.function == function) {
            Some(h) => h.instructions += count,
            None => hot.push(Hot { function, start, instructions: count }),
        }
    }
    hot.sort_by(|a, b| b.instructions.cmp(&a.instructions).then(a.start.cmp(&b.start)));
    Ok(hot)
}

/// A Rust symbol's path without its hash (`_ZN4core3fmt5write17h…E` → `core::fmt::write`),
/// or the name as it is.
pub fn demangle(name: &str) -> String {
    let Some(mut rest) = name.strip_prefix("_ZN") else { return name.to_string() };
    let mut parts = Vec::new();
    while let Some(digits) = rest.find(|c: char| !c.is_ascii_digit()).filter(|&d| d > 0) {
        let Ok(len) = rest[..digits].parse::<usize>() else { break };
        let Some(part) = rest.get(digits..digits + len) else { break };
        parts.push(part);
        rest = &rest[digits + len..];
    }
    if rest != "E" || parts.is_empty() {
        return name.to_string();
    }
    if parts.last().is_some_and(|h| h.len() == 17 && h.starts_with('h')) {
        parts.pop();
    }
    let escapes = [
        ("$LT$", "<"),
        ("$GT$", ">"),
        ("$u20$", " "),
        ("$u27$", "'"),
        ("$u7b$", "{"),
        ("$u7d$", "}"),
        ("$C$", ","),
        ("$RF$", "&"),
        ("$BP$", "*"),
        ("..", "::"),
    ];
    // A component that starts with an escape gets a `_` in front of it.
    let path =
        parts.iter().map(|p| p.strip_prefix('_').filter(|p| p.starts_with('$')).unwrap_or(p)).collect::<Vec<_>>();
    escapes.iter().fold(path.join("::"), |path, (from, to)| path.replace(from, to))
}

/// The table: the `rows` most executed functions and their share of `total`.
pub fn table(hot: &[Hot], total: u64, rows: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{:>12} {:>6}  function", "instructions", "share");
    for h in hot.iter().take(rows) {
        let share = 100.0 * h.instructions as f64 / total.max(1) as f64;
        let _ = writeln!(out, "{:>12} {share:>5.1}%  {} ({:#x})", h.instructions, h.function, h.start);
    }
    if hot.len() > rows {
        let rest: u64 = hot[rows..].iter().map(|h| h.instructions).sum();
        let share = 100.0 * rest as f64 / total.max(1) as f64;
        let _ = writeln!(out, "{rest:>12} {share:>5.1}%  {} other functions", hot.len() - rows);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_rust_names_lose_their_hash() {
        assert_eq!(
            demangle("_ZN14fitnets_shared3ops4fast4conv8channels17h0123456789abcdefE"),
            "fitnets_shared::ops::fast::conv::channels"
        );
        assert_eq!(
            demangle("_ZN4core3ptr23drop_in_place$LT$u8$GT$17h0123456789abcdefE"),
            "core::ptr::drop_in_place<u8>"
        );
        assert_eq!(
            demangle(
                "_ZN68_$LT$fitnets_shared..plan..Steps$u20$as$u20$core..iter..Iterator$GT$4next17h0123456789abcdefE"
            ),
            "<fitnets_shared::plan::Steps as core::iter::Iterator>::next"
        );
        assert_eq!(demangle("bench_region_start"), "bench_region_start");
        assert_eq!(demangle("_ZN3foo"), "_ZN3foo");
    }

    #[test]
    fn profile_lines_parse_and_bad_ones_are_named() {
        assert_eq!(parse("100 7\n1a2 30\n\n").unwrap(), vec![(0x100, 7), (0x1a2, 30)]);
        let error = parse("100 7\nzz\n").unwrap_err().to_string();
        assert!(error.contains("`zz`"), "{error}");
    }

    /// A minimal ELF: a symbol table of two functions and its string table.
    fn elf_with(functions: &[(&str, u32, u32)]) -> Vec<u8> {
        let mut strtab = vec![0u8];
        let mut symtab = vec![0u8; 16];
        for &(name, value, size) in functions {
            symtab.extend((strtab.len() as u32).to_le_bytes());
            symtab.extend(value.to_le_bytes());
            symtab.extend(size.to_le_bytes());
            symtab.extend([STT_FUNC, 0, 0, 0]);
            strtab.extend(name.as_bytes());
            strtab.push(0);
        }
        let header = 0x34;
        let (sym_at, str_at) = (header, header + symtab.len());
        let sections_at = str_at + strtab.len();
        let mut elf = vec![0u8; header];
        elf[..6].copy_from_slice(b"\x7fELF\x01\x01");
        elf[0x20..0x24].copy_from_slice(&(sections_at as u32).to_le_bytes());
        elf[0x2E..0x30].copy_from_slice(&40u16.to_le_bytes());
        elf[0x30..0x32].copy_from_slice(&3u16.to_le_bytes());
        elf.extend(&symtab);
        elf.extend(&strtab);
        let section = |kind: u32, offset: usize, size: usize, link: u32| {
            let mut h = vec![0u8; 40];
            h[4..8].copy_from_slice(&kind.to_le_bytes());
            h[16..20].copy_from_slice(&(offset as u32).to_le_bytes());
            h[20..24].copy_from_slice(&(size as u32).to_le_bytes());
            h[24..28].copy_from_slice(&link.to_le_bytes());
            h
        };
        elf.extend(section(0, 0, 0, 0));
        elf.extend(section(elf::SHT_SYMTAB, sym_at, symtab.len(), 2));
        elf.extend(section(3, str_at, strtab.len(), 0));
        elf
    }

    #[test]
    fn counts_are_summed_per_function_most_first() {
        // Thumb functions: odd symbol values.
        let elf = elf_with(&[("small", 0x101, 0x10), ("big", 0x201, 0x40)]);
        let counts = [(0x100, 5), (0x10e, 5), (0x200, 30), (0x23e, 1), (0x240, 4), (0x50, 2)];
        let hot = by_function(&elf, &counts).unwrap();
        let summary: Vec<(&str, u64)> = hot.iter().map(|h| (h.function.as_str(), h.instructions)).collect();
        assert_eq!(summary, vec![("big", 31), ("small", 10), ("?", 6)]);
        let table = table(&hot, 47, 2);
        assert!(table.contains("big (0x200)") && table.contains("1 other functions"), "{table}");
    }
}
