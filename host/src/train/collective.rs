//! Summing gradients across data-parallel peers: threads of one process ([`local`]) or
//! processes on several machines through a coordinator ([`serve`], [`Tcp::join`]).
//!
//! Every peer calls [`Collective::all_reduce_sum`] once per step with a buffer of the
//! same length (its flattened gradients); each gets back the sum over all peers, added
//! in rank order, so every peer holds bit-identical values and a run with threads
//! equals one with processes. A peer that leaves (its thread ends or panics, its
//! process dies or its connection breaks) or does not arrive within the timeout makes
//! every other peer's call fail with a [`PeerError`] naming it, instead of hanging.
//!
//! The wire between a process and the coordinator, all little-endian:
//!
//! ```text
//! hello     peer -> coordinator   MAGIC, rank u32, peers u32, values u64
//! step      peer -> coordinator   values f32s
//! sum       coordinator -> peer   STATUS_OK u8, values f32s
//! abort     coordinator -> peer   STATUS_ABORT u8, length u32, the reason (UTF-8)
//! ```

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

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
    /// This peer's rank, `0..peers`.
    fn rank(&self) -> usize;
    /// How many peers sum.
    fn peers(&self) -> usize;
    /// Replaces `values` with their sum over every peer (added in rank order).
    fn all_reduce_sum(&mut self, values: &mut [f32]) -> Result<(), PeerError>;
}

/// What the threads of [`local`] share.
#[derive(Debug)]
struct Round {
    /// Each peer's buffer of the step under way, by rank.
    arrived: Vec<Option<Vec<f32>>>,
    /// The sum of the last completed step, and its number.
    sum: Arc<Vec<f32>>,
    step: u64,
    /// Set once a peer has left or failed: every call fails with it from then on.
    failed: Option<String>,
}

#[derive(Debug)]
struct Shared {
    round: Mutex<Round>,
    changed: Condvar,
    timeout: Duration,
}

/// A peer of [`local`]: one thread's side.
#[derive(Debug)]
pub struct Local {
    shared: Arc<Shared>,
    rank: usize,
    peers: usize,
    /// The steps this peer has completed.
    step: u64,
}

/// `peers` peers for threads of this process; a peer that waits longer than `timeout`
/// for the others fails, and one that is dropped (its thread ended) fails the others.
pub fn local(peers: usize, timeout: Duration) -> Vec<Local> {
    let shared = Arc::new(Shared {
        round: Mutex::new(Round { arrived: vec![None; peers], sum: Arc::new(Vec::new()), step: 0, failed: None }),
        changed: Condvar::new(),
        timeout,
    });
    (0..peers).map(|rank| Local { shared: shared.clone(), rank, peers, step: 0 }).collect()
}

impl Collective for Local {
    fn rank(&self) -> usize {
        self.rank
    }

    fn peers(&self) -> usize {
        self.peers
    }

    fn all_reduce_sum(&mut self, values: &mut [f32]) -> Result<(), PeerError> {
        let deadline = Instant::now() + self.shared.timeout;
        let mut round = self.shared.round.lock().map_err(|_| PeerError("a peer panicked while summing".into()))?;
        if let Some(why) = &round.failed {
            return Err(PeerError(why.clone()));
        }
        round.arrived[self.rank] = Some(values.to_vec());
        if round.arrived.iter().all(Option::is_some) {
            let mut sum = vec![0.0f32; values.len()];
            for (rank, buffer) in round.arrived.iter_mut().enumerate() {
                let buffer = buffer.take().unwrap_or_default();
                if buffer.len() != sum.len() {
                    let why = format!("peer {rank} summed {} values, peer {} {}", buffer.len(), self.rank, sum.len());
                    round.failed = Some(why.clone());
                    self.shared.changed.notify_all();
                    return Err(PeerError(why));
                }
                for (s, v) in sum.iter_mut().zip(&buffer) {
                    *s += v;
                }
            }
            round.sum = Arc::new(sum);
            round.step += 1;
            self.shared.changed.notify_all();
        }
        let target = self.step + 1;
        while round.step < target {
            if let Some(why) = &round.failed {
                return Err(PeerError(why.clone()));
            }
            let now = Instant::now();
            if now >= deadline {
                let missing: Vec<String> = (0..self.peers)
                    .filter(|&r| round.arrived[r].is_none() && r != self.rank)
                    .map(|r| r.to_string())
                    .collect();
                let why = format!(
                    "peer(s) {} did not reach step {target} within {:.0?}",
                    missing.join(", "),
                    self.shared.timeout
                );
                round.failed = Some(why.clone());
                self.shared.changed.notify_all();
                return Err(PeerError(why));
            }
            round = self
                .shared
                .changed
                .wait_timeout(round, deadline - now)
                .map_err(|_| PeerError("a peer panicked while summing".into()))?
                .0;
        }
        values.copy_from_slice(&round.sum);
        self.step = target;
        Ok(())
    }
}

