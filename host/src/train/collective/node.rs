//! A node's side of the sum across machines: one connection to the
//! [orchestrator](super::orchestrator) for the whole command, used by every training
//! phase in turn.
//!
//! The wire, all little-endian; the node speaks first, and every message gets one reply
//! once every node has sent its own:
//!
//! ```text
//! hello  node -> orchestrator   MAGIC, VERSION u32, node u32, nodes u32   (no reply)
//! phase  node -> orchestrator   PHASE u8, values u64, length u32, what (UTF-8)
//! step   node -> orchestrator   STEP u8, values f32s
//! bye    node -> orchestrator   BYE u8
//! reply  orchestrator -> node   OK u8, then for a step the sum (values f32s)
//! abort  orchestrator -> node   ABORT u8, length u32, the reason (UTF-8)
//! ```

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Collective, PeerError};

pub(super) const MAGIC: [u8; 4] = *b"FNCL";
pub(super) const VERSION: u32 = 1;
pub(super) const PHASE: u8 = 1;
pub(super) const STEP: u8 = 2;
pub(super) const BYE: u8 = 3;
pub(super) const OK: u8 = 0;
pub(super) const ABORT: u8 = 1;
/// The longest reason or phase description a message carries.
pub(super) const MAX_TEXT: usize = 64 * 1024;

/// How much longer than the orchestrator a node waits for a reply: the orchestrator
/// gives up on a silent node after the shared timeout and then tells the others.
const RELAY: Duration = Duration::from_secs(30);

/// This process's connection to the orchestrator; clones share it. Dropped without
/// [`Link::finish`] (the command failed), it closes, and the orchestrator stops the
/// other nodes.
#[derive(Clone, Debug)]
pub struct Link {
    connection: Arc<Mutex<Connection>>,
    node: usize,
    nodes: usize,
}

#[derive(Debug)]
struct Connection {
    stream: TcpStream,
    address: SocketAddr,
    /// Set once the connection failed: every later call fails with it.
    broken: Option<PeerError>,
}

impl Link {
    /// Connects to the orchestrator at `address` as node `node` of `nodes`, retrying
    /// for up to `timeout` (the orchestrator may start after the nodes). Replies are
    /// awaited for `timeout` plus the time the orchestrator takes to relay a failure.
    pub fn connect(address: &str, node: usize, nodes: usize, timeout: Duration) -> Result<Link, PeerError> {
        let resolved = address
            .to_socket_addrs()
            .map_err(|e| PeerError(format!("--orchestrator {address}: {e} (give HOST:PORT)")))?
            .next()
            .ok_or_else(|| PeerError(format!("--orchestrator {address} names no address")))?;
        let deadline = Instant::now() + timeout;
        let stream = loop {
            let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(100));
            match TcpStream::connect_timeout(&resolved, left.min(Duration::from_secs(5))) {
                Ok(stream) => break stream,
                Err(e) if Instant::now() >= deadline => {
                    return Err(PeerError(format!(
                        "node {node}: no orchestrator answered at {address} within {timeout:.0?} ({e}): start \
                         `fitnets orchestrator --listen {address} --nodes {nodes}` first"
                    )));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        };
        let setup = |e: std::io::Error| PeerError(format!("node {node}: setting up the connection to {address}: {e}"));
        stream.set_nodelay(true).map_err(setup)?;
        stream.set_read_timeout(Some(timeout + RELAY)).map_err(setup)?;
        let mut hello = MAGIC.to_vec();
        hello.extend(VERSION.to_le_bytes());
        hello.extend((node as u32).to_le_bytes());
        hello.extend((nodes as u32).to_le_bytes());
        let mut connection = Connection { stream, address: resolved, broken: None };
        connection.send(&hello, node)?;
        Ok(Link { connection: Arc::new(Mutex::new(connection)), node, nodes })
    }

    /// This node's number, `0..nodes`.
    pub fn node(&self) -> usize {
        self.node
    }

    /// How many nodes train.
    pub fn nodes(&self) -> usize {
        self.nodes
    }

    /// This node's side of one phase's sum.
    pub fn phase(&self) -> NodePhase {
        NodePhase { link: self.clone(), values: None }
    }

    /// Tells the orchestrator this node trains no more, and waits until every node has
    /// (so a node that fails later in its last phase still stops the others).
    pub fn finish(self) -> Result<(), PeerError> {
        self.exchange(&[BYE], &mut [])
    }

    /// Sends `message` and reads the reply into `reply` (`OK` then `reply.len()` bytes).
    fn exchange(&self, message: &[u8], reply: &mut [u8]) -> Result<(), PeerError> {
        let mut connection = self.connection.lock().map_err(|_| PeerError("a peer panicked while summing".into()))?;
        if let Some(why) = &connection.broken {
            return Err(why.clone());
        }
        let result = connection.send(message, self.node).and_then(|()| connection.receive(reply, self.node));
        if let Err(why) = &result {
            connection.broken = Some(why.clone());
        }
        result
    }
}

impl Connection {
    fn send(&mut self, message: &[u8], node: usize) -> Result<(), PeerError> {
        self.stream.write_all(message).map_err(|e| self.lost(node, e))
    }

