//! The orchestrator of a run on several machines (`fitnets orchestrator`): it waits for
//! every node to connect ([`super::Link`]), then answers their messages round by round:
//! each node sends one message per round, and all must be of one kind. A phase begins
//! when every node describes it the same way; a step's sum is the nodes' buffers added
//! in node order, sent back to all; the run ends when every node says goodbye. A node
//! that disconnects, sends something else than the others or stays silent longer than
//! the timeout ends the run: the others are told why, so none hangs.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use super::PeerError;
use super::node::{ABORT, BYE, MAGIC, MAX_TEXT, OK, PHASE, STEP, VERSION};
use crate::model::config::limits;

/// How long a connection has to greet before it is refused.
const GREETING: Duration = Duration::from_secs(10);

/// The most values a step may sum: every parameter a network may have
/// ([`limits::MAX_PARAMS`]), plus the loss and the hits.
const MAX_VALUES: u64 = limits::MAX_PARAMS + 2;

/// What a run that ended well did: each phase's description and its steps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    pub phases: Vec<(String, u64)>,
}

/// One node's message of a round.
enum Message {
    Phase { values: usize, what: String },
    Step(Vec<u8>),
    Bye,
}

impl Message {
    fn describe(&self) -> String {
        match self {
            Message::Phase { what, .. } => format!("begins {what}"),
            Message::Step(_) => "sends a step".into(),
            Message::Bye => "has finished training".into(),
        }
    }
}

/// Serves one run of `nodes` nodes on `listener`: every node must connect within
/// `timeout`, and each message may come at most `timeout` after the previous round.
/// `log` receives a line for each node that joins and each phase.
pub fn serve(
    listener: &TcpListener,
    nodes: usize,
    timeout: Duration,
    log: &mut dyn FnMut(&str),
) -> Result<Summary, PeerError> {
    let mut streams = accept(listener, nodes, timeout, log)?;
    let mut summary = Summary { phases: Vec::new() };
    let mut values = None;
    loop {
        let at = match summary.phases.last() {
            None => "before its first phase".to_string(),
            Some((what, steps)) => format!("after step {steps} of {}", short(what)),
        };
        let mut messages = Vec::with_capacity(nodes);
        for node in 0..nodes {
            match read_message(&mut streams[node], values) {
                Ok(message) => messages.push(message),
                Err(e) => {
                    let why = match e.kind() {
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => format!(
                            "node {node} sent nothing for {timeout:.0?} {at}: it hangs, or its machine cannot be \
                             reached"
                        ),
                        // A process that dies closes its socket: an end of file, or a reset
                        // when it had unread bytes.
                        std::io::ErrorKind::UnexpectedEof
                        | std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::ConnectionAborted => {
                            format!("node {node} disconnected {at}: its command ended or failed (see its output)")
                        }
                        _ => format!("node {node} {at}: {e}"),
                    };
                    return Err(abort(&mut streams, why));
                }
            }
        }
        match &messages[0] {
            Message::Phase { .. } => {
                let phases: Vec<(usize, &str)> = messages
                    .iter()
                    .filter_map(|m| match m {
                        Message::Phase { values, what } => Some((*values, what.as_str())),
                        _ => None,
                    })
                    .collect();
                if phases.len() < nodes {
                    return Err(abort(&mut streams, mixed(&messages)));
                }
                if phases.iter().any(|p| *p != phases[0]) {
                    let each: Vec<String> = phases
                        .iter()
                        .enumerate()
                        .map(|(node, (values, what))| format!("node {node}: {what} ({values} values)"))
                        .collect();
                    let why = format!(
                        "the nodes disagree on the phase they train (give every node the same command, data and \
                         run state): {}",
                        each.join("; ")
                    );
                    return Err(abort(&mut streams, why));
                }
                if let Some((what, steps)) = summary.phases.last() {
                    log(&format!("{} done after {steps} steps", short(what)));
                }
                log(&format!("{} ({} values per step)", phases[0].1, phases[0].0));
                values = Some(phases[0].0);
                summary.phases.push((phases[0].1.to_string(), 0));
                reply(&mut streams, &[OK])?;
            }
            Message::Step(_) => {
                let mut sum = vec![0f32; values.unwrap_or(0)];
                for message in &messages {
                    let Message::Step(bytes) = message else { return Err(abort(&mut streams, mixed(&messages))) };
                    for (s, four) in sum.iter_mut().zip(bytes.chunks_exact(4)) {
                        *s += f32::from_le_bytes([four[0], four[1], four[2], four[3]]);
                    }
                }
                let mut answer = Vec::with_capacity(1 + 4 * sum.len());
                answer.push(OK);
                answer.extend(sum.iter().flat_map(|v| v.to_le_bytes()));
                reply(&mut streams, &answer)?;
                if let Some((_, steps)) = summary.phases.last_mut() {
                    *steps += 1;
                }
            }
            Message::Bye => {
                if messages.iter().any(|m| !matches!(m, Message::Bye)) {
                    return Err(abort(&mut streams, mixed(&messages)));
                }
                if let Some((what, steps)) = summary.phases.last() {
                    log(&format!("{} done after {steps} steps", short(what)));
                }
                reply(&mut streams, &[OK])?;
                return Ok(summary);
            }
        }
    }
}