impl Drop for Local {
    /// A peer that leaves (its work done, or its thread unwinding) ends the sum for the
    /// others: a later step would wait for it forever.
    fn drop(&mut self) {
        if let Ok(mut round) = self.shared.round.lock() {
            if round.failed.is_none() {
                round.failed = Some(format!("peer {} left after step {}", self.rank, self.step));
            }
            self.shared.changed.notify_all();
        }
    }
}

const MAGIC: [u8; 4] = *b"FNCL";
const STATUS_OK: u8 = 0;
const STATUS_ABORT: u8 = 1;

/// A process's side: a connection to the coordinator.
#[derive(Debug)]
pub struct Tcp {
    stream: TcpStream,
    rank: usize,
    peers: usize,
}

impl Tcp {
    /// Connects to the coordinator at `address` as peer `rank` of `peers`, summing
    /// `values` values per step; reads wait at most `timeout` (the coordinator's own
    /// timeout plus the time to relay a failure is a good choice).
    pub fn join(
        address: SocketAddr,
        rank: usize,
        peers: usize,
        values: usize,
        timeout: Duration,
    ) -> Result<Tcp, PeerError> {
        let fail = |what: &str, e: std::io::Error| PeerError(format!("peer {rank}: {what} {address}: {e}"));
        let deadline = Instant::now() + timeout;
        // The coordinator may start a moment after the peers.
        let mut stream = loop {
            match TcpStream::connect_timeout(&address, timeout) {
                Ok(stream) => break stream,
                Err(e) if Instant::now() >= deadline => return Err(fail("cannot reach the coordinator at", e)),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        };
        stream.set_nodelay(true).map_err(|e| fail("setting up", e))?;
        stream.set_read_timeout(Some(timeout)).map_err(|e| fail("setting up", e))?;
        let mut hello = MAGIC.to_vec();
        hello.extend((rank as u32).to_le_bytes());
        hello.extend((peers as u32).to_le_bytes());
        hello.extend((values as u64).to_le_bytes());
        stream.write_all(&hello).map_err(|e| fail("greeting the coordinator at", e))?;
        Ok(Tcp { stream, rank, peers })
    }
}

impl Collective for Tcp {
    fn rank(&self) -> usize {
        self.rank
    }

    fn peers(&self) -> usize {
        self.peers
    }

