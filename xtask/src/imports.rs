//! The structure the imports draw: no two modules of a crate may use each other. A
//! module that needs another's items and is needed by it is one concern in two files, or
//! two concerns tangled; either way a newcomer has to learn both at once. And a crate
//! with a command layer (host: `cli`, `commands`) keeps it on top: no other module uses
//! it, so the library can be called with plain values, by a test, an example or another
//! command, without the command line's types.
//!
//! Modules are files (`a/b.rs` or `a/b/mod.rs` is `a::b`); a module uses another when
//! its code outside `#[cfg(test)]` items names a path through `crate::`, `super::` or
//! `self::` that reaches it (the longest prefix of the path that is a module; `use`
//! groups are read to any depth). Using an ancestor is not counted: a child module
//! naturally uses what its parent defines, and a parent declares its children.
//! Comments, doc links, string and character literals are not uses.
//!
//! Not followed: paths without `crate::`, `super::` or `self::` (a module's own children,
//! and names the crate root re-exports): a `pub use cli::X` at the root, used as
//! `crate::X`, would pass. The root re-exports nothing of the command layer.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

/// The crates' source folders, checked.
const CRATES: [&str; 6] = ["host/src", "host/images/src", "shared/src", "firmware/src", "tests/src", "xtask/src"];

/// The crates with a command layer, and its top-level modules.
const COMMAND_LAYERS: [(&str, &[&str]); 1] = [("host/src", &["cli", "commands"])];

type Module = Vec<String>;

/// What each module of a crate uses.
type Uses = BTreeMap<Module, BTreeSet<Module>>;

/// Fails with every pair of modules that use each other, and every library module that
/// uses a command layer.
pub fn check(root: &Path) -> anyhow::Result<()> {
    let mut pairs = Vec::new();
    let mut upward = Vec::new();
    for dir in CRATES {
        let source = root.join(dir);
        if !source.is_dir() {
            continue;
        }
        let uses = uses(&source)?;
        for (a, b) in mutual(&uses) {
            pairs.push(format!("{dir}: {} <-> {}", name(&a), name(&b)));
        }
        for (_, layer) in COMMAND_LAYERS.iter().filter(|(crate_dir, _)| *crate_dir == dir) {
            for (a, b) in below(&uses, layer) {
                upward.push(format!("{dir}: {} uses {}", name(&a), name(&b)));
            }
        }
    }
    let mut problems = Vec::new();
    if !pairs.is_empty() {
        problems.push(format!(
            "{} pairs of modules use each other (move what both need into a module of its own, or merge them):\n  {}",
            pairs.len(),
            pairs.join("\n  ")
        ));
    }
    if !upward.is_empty() {
        problems.push(format!(
            "{} library modules use the command layer (give the library function plain values, and let the \
             command turn its options into them):\n  {}",
            upward.len(),
            upward.join("\n  ")
        ));
    }
    if !problems.is_empty() {
        bail!("{}", problems.join("\n"));
    }
    eprintln!("no two modules use each other in {} crates; no library module uses a command layer", CRATES.len());
    Ok(())
}

/// The uses `(a, b)` of a module `a` outside the command layer `layer` (top-level
/// modules) of a module `b` inside it.
fn below(uses: &Uses, layer: &[&str]) -> Vec<(Module, Module)> {
    let inside = |m: &Module| m.first().is_some_and(|top| layer.contains(&top.as_str()));
    let mut found = Vec::new();
    for (a, targets) in uses.iter().filter(|(a, _)| !inside(a)) {
        found.extend(targets.iter().filter(|b| inside(b)).map(|b| (a.clone(), b.clone())));
    }
    found
}

fn name(module: &Module) -> String {
    if module.is_empty() { "crate".into() } else { module.join("::") }
}

