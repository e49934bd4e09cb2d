//! The structure the imports draw: no two modules of a crate may use each other. A
//! module that needs another's items and is needed by it is one concern in two files, or
//! two concerns tangled; either way a newcomer has to learn both at once.
//!
//! Modules are files (`a/b.rs` or `a/b/mod.rs` is `a::b`); a module uses another when
//! its code outside `#[cfg(test)]` names a path through `crate::`, `super::` or `self::`
//! that reaches it (the longest prefix of the path that is a module). Using an ancestor
//! is not counted: a child module naturally uses what its parent defines, and a parent
//! declares its children. Comments and doc links are not uses.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

/// The crates' source folders, checked.
const CRATES: [&str; 6] = ["host/src", "host/images/src", "shared/src", "firmware/src", "tests/src", "xtask/src"];

type Module = Vec<String>;

/// Fails with every pair of modules that use each other.
pub fn check(root: &Path) -> anyhow::Result<()> {
    let mut pairs = Vec::new();
    for dir in CRATES {
        let source = root.join(dir);
        if source.is_dir() {
            for (a, b) in mutual(&source)? {
                pairs.push(format!("{dir}: {} <-> {}", name(&a), name(&b)));
            }
        }
    }
    if !pairs.is_empty() {
        bail!(
            "{} pairs of modules use each other (move what both need into a module of its own, or merge them):\n  {}",
            pairs.len(),
            pairs.join("\n  ")
        );
    }
    eprintln!("no two modules use each other in {} crates", CRATES.len());
    Ok(())
}

fn name(module: &Module) -> String {
    if module.is_empty() { "crate".into() } else { module.join("::") }
}

/// The pairs of modules of the crate in `source` that use each other.
fn mutual(source: &Path) -> anyhow::Result<Vec<(Module, Module)>> {
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
    let mut uses: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (module, file) in &files {
        let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let targets = paths(&code_of(&text), module)
            .into_iter()
            .filter_map(|path| longest_module(&modules, &path))
            .filter(|target| target != module && !module.starts_with(target))
            .collect();
        uses.insert(module.clone(), targets);
    }
    let mut pairs = Vec::new();
    for (a, targets) in &uses {
        for b in targets {
            if a < b && uses.get(b).is_some_and(|back| back.contains(a)) {
                pairs.push((a.clone(), b.clone()));
            }
        }
    }
    Ok(pairs)
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

/// The code of a file: up to its first `#[cfg(test)]`, without comments.
fn code_of(text: &str) -> String {
    let text = text.find("#[cfg(test)]").map_or(text, |at| &text[..at]);
    text.lines().map(|line| line.find("//").map_or(line, |at| &line[..at])).collect::<Vec<_>>().join("\n")
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
            let close = code[end..].find('}').map_or(code.len(), |at| end + at);
            for member in code[end + 3..close].split(',') {
                let member = member.split(" as ").next().unwrap_or("").trim();
                if !member.is_empty() && member != "self" {
                    found.push(path.iter().cloned().chain(member.split("::").map(|s| s.trim().to_string())).collect());
                }
            }
            end = close;
        }
        found.push(path);
        i = end.max(i + 1);
    }
    found
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
    fn a_pair_that_uses_each_other_is_found_and_a_parent_is_not() {
        let dir = std::env::temp_dir().join(format!("fitnets-imports-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("k")).unwrap();
        std::fs::write(dir.join("lib.rs"), "mod k;\nmod solo;\n").unwrap();
        std::fs::write(dir.join("k/mod.rs"), "mod a;\nmod b;\npub use a::X;\n").unwrap();
        std::fs::write(dir.join("k/a.rs"), "use super::b::Y;\npub struct X;\n").unwrap();
        std::fs::write(dir.join("k/b.rs"), "use crate::k::a::X; // crate::solo\npub struct Y;\n").unwrap();
        std::fs::write(dir.join("solo.rs"), "use crate::k::X;\n#[cfg(test)]\nuse crate::k::a;\n").unwrap();
        let pairs = mutual(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(pairs, [(module("k::a"), module("k::b"))]);
    }
}
