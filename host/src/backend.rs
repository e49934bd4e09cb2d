//! Choosing where training runs: a CPU backend, or CUDA with the `cuda` feature.

use std::str::FromStr;

use anyhow::bail;

/// A device as the command line names it: `cpu`, `cuda` or `cuda:N`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceSpec {
    Cpu,
    Cuda(usize),
}

impl FromStr for DeviceSpec {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<DeviceSpec> {
        match s {
            "cpu" => Ok(DeviceSpec::Cpu),
            "cuda" => Ok(DeviceSpec::Cuda(0)),
            _ => match s.strip_prefix("cuda:").map(str::parse) {
                Some(Ok(n)) => Ok(DeviceSpec::Cuda(n)),
                _ => bail!("unknown device `{s}`: use cpu, cuda or cuda:N"),
            },
        }
    }
}

/// The CPU backends fitnets can train on (see `docs/benchmarks.md` for the choice).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CpuBackend {
    /// burn-ndarray.
    Ndarray,
    /// burn-flex.
    Flex,
}

pub type NdArray = burn::backend::NdArray<f32>;
pub type Flex = burn::backend::Flex;
#[cfg(feature = "cuda")]
pub type Cuda = burn::backend::Cuda<f32>;

/// Runs `$body` with `$B` bound to the autodiff backend for `$device`/`$cpu` and `$dev`
/// bound to its device.
#[macro_export]
macro_rules! with_backend {
    ($device:expr, $cpu:expr, |$B:ident, $dev:ident| $body:expr) => {{
        use $crate::backend::{CpuBackend, DeviceSpec};
        match ($device, $cpu) {
            (DeviceSpec::Cpu, CpuBackend::Ndarray) => {
                type $B = burn::backend::Autodiff<$crate::backend::NdArray>;
                let $dev = Default::default();
                $body
            }
            (DeviceSpec::Cpu, CpuBackend::Flex) => {
                type $B = burn::backend::Autodiff<$crate::backend::Flex>;
                let $dev = Default::default();
                $body
            }
            #[cfg(feature = "cuda")]
            (DeviceSpec::Cuda(n), _) => {
                type $B = burn::backend::Autodiff<$crate::backend::Cuda>;
                let $dev = burn::backend::cuda::CudaDevice::new(n);
                $body
            }
            #[cfg(not(feature = "cuda"))]
            (DeviceSpec::Cuda(_), _) => {
                anyhow::bail!("this fitnets was built without CUDA: rebuild with `--features cuda`")
            }
        }
    }};
}
