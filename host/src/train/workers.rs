//! Where a phase trains: this process's devices and, on several machines, the link to
//! the others.

use std::time::Duration;

use super::collective::Link;

/// How long a peer waits for the others by default (`--peer-timeout`): long enough for
/// the first peer of a node to validate and checkpoint between epochs while the others
/// wait, short enough that a hung machine is noticed.
pub const DEFAULT_PEER_TIMEOUT: Duration = Duration::from_secs(600);

/// The peers of a phase on this process, and the nodes they sum with.
///
/// Invariant: at least one device.
#[derive(Clone, Debug)]
pub struct Workers<D> {
    devices: Vec<D>,
    link: Option<Link>,
    timeout: Duration,
}

impl<D> Workers<D> {
    /// One peer on `device`, alone.
    pub fn one(device: D) -> Workers<D> {
        Workers { devices: vec![device], link: None, timeout: DEFAULT_PEER_TIMEOUT }
    }

    /// A peer on each of `devices` (one device may be named several times: its peers
    /// share it), summing with the other nodes through `link` when there is one; a peer
    /// waits at most `timeout` for the others.
    pub fn new(devices: Vec<D>, link: Option<Link>, timeout: Duration) -> anyhow::Result<Workers<D>> {
        anyhow::ensure!(!devices.is_empty(), "training needs at least one device");
        Ok(Workers { devices, link, timeout })
    }

    /// The first device: where the model is built and the first peer trains.
    pub fn device(&self) -> &D {
        &self.devices[0]
    }

    pub fn devices(&self) -> &[D] {
        &self.devices
    }

    pub fn link(&self) -> Option<&Link> {
        self.link.as_ref()
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Ends this process's part in a run on several nodes: waits until every node has
    /// finished training (a node that fails in its last phase still stops the others).
    pub fn finish(self) -> anyhow::Result<()> {
        match self.link {
            Some(link) => link.finish().map_err(|e| anyhow::anyhow!("{e}")),
            None => Ok(()),
        }
    }
}