/// Waits for node `0..nodes` to connect. A connection that is not a fitnets node of
/// this run is answered with the reason and closed; the run keeps waiting for the
/// right one (a node restarted with the right options joins).
fn accept(
    listener: &TcpListener,
    nodes: usize,
    timeout: Duration,
    log: &mut dyn FnMut(&str),
) -> Result<Vec<TcpStream>, PeerError> {
    let failed = |e: std::io::Error| PeerError(format!("orchestrator: {e}"));
    let mut streams: Vec<Option<TcpStream>> = (0..nodes).map(|_| None).collect();
    listener.set_nonblocking(true).map_err(failed)?;
    let deadline = Instant::now() + timeout;
    while streams.iter().any(Option::is_none) {
        let (mut stream, from) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    let missing: Vec<String> =
                        (0..nodes).filter(|&n| streams[n].is_none()).map(|n| n.to_string()).collect();
                    let why = format!("node(s) {} did not connect within {timeout:.0?}", missing.join(", "));
                    let mut joined: Vec<TcpStream> = streams.into_iter().flatten().collect();
                    return Err(abort(&mut joined, why));
                }
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            Err(e) => return Err(failed(e)),
        };
        stream.set_nonblocking(false).map_err(failed)?;
        // A node greets as soon as it connects; a connection that stays silent (a port
        // probe) must not hold up the others for the whole timeout.
        stream.set_read_timeout(Some(timeout.min(GREETING))).map_err(failed)?;
        let _ = stream.set_nodelay(true);
        let mut hello = [0u8; 16];
        let greeted = stream.read_exact(&mut hello).and_then(|()| stream.set_read_timeout(Some(timeout)));
        let problem = match greeted {
            Err(e) => Some(format!("{from} sent no greeting ({e})")),
            Ok(()) => {
                let word = |i: usize| u32::from_le_bytes([hello[i], hello[i + 1], hello[i + 2], hello[i + 3]]);
                let (version, node, count) = (word(4), word(8) as usize, word(12) as usize);
                if hello[..4] != MAGIC {
                    Some(format!("{from} is not a fitnets node"))
                } else if version != VERSION {
                    Some(format!(
                        "{from} speaks version {version} of the nodes' protocol, this orchestrator {VERSION}: run the \
                         same fitnets on every machine"
                    ))
                } else if count != nodes || node >= nodes {
                    Some(format!(
                        "{from} says it is node {node} of {count}; this orchestrator serves {nodes} nodes (give \
                         every node --nodes {nodes} and a --node from 0 to {})",
                        nodes - 1
                    ))
                } else if streams[node].is_some() {
                    Some(format!(
                        "{from} says it is node {node}, which has joined already: give each node its own --node"
                    ))
                } else {
                    streams[node] = Some(stream.try_clone().map_err(failed)?);
                    log(&format!("node {node} joined from {from}"));
                    None
                }
            }
        };
        if let Some(why) = problem {
            log(&format!("refused: {why}"));
            let _ = abort(std::slice::from_mut(&mut stream), why);
        }
    }
    Ok(streams.into_iter().flatten().collect())
}