    fn receive(&mut self, reply: &mut [u8], node: usize) -> Result<(), PeerError> {
        let mut status = [0u8];
        self.stream.read_exact(&mut status).map_err(|e| self.lost(node, e))?;
        match status[0] {
            OK => self.stream.read_exact(reply).map_err(|e| self.lost(node, e)),
            ABORT => {
                let mut length = [0u8; 4];
                self.stream.read_exact(&mut length).map_err(|e| self.lost(node, e))?;
                let mut why = vec![0u8; (u32::from_le_bytes(length) as usize).min(MAX_TEXT)];
                self.stream.read_exact(&mut why).map_err(|e| self.lost(node, e))?;
                Err(PeerError(format!("the orchestrator stopped every node: {}", String::from_utf8_lossy(&why))))
            }
            other => Err(PeerError(format!(
                "node {node}: {} answered {other:#04x}, which no fitnets orchestrator sends",
                self.address
            ))),
        }
    }

    fn lost(&self, node: usize, e: std::io::Error) -> PeerError {
        let why = match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => "stopped answering".to_string(),
            std::io::ErrorKind::UnexpectedEof => "closed the connection".to_string(),
            _ => format!("cannot be reached ({e})"),
        };
        PeerError(format!("node {node}: the orchestrator at {} {why}", self.address))
    }
}

/// A node's side of one phase: the [`Collective`] its training loop sums through.
#[derive(Debug)]
pub struct NodePhase {
    link: Link,
    /// The values per step, once agreed.
    values: Option<usize>,
}

impl Collective for NodePhase {
    fn rank(&self) -> usize {
        self.link.node
    }

    fn peers(&self) -> usize {
        self.link.nodes
    }

    fn agree(&mut self, what: &str, values: usize) -> Result<(), PeerError> {
        let what = &what.as_bytes()[..what.len().min(MAX_TEXT)];
        let mut message = vec![PHASE];
        message.extend((values as u64).to_le_bytes());
        message.extend((what.len() as u32).to_le_bytes());
        message.extend(what);
        self.link.exchange(&message, &mut [])?;
        self.values = Some(values);
        Ok(())
    }

    fn all_reduce_sum(&mut self, values: &mut [f32]) -> Result<(), PeerError> {
        if self.values != Some(values.len()) {
            return Err(PeerError(format!(
                "node {}: a step of {} values in a phase agreed at {:?}",
                self.link.node,
                values.len(),
                self.values
            )));
        }
        let mut message = Vec::with_capacity(1 + 4 * values.len());
        message.push(STEP);
        message.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        let mut sum = vec![0u8; 4 * values.len()];
        self.link.exchange(&message, &mut sum)?;
        for (v, four) in values.iter_mut().zip(sum.chunks_exact(4)) {
            *v = f32::from_le_bytes([four[0], four[1], four[2], four[3]]);
        }
        Ok(())
    }
}
