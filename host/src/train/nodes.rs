//! The machines of a run (`--nodes`, `--node`, `--orchestrator`, `--peer-timeout`):
//! every node runs the same training with its own run directory, and one orchestrator
//! sums their gradients (docs/scale-out.md).

use std::time::Duration;

use anyhow::bail;

use super::collective::Link;
use super::workers::DEFAULT_PEER_TIMEOUT;

/// This process's place among the machines of a run.
///
/// Invariant once [`Nodes::check`] passed: alone (`count` 1, no node, no orchestrator),
/// or `node < count` with an orchestrator's address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nodes {
    /// Machines that train together.
    pub count: usize,
    /// This machine's number.
    pub node: Option<usize>,
    /// Where the orchestrator listens (HOST:PORT).
    pub orchestrator: Option<String>,
    /// How long a peer waits for the others.
    pub timeout: Duration,
}

impl Default for Nodes {
    /// One machine alone.
    fn default() -> Nodes {
        Nodes { count: 1, node: None, orchestrator: None, timeout: DEFAULT_PEER_TIMEOUT }
    }
}

impl Nodes {
    /// Refuses a half-given or inconsistent setting, before any work.
    pub fn check(&self) -> anyhow::Result<()> {
        match (self.count, self.node, &self.orchestrator) {
            (1, None, None) => Ok(()),
            (1, _, _) => bail!("--node and --orchestrator are for training on several machines: add --nodes N"),
            (nodes, Some(node), Some(_)) if node < nodes => Ok(()),
            (nodes, Some(node), Some(_)) => {
                bail!("--node {node}: with --nodes {nodes} the nodes are 0 to {}", nodes - 1)
            }
            (nodes, _, _) => bail!(
                "--nodes {nodes} needs this machine's --node (0 to {}) and the --orchestrator HOST:PORT that \
                 `fitnets orchestrator --nodes {nodes}` listens on",
                nodes - 1
            ),
        }
    }

    /// Connects to the orchestrator when training on several machines.
    pub fn connect(&self) -> anyhow::Result<Option<Link>> {
        self.check()?;
        let (Some(node), Some(address)) = (self.node, &self.orchestrator) else { return Ok(None) };
        eprintln!("node {node} of {}: joining the orchestrator at {address}", self.count);
        Ok(Some(Link::connect(address, node, self.count, self.timeout).map_err(|e| anyhow::anyhow!("{e}"))?))
    }

    /// This node in a run's record: ", node R of N", or nothing alone.
    pub fn describe(&self) -> String {
        match self.node {
            Some(node) if self.count > 1 => format!(", node {node} of {}", self.count),
            _ => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Nodes;

    fn nodes(count: usize, node: Option<usize>, orchestrator: Option<&str>) -> Nodes {
        Nodes { count, node, orchestrator: orchestrator.map(String::from), ..Nodes::default() }
    }

    #[test]
    fn settings_are_whole_or_refused() {
        assert!(Nodes::default().check().is_ok());
        assert!(nodes(2, Some(1), Some("h:1")).check().is_ok());
        for (bad, says) in [
            (nodes(1, Some(0), None), "add --nodes N"),
            (nodes(2, Some(2), Some("h:1")), "the nodes are 0 to 1"),
            (nodes(2, None, Some("h:1")), "needs this machine's --node"),
            (nodes(2, Some(0), None), "--orchestrator HOST:PORT"),
        ] {
            let error = bad.check().unwrap_err().to_string();
            assert!(error.contains(says), "{bad:?}: {error}");
        }
        assert_eq!(nodes(3, Some(2), Some("h:1")).describe(), ", node 2 of 3");
        assert_eq!(Nodes::default().describe(), "");
    }
}
