//! Where training runs: `--device`, and the nodes of a run on several machines.

use anyhow::bail;
use clap::Args;

use crate::backend::{Compute, CpuBackend, DeviceSpec};
use crate::train::nodes::Nodes;
use crate::train::workers::DEFAULT_PEER_TIMEOUT;

/// Where to run.
#[derive(Args, Clone, Debug)]
pub struct DeviceArgs {
    /// `cpu`, `cuda`, `cuda:N`, or `cuda:N,M,…` to split each batch over several GPUs
    /// (CUDA needs the `cuda` feature).
    #[arg(long, default_value = "cpu")]
    pub device: DeviceSpec,
    /// The CPU backend: flex trains these nets 16-34x faster than ndarray (docs/benchmarks.md).
    #[arg(long, value_enum, default_value_t = CpuBackend::Flex)]
    pub backend: CpuBackend,
}

impl DeviceArgs {
    /// These options as the library takes them.
    pub fn compute(&self) -> Compute {
        Compute { device: self.device.clone(), backend: self.backend }
    }
}

/// Training on several machines: every node runs the same `fitnets train` command with
/// its own `--node` and run directory, and one `fitnets orchestrator` sums their
/// gradients (docs/scale-out.md).
#[derive(Args, Clone, Debug)]
pub struct NodeArgs {
    /// Machines that train together (each with the devices of --device; every node must
    /// have the same number). Each global batch is cut into one contiguous shard per
    /// device, in node order.
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = node_count)]
    pub nodes: usize,
    /// This machine's number, 0 to --nodes minus 1.
    #[arg(long, value_name = "R")]
    pub node: Option<usize>,
    /// Where `fitnets orchestrator` listens (HOST:PORT), with --nodes 2 or more.
    #[arg(long, value_name = "HOST:PORT")]
    pub orchestrator: Option<String>,
    /// Seconds a peer waits for the others (to join, or at a step) before it stops the
    /// run with an error naming the one that did not come.
    #[arg(long, default_value_t = DEFAULT_PEER_TIMEOUT.as_secs(), value_name = "SECONDS", value_parser = peer_timeout)]
    pub peer_timeout: u64,
}

impl NodeArgs {
    /// These options as the library takes them (checked by [`Nodes::check`]).
    pub fn nodes(&self) -> Nodes {
        Nodes {
            count: self.nodes,
            node: self.node,
            orchestrator: self.orchestrator.clone(),
            timeout: std::time::Duration::from_secs(self.peer_timeout),
        }
    }
}

/// The largest --nodes (a bound on what one orchestrator serves).
pub const MAX_NODES: usize = 1024;

pub fn node_count(text: &str) -> anyhow::Result<usize> {
    match text.parse::<usize>() {
        Ok(n @ 1..=MAX_NODES) => Ok(n),
        _ => bail!("expected a number of machines from 1 to {MAX_NODES}"),
    }
}

/// A peer timeout in seconds: at least 1, at most a day.
pub fn peer_timeout(text: &str) -> anyhow::Result<u64> {
    match text.parse::<u64>() {
        Ok(n @ 1..=86_400) => Ok(n),
        _ => bail!("expected whole seconds from 1 to 86400"),
    }
}