/// What each module of the crate in `source` uses.
fn uses(source: &Path) -> anyhow::Result<Uses> {
    let mut files = BTreeMap::new();
    for file in rust_files(source)? {
        let relative = file.strip_prefix(source).expect("below the source folder");
        // Binaries are crates of their own.
        if relative.starts_with("bin") {
            continue;
        }
        let mut module: Module = relative.with_extension("").iter().map(|p| p.to_string_lossy().into_owned()).collect();
        let own_folder = matches!(module.last().map(String::as_str), Some("mod" | "lib" | "main"));
        if own_folder {
            module.pop();
        }
        files.insert(module, file);
    }
    let modules: BTreeSet<Module> = files.keys().cloned().collect();
    let mut uses = Uses::new();
    for (module, file) in &files {
        let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let targets = paths(&code_of(&text), module)
            .into_iter()
            .filter_map(|path| longest_module(&modules, &path))
            .filter(|target| target != module && !module.starts_with(target))
            .collect();
        uses.insert(module.clone(), targets);
    }
    Ok(uses)
}

/// The pairs of modules that use each other.
fn mutual(uses: &Uses) -> Vec<(Module, Module)> {
    let mut pairs = Vec::new();
    for (a, targets) in uses {
        for b in targets {
            if a < b && uses.get(b).is_some_and(|back| back.contains(a)) {
                pairs.push((a.clone(), b.clone()));
            }
        }
    }
    pairs
}

fn rust_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            files.extend(rust_files(&path)?);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    Ok(files)
}

/// The code of a file without its comments, string and character literals (blanked,
/// so that a path in a message or a comment is not a use) and without the items marked
/// `#[cfg(test)]` (each up to its `;` or its closing brace).
fn code_of(text: &str) -> String {
    let code = blank_literals(text);
    let mut kept = String::with_capacity(code.len());
    let mut rest = code.as_str();
    while let Some(at) = rest.find("#[cfg(test)]") {
        kept.push_str(&rest[..at]);
        rest = &rest[at + "#[cfg(test)]".len()..];
        rest = &rest[item_len(rest)..];
    }
    kept.push_str(rest);
    kept
}

/// The length of the item at the start of `code`: up to its first `;` outside braces, or
/// to the brace that closes its first block.
fn item_len(code: &str) -> usize {
    block_len(code, true)
}

/// The length of `code` up to the brace that closes its first block (or, with
/// `semicolon_ends`, up to a `;` before any block opens).
fn block_len(code: &str, semicolon_ends: bool) -> usize {
    let mut depth = 0usize;
    for (at, c) in code.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth <= 1 => return at + 1,
            '}' => depth -= 1,
            ';' if semicolon_ends && depth == 0 => return at + 1,
            _ => {}
        }
    }
    code.len()
}

