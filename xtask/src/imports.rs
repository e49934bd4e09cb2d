//! The structure the imports draw: no two modules of a crate may use each other. A
//! module that needs another's items and is needed by it is one concern in two files, or
//! two concerns tangled; either way a newcomer has to learn both at once. And a crate
//! with a command layer (host: `cli`, `commands`) keeps it on top: no other module uses
//! it, so the library can be called with plain values, by a test, an example or another
//! command, without the command line's types.
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
