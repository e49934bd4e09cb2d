//! `fitnets orchestrator`: serves one training run on several machines.

use std::net::TcpListener;

use anyhow::Context as _;
use clap::Args;

use crate::train::collective::orchestrator::serve;

/// Arguments of `fitnets orchestrator`.
#[derive(Args, Clone, Debug)]
pub struct OrchestratorArgs {
    /// The address to listen on, HOST:PORT (port 0 takes a free one and prints it).
    #[arg(long, default_value = "0.0.0.0:29500", value_name = "HOST:PORT")]
    pub listen: String,
    /// How many nodes train (their --nodes).
    #[arg(long, value_name = "N", value_parser = crate::cli::node_count)]
    pub nodes: usize,
    /// Seconds to wait for every node to connect, and for each node at each step,
    /// before the run stops with an error naming the node that did not come.
    #[arg(long, default_value_t = crate::train::workers::DEFAULT_PEER_TIMEOUT.as_secs(), value_name = "SECONDS", value_parser = crate::cli::peer_timeout)]
    pub peer_timeout: u64,
}

/// Listens, serves the run until every node has finished (or one fails), and prints
/// each node that joins and each phase.
pub fn orchestrator(args: &OrchestratorArgs) -> anyhow::Result<()> {
    let listener = TcpListener::bind(&args.listen).with_context(|| {
        format!("--listen {}: cannot listen there (give a free HOST:PORT of this machine)", args.listen)
    })?;
    let address = listener.local_addr().context("the listening address")?;
    eprintln!("orchestrator listening on {address}, waiting for {} nodes", args.nodes);
    let timeout = std::time::Duration::from_secs(args.peer_timeout);
    let summary =
        serve(&listener, args.nodes, timeout, &mut |line| eprintln!("{line}")).map_err(|e| anyhow::anyhow!("{e}"))?;
    let steps: u64 = summary.phases.iter().map(|(_, steps)| steps).sum();
    let phases = summary.phases.len();
    println!("{} nodes trained {phases} phase{}, {steps} steps", args.nodes, if phases == 1 { "" } else { "s" });
    Ok(())
}