    fn all_reduce_sum(&mut self, values: &mut [f32]) -> Result<(), PeerError> {
        let lost = |e: std::io::Error| PeerError(format!("peer {}: the coordinator stopped answering: {e}", self.rank));
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.stream.write_all(&bytes).map_err(lost)?;
        let mut status = [0u8];
        self.stream.read_exact(&mut status).map_err(lost)?;
        if status[0] == STATUS_ABORT {
            let mut length = [0u8; 4];
            self.stream.read_exact(&mut length).map_err(lost)?;
            let mut why = vec![0u8; (u32::from_le_bytes(length) as usize).min(4096)];
            self.stream.read_exact(&mut why).map_err(lost)?;
            return Err(PeerError(String::from_utf8_lossy(&why).into_owned()));
        }
        let mut sum = vec![0u8; bytes.len()];
        self.stream.read_exact(&mut sum).map_err(lost)?;
        for (v, four) in values.iter_mut().zip(sum.chunks_exact(4)) {
            *v = f32::from_le_bytes([four[0], four[1], four[2], four[3]]);
        }
        Ok(())
    }
}

/// The coordinator: accepts `peers` peers on `listener` (each within `timeout`), then
/// sums their buffers step after step until every peer has closed its connection after
/// the same step (`Ok(steps)`), or fails: a peer that disconnects early, sends a
/// malformed greeting or stays silent longer than `timeout` ends the sum, and the
/// others are told why before their connections close.
pub fn serve(listener: &TcpListener, peers: usize, timeout: Duration) -> Result<u64, PeerError> {
    let mut streams: Vec<Option<TcpStream>> = (0..peers).map(|_| None).collect();
    let mut values = None;
    listener.set_nonblocking(true).map_err(|e| PeerError(format!("coordinator: {e}")))?;
    let deadline = Instant::now() + timeout;
    while streams.iter().any(Option::is_none) {
        match listener.accept() {
            Ok((mut stream, from)) => {
                stream.set_nonblocking(false).map_err(|e| PeerError(format!("coordinator: {e}")))?;
                stream.set_read_timeout(Some(timeout)).map_err(|e| PeerError(format!("coordinator: {e}")))?;
                let _ = stream.set_nodelay(true);
                let mut hello = [0u8; 20];
                stream
                    .read_exact(&mut hello)
                    .map_err(|e| PeerError(format!("coordinator: {from} sent no greeting: {e}")))?;
                let rank = u32::from_le_bytes([hello[4], hello[5], hello[6], hello[7]]) as usize;
                let count = u32::from_le_bytes([hello[8], hello[9], hello[10], hello[11]]) as usize;
                let length = u64::from_le_bytes(hello[12..20].try_into().unwrap_or([0; 8]));
                let problem = if hello[..4] != MAGIC {
                    Some(format!("{from} is not a fitnets peer"))
                } else if count != peers || rank >= peers {
                    Some(format!("{from} says it is peer {rank} of {count}; this coordinator sums {peers} peers"))
                } else if streams[rank].is_some() {
                    Some(format!("two peers say they are peer {rank}"))
                } else if values.is_some_and(|v| v != length) {
                    Some(format!("peer {rank} sums {length} values, the others {}", values.unwrap_or(0)))
                } else {
                    None
                };
                if let Some(why) = problem {
                    abort(&mut streams, &why);
                    return Err(PeerError(format!("coordinator: {why}")));
                }
                values = Some(length);
                streams[rank] = Some(stream);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    let missing: Vec<String> =
                        (0..peers).filter(|&r| streams[r].is_none()).map(|r| r.to_string()).collect();
                    let why = format!("peer(s) {} did not join within {timeout:.0?}", missing.join(", "));
                    abort(&mut streams, &why);
                    return Err(PeerError(format!("coordinator: {why}")));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(PeerError(format!("coordinator: {e}"))),
        }
    }
    let length = values.unwrap_or(0) as usize * 4;
    let mut steps = 0u64;
    loop {
        let mut sum = vec![0.0f32; length / 4];
        let mut closed = 0;
        let mut buffer = vec![0u8; length];
        for rank in 0..peers {
            let Some(stream) = streams[rank].as_mut() else { continue };
            match read_step(stream, &mut buffer) {
                Ok(true) => {
                    for (s, four) in sum.iter_mut().zip(buffer.chunks_exact(4)) {
                        *s += f32::from_le_bytes([four[0], four[1], four[2], four[3]]);
                    }
                }
                Ok(false) => closed += 1,
                Err(e) => {
                    let why = format!("peer {rank} stopped after step {steps}: {e}");
                    streams[rank] = None;
                    abort(&mut streams, &why);
                    return Err(PeerError(format!("coordinator: {why}")));
                }
            }
        }
        if closed == peers {
            return Ok(steps);
        }
        if closed > 0 {
            let why = format!("{closed} of {peers} peers left after step {steps}, the others went on");
            abort(&mut streams, &why);
            return Err(PeerError(format!("coordinator: {why}")));
        }
        let mut reply = vec![STATUS_OK];
        reply.extend(sum.iter().flat_map(|v| v.to_le_bytes()));
        for rank in 0..peers {
            if let Some(stream) = streams[rank].as_mut()
                && let Err(e) = stream.write_all(&reply)
            {
                let why = format!("peer {rank} stopped after step {steps}: {e}");
                streams[rank] = None;
                abort(&mut streams, &why);
                return Err(PeerError(format!("coordinator: {why}")));
            }
        }
        steps += 1;
    }
}

/// Reads one step's buffer; `Ok(false)` when the peer closed cleanly before it.
fn read_step(stream: &mut TcpStream, buffer: &mut [u8]) -> std::io::Result<bool> {
    let mut first = [0u8; 1];
    if buffer.is_empty() {
        return Ok(true);
    }
    match stream.read(&mut first)? {
        0 => return Ok(false),
        _ => buffer[0] = first[0],
    }
    stream.read_exact(&mut buffer[1..])?;
    Ok(true)
}

/// Tells every connected peer why the sum ends.
fn abort(streams: &mut [Option<TcpStream>], why: &str) {
    let mut message = vec![STATUS_ABORT];
    message.extend((why.len() as u32).to_le_bytes());
    message.extend(why.as_bytes());
    for stream in streams.iter_mut().flatten() {
        let _ = stream.write_all(&message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(2);

    /// Peer `rank`'s buffer at `step`: values whose sum in rank order is not the sum in
    /// another order, so the order is checked too.
    fn buffer(rank: usize, step: usize) -> Vec<f32> {
        (0..5).map(|i| (1.0 + rank as f32 * 1e-7) * 10f32.powi(i - 2) + step as f32 * 0.1).collect()
    }

    fn expected(peers: usize, step: usize) -> Vec<f32> {
        let mut sum = vec![0.0f32; 5];
        for rank in 0..peers {
            for (s, v) in sum.iter_mut().zip(buffer(rank, step)) {
                *s += v;
            }
        }
        sum
    }

    fn run_peer(mut peer: impl Collective, steps: usize) -> Result<Vec<Vec<f32>>, PeerError> {
        (0..steps)
            .map(|step| {
                let mut values = buffer(peer.rank(), step);
                peer.all_reduce_sum(&mut values)?;
                Ok(values)
            })
            .collect()
    }

    #[test]
    fn threads_sum_in_rank_order_every_step() {
        let handles: Vec<_> =
            local(3, TIMEOUT).into_iter().map(|p| std::thread::spawn(move || run_peer(p, 4))).collect();
        for handle in handles {
            let sums = handle.join().unwrap().unwrap();
            for (step, sum) in sums.iter().enumerate() {
                assert_eq!(sum, &expected(3, step));
            }
        }
    }

    #[test]
    fn a_thread_that_leaves_fails_the_others_at_once() {
        let mut peers = local(2, Duration::from_secs(60));
        let second = peers.pop().unwrap();
        let first = peers.pop().unwrap();
        let started = Instant::now();
        let leaver = std::thread::spawn(move || run_peer(second, 1));
        let stayer = std::thread::spawn(move || run_peer(first, 3));
        assert!(leaver.join().unwrap().is_ok());
        let error = stayer.join().unwrap().unwrap_err();
        assert!(error.0.contains("peer 1 left after step 1"), "{error}");
        assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    }

    #[test]
    fn a_silent_thread_times_out() {
        let mut peers = local(2, Duration::from_millis(300));
        let _silent = peers.pop().unwrap();
        let error = run_peer(peers.pop().unwrap(), 1).unwrap_err();
        assert!(error.0.contains("peer(s) 1 did not reach step 1 within"), "{error}");
    }

    fn coordinator(peers: usize, timeout: Duration) -> (SocketAddr, std::thread::JoinHandle<Result<u64, PeerError>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        (address, std::thread::spawn(move || serve(&listener, peers, timeout)))
    }

    #[test]
    fn processes_sum_as_threads_do() {
        let (address, server) = coordinator(3, TIMEOUT);
        let handles: Vec<_> = (0..3)
            .map(|rank| std::thread::spawn(move || run_peer(Tcp::join(address, rank, 3, 5, TIMEOUT).unwrap(), 4)))
            .collect();
        for handle in handles {
            let sums = handle.join().unwrap().unwrap();
            for (step, sum) in sums.iter().enumerate() {
                assert_eq!(sum, &expected(3, step), "bit for bit what the threads get");
            }
        }
        assert_eq!(server.join().unwrap(), Ok(4));
    }

    #[test]
    fn a_process_that_dies_ends_the_others_with_its_name() {
        let (address, server) = coordinator(2, Duration::from_secs(60));
        let started = Instant::now();
        let dying = std::thread::spawn(move || {
            let mut peer = Tcp::join(address, 1, 2, 5, Duration::from_secs(60)).unwrap();
            let mut values = buffer(1, 0);
            peer.all_reduce_sum(&mut values).unwrap();
            // Dies mid-step: half a buffer, then the connection drops.
            peer.stream.write_all(&[0u8; 7]).unwrap();
        });
        let staying =
            std::thread::spawn(move || run_peer(Tcp::join(address, 0, 2, 5, Duration::from_secs(60)).unwrap(), 3));
        dying.join().unwrap();
        let error = staying.join().unwrap().unwrap_err();
        assert!(error.0.contains("peer 1 stopped after step 1"), "{error}");
        assert!(server.join().unwrap().unwrap_err().0.contains("peer 1 stopped after step 1"));
        assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    }

    #[test]
    fn a_silent_process_times_out_and_a_wrong_one_is_refused() {
        let (address, server) = coordinator(2, Duration::from_millis(500));
        let silent = TcpStream::connect(address).unwrap();
        let error = run_peer(Tcp::join(address, 0, 2, 5, Duration::from_secs(5)).unwrap(), 1);
        drop(silent);
        assert!(error.is_err());
        assert!(server.join().unwrap().is_err());

        let (address, server) = coordinator(2, TIMEOUT);
        let _first = Tcp::join(address, 0, 2, 5, TIMEOUT).unwrap();
        let _wrong = Tcp::join(address, 1, 3, 5, TIMEOUT).unwrap();
        let error = server.join().unwrap().unwrap_err();
        assert!(error.0.contains("says it is peer 1 of 3; this coordinator sums 2 peers"), "{error}");
    }
}
