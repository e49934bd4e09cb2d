//! Peers that are threads of one process: they meet under a mutex, the last to arrive
//! adds the buffers in rank order (and, for a node of several, sums that with the other
//! nodes through its link) and wakes the others.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::{Collective, PeerError};

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

struct Shared {
    round: Mutex<Round>,
    changed: Condvar,
    timeout: Duration,
    /// The other nodes, summed with after this process's peers (always locked after
    /// `round` when both are held).
    outer: Option<Mutex<Box<dyn Collective>>>,
    /// The outer rank and peer count (`0` of `1` without `outer`).
    outer_rank: usize,
    outer_peers: usize,
}

/// A peer of [`local`]: one thread's side.
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
    build(peers, timeout, None)
}

/// `peers` peers for threads of this process that, once they have summed, sum with the
/// other nodes through `outer` (this process's side of the nodes' sum): peer `r` of node
/// `n` is rank `n * peers + r` of `peers * outer.peers()`. The first peer speaks for the
/// node in [`Collective::agree`].
pub fn local_over(peers: usize, timeout: Duration, outer: Box<dyn Collective>) -> Vec<Local> {
    build(peers, timeout, Some(outer))
}

fn build(peers: usize, timeout: Duration, outer: Option<Box<dyn Collective>>) -> Vec<Local> {
    let shared = Arc::new(Shared {
        round: Mutex::new(Round { arrived: vec![None; peers], sum: Arc::new(Vec::new()), step: 0, failed: None }),
        changed: Condvar::new(),
        timeout,
        outer_rank: outer.as_ref().map_or(0, |o| o.rank()),
        outer_peers: outer.as_ref().map_or(1, |o| o.peers()),
        outer: outer.map(Mutex::new),
    });
    (0..peers).map(|rank| Local { shared: shared.clone(), rank, peers, step: 0 }).collect()
}

impl std::fmt::Debug for Local {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Local")
            .field("rank", &self.rank())
            .field("peers", &self.peers())
            .field("step", &self.step)
            .finish()
    }
}

impl Collective for Local {
    fn rank(&self) -> usize {
        self.shared.outer_rank * self.peers + self.rank
    }

    fn peers(&self) -> usize {
        self.shared.outer_peers * self.peers
    }

    fn agree(&mut self, what: &str, values: usize) -> Result<(), PeerError> {
        match &self.shared.outer {
            Some(outer) if self.rank == 0 => {
                let mut outer = outer.lock().map_err(|_| PeerError("a peer panicked while summing".into()))?;
                outer.agree(&format!("{what}, {} peers on this node", self.peers), values)
            }
            _ => Ok(()),
        }
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
            if let Some(outer) = &self.shared.outer {
                let summed = match outer.lock() {
                    Ok(mut outer) => outer.all_reduce_sum(&mut sum),
                    Err(_) => Err(PeerError("a peer panicked while summing".into())),
                };
                if let Err(why) = summed {
                    round.failed = Some(why.0.clone());
                    self.shared.changed.notify_all();
                    return Err(why);
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

#[cfg(test)]
mod tests {
    use super::super::testkit::{buffer, steps};
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(2);

    fn expected(peers: usize, step: usize) -> Vec<f32> {
        let mut sum = vec![0.0f32; 5];
        for rank in 0..peers {
            for (s, v) in sum.iter_mut().zip(buffer(rank, step)) {
                *s += v;
            }
        }
        sum
    }

    fn run_peer(mut peer: impl Collective, count: usize) -> Result<Vec<Vec<f32>>, PeerError> {
        steps(&mut peer, "", count)
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
}
