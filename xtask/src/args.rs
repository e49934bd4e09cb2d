//! A small command-line parser: `--name value` options and `--name` flags, taken one by
//! one, then a check that nothing is left over.

use std::str::FromStr;

use anyhow::{Context as _, bail};

/// The arguments of one subcommand.
#[derive(Debug)]
pub struct Args {
    command: &'static str,
    rest: Vec<String>,
}

impl Args {
    /// The arguments after `cargo xtask <command>`.
    pub fn new(command: &'static str, args: &[String]) -> Args {
        Args { command, rest: args.to_vec() }
    }

    /// The value after `--name`, if the option is there (also `--name=value`).
    pub fn value(&mut self, name: &str) -> anyhow::Result<Option<String>> {
        let prefix = format!("{name}=");
        if let Some(i) = self.rest.iter().position(|a| a.starts_with(&prefix)) {
            return Ok(Some(self.rest.remove(i)[prefix.len()..].to_string()));
        }
        let Some(i) = self.rest.iter().position(|a| a == name) else { return Ok(None) };
        if i + 1 >= self.rest.len() {
            bail!("`cargo xtask {}`: {name} needs a value", self.command);
        }
        self.rest.remove(i);
        Ok(Some(self.rest.remove(i)))
    }

    /// Whether the flag `--name` (an option without a value) is there.
    pub fn flag(&mut self, name: &str) -> bool {
        let Some(i) = self.rest.iter().position(|a| a == name) else { return false };
        self.rest.remove(i);
        true
    }

    /// The value after `--name`, parsed, or `default`.
    pub fn parsed<T: FromStr>(&mut self, name: &str, default: T) -> anyhow::Result<T>
    where
        T::Err: std::error::Error + Send + Sync + 'static,
    {
        match self.value(name)? {
            Some(text) => text.parse().with_context(|| format!("{name} {text}")),
            None => Ok(default),
        }
    }

    /// Fails on anything not taken yet.
    pub fn finish(self) -> anyhow::Result<()> {
        if let Some(arg) = self.rest.first() {
            bail!("`cargo xtask {}` does not take `{arg}` (see `cargo xtask help`)", self.command);
        }
        Ok(())
    }
}