/// Reads one message; a step holds `values` values (`None`: no phase has begun).
fn read_message(stream: &mut TcpStream, values: Option<usize>) -> std::io::Result<Message> {
    let mut tag = [0u8];
    stream.read_exact(&mut tag)?;
    let invalid = |what: String| std::io::Error::new(std::io::ErrorKind::InvalidData, what);
    match tag[0] {
        PHASE => {
            let mut head = [0u8; 12];
            stream.read_exact(&mut head)?;
            let values = u64::from_le_bytes(head[..8].try_into().unwrap_or_default());
            let length = u32::from_le_bytes(head[8..].try_into().unwrap_or_default()) as usize;
            if length > MAX_TEXT || values > MAX_VALUES {
                return Err(invalid(format!("a phase of {values} values described in {length} bytes")));
            }
            let mut what = vec![0u8; length];
            stream.read_exact(&mut what)?;
            Ok(Message::Phase { values: values as usize, what: String::from_utf8_lossy(&what).into_owned() })
        }
        STEP => {
            let values = values.ok_or_else(|| invalid("sent a step before any phase began".into()))?;
            let mut bytes = vec![0u8; 4 * values];
            stream.read_exact(&mut bytes)?;
            Ok(Message::Step(bytes))
        }
        BYE => Ok(Message::Bye),
        other => Err(invalid(format!("sent message {other:#04x}, which no fitnets node sends"))),
    }
}

/// Sends `message` to every node.
fn reply(streams: &mut [TcpStream], message: &[u8]) -> Result<(), PeerError> {
    for node in 0..streams.len() {
        if let Err(e) = streams[node].write_all(message) {
            return Err(abort(streams, format!("node {node} cannot be reached: {e}")));
        }
    }
    Ok(())
}

/// Tells every node why the run ends, and returns the reason as an error.
fn abort(streams: &mut [TcpStream], why: String) -> PeerError {
    let mut message = vec![ABORT];
    message.extend((why.len() as u32).to_le_bytes());
    message.extend(why.as_bytes());
    for stream in streams.iter_mut() {
        let _ = stream.write_all(&message);
    }
    PeerError(why)
}

/// The error when nodes send messages of different kinds.
fn mixed(messages: &[Message]) -> String {
    let each: Vec<String> =
        messages.iter().enumerate().map(|(node, m)| format!("node {node} {}", m.describe())).collect();
    format!("the nodes are out of step: {}", each.join("; "))
}

/// A phase's name: its description up to the first colon.
fn short(what: &str) -> String {
    format!("phase `{}`", what.split(':').next().unwrap_or(what))
}

#[cfg(test)]
mod tests {
    use std::thread::JoinHandle;

    use super::super::testkit::{buffer, steps};
    use super::super::{Collective, Link, local, local_over};
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(5);

    fn start(nodes: usize, timeout: Duration) -> (String, JoinHandle<Result<Summary, PeerError>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        (address, std::thread::spawn(move || serve(&listener, nodes, timeout, &mut |_| {})))
    }