/// `text` with every comment, string literal (raw ones included) and character literal
/// replaced by spaces; line breaks are kept.
fn blank_literals(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |out: &mut String, run: &[char]| {
        out.extend(run.iter().map(|&c| if c == '\n' { '\n' } else { ' ' }));
    };
    let mut i = 0;
    while i < chars.len() {
        let next = |k: usize| chars.get(i + k).copied();
        let end = match chars[i] {
            '/' if next(1) == Some('/') => (i..chars.len()).find(|&j| chars[j] == '\n').unwrap_or(chars.len()),
            '/' if next(1) == Some('*') => {
                let mut depth = 0usize;
                let mut j = i;
                loop {
                    match (chars.get(j), chars.get(j + 1)) {
                        (Some('/'), Some('*')) => (depth, j) = (depth + 1, j + 2),
                        (Some('*'), Some('/')) if depth == 1 => break j + 2,
                        (Some('*'), Some('/')) => (depth, j) = (depth - 1, j + 2),
                        (Some(_), _) => j += 1,
                        (None, _) => break chars.len(),
                    }
                }
            }
            'r' if (next(1) == Some('"') || next(1) == Some('#'))
                && (i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_')) =>
            {
                let hashes = chars[i + 1..].iter().take_while(|&&c| c == '#').count();
                if chars.get(i + 1 + hashes) != Some(&'"') {
                    out.push(chars[i]);
                    i += 1;
                    continue;
                }
                let close: Vec<char> = std::iter::once('"').chain(std::iter::repeat_n('#', hashes)).collect();
                let body = i + 2 + hashes;
                (body..chars.len()).find(|&j| chars[j..].starts_with(&close)).map_or(chars.len(), |j| j + close.len())
            }
            '"' => {
                let mut j = i + 1;
                while j < chars.len() && chars[j] != '"' {
                    j += if chars[j] == '\\' { 2 } else { 1 };
                }
                (j + 1).min(chars.len())
            }
            // A character literal ('x', '\n', '\u{..}'); a lifetime ('a) has no closing quote.
            '\'' if next(1) == Some('\\') => {
                (i + 2..chars.len()).find(|&j| chars[j] == '\'').map_or(chars.len(), |j| j + 1)
            }
            '\'' if next(2) == Some('\'') => i + 3,
            c => {
                out.push(c);
                i += 1;
                continue;
            }
        };
        blank(&mut out, &chars[i..end]);
        i = end;
    }
    out
}

/// Every path through `crate::`, `super::` or `self::` in `code`, made absolute from
/// `module`; a `use` group (`a::{b, c::d}`) gives the group's own path and each member.
fn paths(code: &str, module: &Module) -> Vec<Module> {
    let mut found = Vec::new();
    let bytes = code.as_bytes();
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut i = 0;
    while i < bytes.len() {
        let starts = ["crate", "super", "self"].into_iter().find(|head| bytes[i..].starts_with(head.as_bytes()));
        let Some(head) = starts.filter(|_| i == 0 || !word(bytes[i - 1])) else {
            i += 1;
            continue;
        };
        // The path: words joined by `::`.
        let mut end = i + head.len();
        let mut segments = Vec::new();
        while bytes[end..].starts_with(b"::") {
            let start = end + 2;
            let stop = start + bytes[start..].iter().take_while(|&&b| word(b)).count();
            if stop == start {
                break;
            }
            segments.push(code[start..stop].to_string());
            end = stop;
        }
        let mut base: Module = match head {
            "crate" => Vec::new(),
            "self" => module.clone(),
            _ => module[..module.len().saturating_sub(1)].to_vec(),
        };
        let mut segments = segments.into_iter().peekable();
        while segments.peek().is_some_and(|s| s == "super") {
            segments.next();
            base.pop();
        }
        let path: Module = base.into_iter().chain(segments).collect();
        if bytes[end..].starts_with(b"::{") {
            let close = end + 2 + block_len(&code[end + 2..], false);
            group(&path, &code[end + 3..close.saturating_sub(1).max(end + 3)], &mut found);
            end = close;
        }
        found.push(path);
        i = end.max(i + 1);
    }
    found
}

/// The members of a `use` group (the text between its braces) below `prefix`, nested
/// groups included: `a, b::c, d::{e, f::{g}}, h as i, self`.
fn group(prefix: &Module, members: &str, found: &mut Vec<Module>) {
    let mut depth = 0usize;
    let mut start = 0;
    let mut parts = Vec::new();
    for (at, c) in members.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&members[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    parts.push(&members[start..]);
    for part in parts {
        let part = part.trim();
        let (head, inner) = match part.find("::{") {
            Some(at) => (&part[..at], Some(&part[at + 3..part.rfind('}').unwrap_or(part.len()).max(at + 3)])),
            None => (part.split(" as ").next().unwrap_or("").trim(), None),
        };
        if head.is_empty() || head == "self" || head == "*" {
            continue;
        }
        let path: Module = prefix.iter().cloned().chain(head.split("::").map(|s| s.trim().to_string())).collect();
        if let Some(inner) = inner {
            group(&path, inner, found);
        }
        found.push(path);
    }
}

/// The longest prefix of `path` that is a module of the crate.
fn longest_module(modules: &BTreeSet<Module>, path: &Module) -> Option<Module> {
    (0..=path.len()).rev().map(|n| path[..n].to_vec()).find(|prefix| modules.contains(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(path: &str) -> Module {
        path.split("::").filter(|s| !s.is_empty()).map(String::from).collect()
    }

    #[test]
    fn paths_are_resolved_from_the_module() {
        let found = paths(
            "use super::conv::{ConvGeometry, matmul_rows};\nuse crate::{a, b::c};\nlet x = self::d::e();\n// crate::f",
            &module("kernels::unrolled"),
        );
        let found: Vec<String> = found.iter().map(|m| m.join("::")).collect();
        assert_eq!(
            found,
            [
                "kernels::conv::ConvGeometry",
                "kernels::conv::matmul_rows",
                "kernels::conv",
                "a",
                "b::c",
                "",
                "kernels::unrolled::d::e",
                "f",
            ]
        );
    }

    #[test]
    fn nested_groups_are_read_and_literals_comments_and_test_items_are_not() {
        let code = code_of(
            "use crate::{data::{A, b::{C}}, cli::X as Y};\n\
             let m = \"crate::fake\"; let r = r#\"crate::raw\"#; let c = '\"'; let q = '\\'';\n\
             /* crate::block /* nested */ crate::still */ fn f<'a>(x: &'a str) {}\n\
             #[cfg(test)]\nfn helper() { crate::only_tests::x(); }\n\
             #[cfg(test)]\nuse crate::test_use;\n\
             fn g() { crate::after::h() }\n",
        );
        let found: Vec<String> = paths(&code, &module("m")).iter().map(|m| m.join("::")).collect();
        assert_eq!(found, ["data::A", "data::b::C", "data::b", "data", "cli::X", "", "after::h"]);
    }

    #[test]
    fn a_pair_that_uses_each_other_is_found_and_a_parent_is_not() {
        let dir = std::env::temp_dir().join(format!("fitnets-imports-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("k")).unwrap();
        std::fs::write(dir.join("lib.rs"), "mod k;\nmod solo;\n").unwrap();
        std::fs::write(dir.join("k/mod.rs"), "mod a;\nmod b;\npub use a::X;\n").unwrap();
        std::fs::write(dir.join("k/a.rs"), "use super::b::Y;\npub struct X;\n").unwrap();
        std::fs::write(dir.join("k/b.rs"), "use crate::k::a::X; // crate::solo\npub struct Y;\n").unwrap();
        std::fs::write(dir.join("solo.rs"), "use crate::k::X;\n#[cfg(test)]\nuse crate::k::a;\n").unwrap();
        let pairs = mutual(&uses(&dir).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(pairs, [(module("k::a"), module("k::b"))]);
    }

    #[test]
    fn a_library_module_that_uses_the_command_layer_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        std::fs::create_dir_all(dir.join("commands")).unwrap();
        std::fs::write(dir.join("lib.rs"), "pub mod cli;\npub mod commands;\npub mod data;\npub mod fit;\n").unwrap();
        std::fs::write(dir.join("cli.rs"), "use crate::data::Spec;\npub struct Args;\n").unwrap();
        std::fs::write(dir.join("commands/mod.rs"), "pub mod fit;\n").unwrap();
        std::fs::write(dir.join("commands/fit.rs"), "use crate::cli::Args;\nuse crate::fit::search;\n").unwrap();
        std::fs::write(dir.join("data.rs"), "pub struct Spec;\n/// [`crate::cli::Args`]\n").unwrap();
        std::fs::write(dir.join("fit.rs"), "use crate::data::Spec;\nfn f() { crate::commands::fit::g() }\n").unwrap();
        let found = below(&uses(dir).unwrap(), &["cli", "commands"]);
        assert_eq!(found, [(module("fit"), module("commands::fit"))]);
    }
}
