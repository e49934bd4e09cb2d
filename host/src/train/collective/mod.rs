//! Summing gradients across data-parallel peers: threads of one process ([`local`]),
//! processes on several machines ([`Link`], through the [`orchestrator`]), or both
//! ([`local_over`]: a node's threads sum first, then the nodes).
//!
//! Every peer calls [`Collective::all_reduce_sum`] once per step with a buffer of the
//! same length (its flattened gradients); each gets back the sum over all peers, added
//! in rank order, so every peer holds bit-identical values. A peer that leaves (its
//! thread ends or panics, its process dies or its connection breaks) or does not arrive
//! within the timeout makes every other peer's call fail with a [`PeerError`] naming
//! it, instead of hanging.

mod local;
mod node;
pub mod orchestrator;

pub use local::{Local, local, local_over};
pub use node::{Link, NodePhase};

/// Why an all-reduce failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerError(pub String);

impl std::fmt::Display for PeerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PeerError {}

/// One peer's side of the gradient sum.
pub trait Collective: Send {
    /// This peer's rank, `0..peers`: its shard of each batch.
    fn rank(&self) -> usize;
    /// How many peers sum.
    fn peers(&self) -> usize;
    /// Called once by every peer before its first sum: `what` describes the phase as
    /// this peer trains it (its name, the epoch it starts from, the batch, the data and
    /// the gradient layout) and `values` is the length of every buffer it will sum.
    /// Peers that disagree (another config, data set or resume point on another node)
    /// are refused with each one's description. Peers of one process cannot disagree,
    /// so only nodes check.
    fn agree(&mut self, what: &str, values: usize) -> Result<(), PeerError> {
        let _ = (what, values);
        Ok(())
    }
    /// Replaces `values` with their sum over every peer (added in rank order).
    fn all_reduce_sum(&mut self, values: &mut [f32]) -> Result<(), PeerError>;
}

impl<C: Collective + ?Sized> Collective for Box<C> {
    fn rank(&self) -> usize {
        (**self).rank()
    }
    fn peers(&self) -> usize {
        (**self).peers()
    }
    fn agree(&mut self, what: &str, values: usize) -> Result<(), PeerError> {
        (**self).agree(what, values)
    }
    fn all_reduce_sum(&mut self, values: &mut [f32]) -> Result<(), PeerError> {
        (**self).all_reduce_sum(values)
    }
}

/// What the tests of the peers' sums share.
#[cfg(test)]
mod testkit {
    use super::{Collective, PeerError};

    /// Peer `rank`'s buffer at `step`: values whose sum in rank order is not the sum in
    /// another order, so the order is checked too.
    pub fn buffer(rank: usize, step: usize) -> Vec<f32> {
        (0..5).map(|i| (1.0 + rank as f32 * 1e-7) * 10f32.powi(i - 2) + step as f32 * 0.1).collect()
    }

    /// `steps` steps through `peer` after agreeing on the phase `what`: the sums.
    pub fn steps(peer: &mut impl Collective, what: &str, steps: usize) -> Result<Vec<Vec<f32>>, PeerError> {
        peer.agree(what, 5)?;
        (0..steps)
            .map(|step| {
                let mut values = buffer(peer.rank(), step);
                peer.all_reduce_sum(&mut values)?;
                Ok(values)
            })
            .collect()
    }
}
