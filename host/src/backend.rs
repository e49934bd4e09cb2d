//! Choosing where training runs: a CPU backend, or CUDA with the `cuda` feature.

use std::fmt;
use std::str::FromStr;

use anyhow::bail;

/// A device as the command line names it: `cpu`, `cuda`, `cuda:N`, or several GPUs as
/// `cuda:0,1,3` (data parallel: each batch is split between them; a GPU named twice holds
/// two peers that share it); `cpu:peers=N` splits
/// each batch over `N` peers that share the CPU (to try data parallelism on one
/// machine: it is not faster than one peer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceSpec {
    /// The CPU, with this many peers (at least one).
    Cpu(usize),
    /// CUDA device indices, at least one, a peer each; the model lives on the first.
    Cuda(Vec<usize>),
}

impl FromStr for DeviceSpec {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<DeviceSpec> {
        let usage = || anyhow::anyhow!("unknown device `{s}`: use cpu, cpu:peers=N, cuda, cuda:N or cuda:N,M,…");
        if let Some(peers) = s.strip_prefix("cpu:peers=") {
            return match peers.parse::<usize>() {
                Ok(peers @ 1..=MAX_PEERS) => Ok(DeviceSpec::Cpu(peers)),
                _ => bail!("device `{s}`: the CPU takes 1 to {MAX_PEERS} peers"),
            };
        }
        match s {
            "cpu" => Ok(DeviceSpec::Cpu(1)),
            "cuda" => Ok(DeviceSpec::Cuda(vec![0])),
            _ => {
                let list = s.strip_prefix("cuda:").ok_or_else(usage)?;
                let ids = list.split(',').map(|n| n.trim().parse::<usize>()).collect::<Result<Vec<_>, _>>();
                let ids = ids.map_err(|_| usage())?;
                if ids.len() > MAX_PEERS {
                    bail!("device `{s}` names {} GPUs: one process runs at most {MAX_PEERS} peers", ids.len());
                }
                Ok(DeviceSpec::Cuda(ids))
            }
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Cpu(1) => write!(f, "cpu"),
            DeviceSpec::Cpu(peers) => write!(f, "cpu:peers={peers}"),
            DeviceSpec::Cuda(ids) => {
                let ids: Vec<String> = ids.iter().map(usize::to_string).collect();
                write!(f, "cuda:{}", ids.join(","))
            }
        }
    }
}

/// The most peers one process runs (each holds a replica and its optimizer state).
pub const MAX_PEERS: usize = 64;

/// The CPU backends fitnets can train on (see `docs/benchmarks.md` for the choice).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CpuBackend {
    /// burn-ndarray.
    Ndarray,
    /// burn-flex.
    Flex,
}

/// Where a command computes: the device and, on the CPU, the backend (`--device`,
/// `--backend`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compute {
    pub device: DeviceSpec,
    pub backend: CpuBackend,
}

impl Default for Compute {
    /// One peer on the CPU, with flex.
    fn default() -> Compute {
        Compute { device: DeviceSpec::Cpu(1), backend: CpuBackend::Flex }
    }
}

impl Compute {
    /// What a run's record and the log say it trained on.
    pub fn describe(&self) -> String {
        let peers = |peers: usize| if peers > 1 { format!(", {peers} peers") } else { String::new() };
        match &self.device {
            // The flex kernels' matrix products run on the vector unit chosen at start
            // (`kernels::vector`); ndarray's do not.
            DeviceSpec::Cpu(n) if self.backend == CpuBackend::Flex => format!(
                "cpu (flex, {}, {} threads){}",
                crate::kernels::vector::chosen().name(),
                rayon::current_num_threads(),
                peers(*n)
            ),
            DeviceSpec::Cpu(n) => format!("cpu ({}){}", format!("{:?}", self.backend).to_lowercase(), peers(*n)),
            cuda => cuda.to_string(),
        }
    }
}

pub type NdArray = burn::backend::NdArray<f32>;
pub type Flex = burn::backend::Flex;
#[cfg(feature = "cuda")]
pub type Cuda = burn::backend::Cuda<f32>;

/// Runs `$body` with `$B` bound to the autodiff backend for `$device`/`$cpu` and `$dev`
/// bound to its (first) device; the three-name form also binds `$all` to every device
/// the spec names (`Vec`, the first is `$dev`).
#[macro_export]
macro_rules! with_backend {
    ($device:expr, $cpu:expr, |$B:ident, $dev:ident| $body:expr) => {
        $crate::with_backend!($device, $cpu, |$B, $dev, _all| $body)
    };
    ($device:expr, $cpu:expr, |$B:ident, $dev:ident, $all:ident| $body:expr) => {{
        use $crate::backend::{CpuBackend, DeviceSpec};
        match (&$device, $cpu) {
            (DeviceSpec::Cpu(peers), CpuBackend::Ndarray) => {
                type $B = burn::backend::Autodiff<$crate::backend::NdArray>;
                let $all: Vec<<$B as burn::tensor::backend::BackendTypes>::Device> = vec![Default::default(); *peers];
                let $dev = $all[0].clone();
                $body
            }
            (DeviceSpec::Cpu(peers), CpuBackend::Flex) => {
                type $B = burn::backend::Autodiff<$crate::backend::Flex>;
                let $all: Vec<<$B as burn::tensor::backend::BackendTypes>::Device> = vec![Default::default(); *peers];
                let $dev = $all[0].clone();
                $body
            }
            #[cfg(feature = "cuda")]
            (DeviceSpec::Cuda(ids), _) => {
                type $B = burn::backend::Autodiff<$crate::backend::Cuda>;
                let $all: Vec<burn::backend::cuda::CudaDevice> =
                    ids.iter().map(|&n| burn::backend::cuda::CudaDevice::new(n)).collect();
                let $dev = $all[0].clone();
                $body
            }
            #[cfg(not(feature = "cuda"))]
            (DeviceSpec::Cuda(_), _) => {
                anyhow::bail!("this fitnets was built without CUDA: rebuild with `--features cuda`")
            }
        }
    }};
}

#[cfg(test)]
mod tests {
    use super::DeviceSpec;

    #[test]
    fn device_specs_parse_and_print() {
        for (text, spec) in [
            ("cpu", DeviceSpec::Cpu(1)),
            ("cpu:peers=3", DeviceSpec::Cpu(3)),
            ("cuda", DeviceSpec::Cuda(vec![0])),
            ("cuda:3", DeviceSpec::Cuda(vec![3])),
            ("cuda:0,1,3", DeviceSpec::Cuda(vec![0, 1, 3])),
            ("cuda:0,0", DeviceSpec::Cuda(vec![0, 0])),
        ] {
            assert_eq!(text.parse::<DeviceSpec>().unwrap(), spec, "{text}");
        }
        assert_eq!(DeviceSpec::Cuda(vec![2, 0]).to_string(), "cuda:2,0");
        assert_eq!(DeviceSpec::Cpu(1).to_string(), "cpu");
        assert_eq!(DeviceSpec::Cpu(2).to_string(), "cpu:peers=2");
        for bad in
            ["gpu", "cuda:", "cuda:x", "cuda:1,", "CPU", "cpu:", "cpu:2", "cpu:peers=0", "cpu:peers=65", "cpu:peers=x"]
        {
            assert!(bad.parse::<DeviceSpec>().is_err(), "{bad} should be refused");
        }
    }
}