    #[test]
    fn nodes_sum_in_node_order_as_threads_do_phase_after_phase() {
        let (address, server) = start(3, TIMEOUT);
        let nodes: Vec<_> = (0..3)
            .map(|node| {
                let address = address.clone();
                std::thread::spawn(move || {
                    let link = Link::connect(&address, node, 3, TIMEOUT).unwrap();
                    let first = steps(&mut link.phase(), "hints: epochs 1..2", 4).unwrap();
                    let second = steps(&mut link.phase(), "student: epochs 1..3", 2).unwrap();
                    link.finish().unwrap();
                    (first, second)
                })
            })
            .collect();
        let threads: Vec<Vec<Vec<f32>>> = std::thread::scope(|scope| {
            let handles: Vec<_> = local(3, TIMEOUT)
                .into_iter()
                .map(|mut peer| scope.spawn(move || steps(&mut peer, "", 4).unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for node in nodes {
            let (first, second) = node.join().unwrap();
            assert_eq!(first, threads[0], "bit for bit what threads get");
            assert_eq!(second, threads[0][..2]);
        }
        let summary = server.join().unwrap().unwrap();
        assert_eq!(summary.phases, vec![("hints: epochs 1..2".into(), 4), ("student: epochs 1..3".into(), 2)]);
    }

    #[test]
    fn threads_of_several_nodes_sum_as_as_many_threads_do() {
        // 2 nodes of 2 threads: ranks 0..4 in node order; the node sums first, so the
        // sum is rounded differently from 4 threads', but within float rounding.
        let (address, server) = start(2, TIMEOUT);
        let all: Vec<(usize, Vec<Vec<f32>>)> = std::thread::scope(|scope| {
            let nodes: Vec<_> = (0..2)
                .map(|node| {
                    let address = &address;
                    scope.spawn(move || {
                        let link = Link::connect(address, node, 2, TIMEOUT).unwrap();
                        let sums: Vec<_> = std::thread::scope(|scope| {
                            let peers: Vec<_> = local_over(2, TIMEOUT, Box::new(link.phase()))
                                .into_iter()
                                .map(|mut peer| scope.spawn(move || (peer.rank(), steps(&mut peer, "p", 3).unwrap())))
                                .collect();
                            peers.into_iter().map(|h| h.join().unwrap()).collect()
                        });
                        link.finish().unwrap();
                        sums
                    })
                })
                .collect();
            nodes.into_iter().flat_map(|h| h.join().unwrap()).collect()
        });
        let mut ranks: Vec<usize> = all.iter().map(|(rank, _)| *rank).collect();
        ranks.sort_unstable();
        assert_eq!(ranks, [0, 1, 2, 3]);
        let four: Vec<Vec<f32>> = std::thread::scope(|scope| {
            let handles: Vec<_> =
                local(4, TIMEOUT).into_iter().map(|mut p| scope.spawn(move || steps(&mut p, "", 3).unwrap())).collect();
            handles.into_iter().map(|h| h.join().unwrap()).next().unwrap()
        });
        for (_, sums) in &all {
            for (a, b) in sums.iter().flatten().zip(four.iter().flatten()) {
                assert!((a - b).abs() <= 1e-6 * a.abs(), "{a} {b}");
            }
        }
        assert_eq!(server.join().unwrap().unwrap().phases, vec![("p, 2 peers on this node".into(), 3)]);
    }

    #[test]
    fn a_node_that_dies_ends_the_others_with_its_name() {
        let (address, server) = start(2, Duration::from_secs(60));
        let started = Instant::now();
        let dying = {
            let address = address.clone();
            std::thread::spawn(move || {
                let link = Link::connect(&address, 1, 2, Duration::from_secs(60)).unwrap();
                steps(&mut link.phase(), "student: epochs 1..3", 1).unwrap();
                // Its process ends: the link is dropped without a goodbye.
            })
        };
        let link = Link::connect(&address, 0, 2, Duration::from_secs(60)).unwrap();
        let error = steps(&mut link.phase(), "student: epochs 1..3", 3).unwrap_err();
        dying.join().unwrap();
        assert!(error.0.contains("node 1 disconnected after step 1 of phase `student`"), "{error}");
        let stopped = server.join().unwrap().unwrap_err();
        assert!(stopped.0.starts_with("node 1 disconnected after step 1"), "{stopped}");
        assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    }

    #[test]
    fn a_silent_node_times_out_and_a_missing_one_is_named() {
        let (address, server) = start(2, Duration::from_secs(1));
        let silent = {
            let address = address.clone();
            std::thread::spawn(move || {
                let mut phase = Link::connect(&address, 1, 2, TIMEOUT).unwrap().phase();
                phase.agree("p", 5).unwrap();
                // Hangs past the timeout, and then its reply says why the run stopped.
                std::thread::sleep(Duration::from_secs(3));
                phase.all_reduce_sum(&mut buffer(1, 0)).unwrap_err()
            })
        };
        let error = steps(&mut Link::connect(&address, 0, 2, TIMEOUT).unwrap().phase(), "p", 2).unwrap_err();
        assert!(error.0.contains("node 1 sent nothing for 1s after step 0 of phase `p`"), "{error}");
        assert!(silent.join().unwrap().0.contains("node 1 sent nothing"));
        assert!(server.join().unwrap().is_err());

        let (address, server) = start(2, Duration::from_millis(500));
        let _first = Link::connect(&address, 0, 2, TIMEOUT).unwrap();
        let error = server.join().unwrap().unwrap_err();
        assert_eq!(error.0, "node(s) 1 did not connect within 500ms");
    }

    #[test]
    fn a_wrong_node_is_refused_and_the_right_one_joins() {
        let (address, server) = start(2, TIMEOUT);
        // Node 0 connects first, so that the duplicate below is the one refused (the
        // orchestrator takes connections in the order they arrive).
        let link = Link::connect(&address, 0, 2, TIMEOUT).unwrap();
        let first = std::thread::spawn(move || {
            steps(&mut link.phase(), "p", 2).unwrap();
            link.finish().unwrap();
        });
        let wrong = Link::connect(&address, 1, 3, TIMEOUT).unwrap();
        let error = wrong.phase().agree("p", 5).unwrap_err();
        assert!(error.0.contains("says it is node 1 of 3; this orchestrator serves 2 nodes"), "{error}");
        let twice = Link::connect(&address, 0, 2, TIMEOUT).unwrap();
        let error = twice.phase().agree("p", 5).unwrap_err();
        assert!(error.0.contains("node 0, which has joined already"), "{error}");
        let right = Link::connect(&address, 1, 2, TIMEOUT).unwrap();
        steps(&mut right.phase(), "p", 2).unwrap();
        right.finish().unwrap();
        first.join().unwrap();
        assert_eq!(server.join().unwrap().unwrap().phases, vec![("p".into(), 2)]);
    }

    #[test]
    fn a_connection_that_never_greets_is_refused_and_the_nodes_behind_it_join() {
        let (address, server) = start(2, Duration::from_secs(1));
        let _probe = TcpStream::connect(&address).unwrap();
        let nodes: Vec<_> = (0..2)
            .map(|node| Link::connect(&address, node, 2, TIMEOUT).unwrap())
            .map(|link| {
                std::thread::spawn(move || {
                    steps(&mut link.phase(), "p", 2).unwrap();
                    link.finish().unwrap();
                })
            })
            .collect();
        for node in nodes {
            node.join().unwrap();
        }
        assert_eq!(server.join().unwrap().unwrap().phases, vec![("p".into(), 2)]);
    }

    #[test]
    fn nodes_that_disagree_or_fall_out_of_step_are_stopped() {
        for (second, expected) in [
            (
                Some("student: epochs 3..10"),
                "the nodes disagree on the phase they train (give every node the same command, data and run \
                 state): node 0: student: epochs 2..10 (5 values); node 1: student: epochs 3..10 (5 values)",
            ),
            (None, "the nodes are out of step: node 0 begins student: epochs 2..10; node 1 has finished training"),
        ] {
            let (address, server) = start(2, TIMEOUT);
            let other = {
                let address = address.clone();
                std::thread::spawn(move || {
                    let link = Link::connect(&address, 1, 2, TIMEOUT).unwrap();
                    match second {
                        Some(what) => link.phase().agree(what, 5),
                        None => link.finish(),
                    }
                })
            };
            let error = Link::connect(&address, 0, 2, TIMEOUT).unwrap().phase().agree("student: epochs 2..10", 5);
            assert_eq!(error.unwrap_err().0, format!("the orchestrator stopped every node: {expected}"));
            assert!(other.join().unwrap().is_err());
            assert_eq!(server.join().unwrap().unwrap_err().0, expected);
        }
    }
}
