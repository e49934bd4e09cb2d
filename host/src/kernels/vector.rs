//! Which vector unit the CPU kernels' matrix products run on, chosen once per process.
//!
//! One binary serves every CPU: on x86-64 the products take gemm's AVX-512 kernels
//! where the CPU has AVX-512F, its AVX2 + FMA kernels where it has those, and gemm's
//! own choice otherwise (SSE); on aarch64, gemm's NEON kernels. `FITNETS_VECTOR`
//! (`auto`, `avx512`, `avx2`) forces a narrower unit than the CPU's widest, to measure
//! one path against the other on the same machine; [`init`] checks it before any work,
//! and refuses a unit the CPU does not have.

use std::sync::OnceLock;

use anyhow::bail;

/// The environment variable that forces a vector unit.
pub const VARIABLE: &str = "FITNETS_VECTOR";

/// A vector unit of the CPU kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vector {
    /// x86-64 with AVX-512 (F, BW, DQ, VL): 16 floats per register.
    Avx512,
    /// x86-64 with AVX2 and FMA: 8 floats per register.
    Avx2,
    /// Whatever gemm picks at run time on this CPU (SSE on an old x86-64, NEON on
    /// aarch64).
    Native,
}

impl Vector {
    /// How logs name it.
    pub fn name(self) -> &'static str {
        match self {
            Vector::Avx512 => "AVX-512",
            Vector::Avx2 => "AVX2+FMA",
            Vector::Native if cfg!(target_arch = "aarch64") => "NEON",
            Vector::Native => "baseline SIMD",
        }
    }

    /// Whether this CPU has it: what gemm's kernels for it check (`try_new`, so the
    /// products' `expect` cannot fail) and what [`crate::multiversion!`] compiles for.
    pub fn available(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Vector::Avx512 => {
                x86::wide_kernels_run()
                    && std::arch::is_x86_feature_detected!("avx512bw")
                    && std::arch::is_x86_feature_detected!("avx512dq")
                    && std::arch::is_x86_feature_detected!("avx512vl")
                    && Vector::Avx2.available()
            }
            #[cfg(target_arch = "x86_64")]
            Vector::Avx2 => x86::narrow_kernels_run(),
            #[cfg(not(target_arch = "x86_64"))]
            Vector::Avx512 | Vector::Avx2 => false,
            Vector::Native => true,
        }
    }

    /// The widest unit this CPU has.
    pub fn widest() -> Vector {
        [Vector::Avx512, Vector::Avx2].into_iter().find(|v| v.available()).unwrap_or(Vector::Native)
    }

    /// The unit `value` of [`VARIABLE`] asks for (`None`: unset), checked against this
    /// CPU. Case does not matter; a value that is not text, or not a unit, is refused.
    pub fn requested(value: Option<&std::ffi::OsStr>) -> anyhow::Result<Vector> {
        let Some(value) = value else { return Ok(Vector::widest()) };
        let Some(text) = value.to_str() else {
            bail!("{VARIABLE} is not text: use auto (the CPU's widest unit), avx512 or avx2");
        };
        let wanted = match text.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => return Ok(Vector::widest()),
            "avx512" => Vector::Avx512,
            "avx2" => Vector::Avx2,
            _ => {
                // A value pasted by mistake may be long: show its start.
                let shown: String = text.chars().take(40).collect();
                let more = if shown.len() < text.len() { "…" } else { "" };
                bail!("{VARIABLE}={shown:?}{more}: use auto (the CPU's widest unit), avx512 or avx2")
            }
        };
        if !wanted.available() {
            bail!(
                "{VARIABLE}={}: this CPU has no {}; its widest unit is {} (unset {VARIABLE} to use it)",
                text.trim(),
                wanted.name(),
                Vector::widest().name()
            );
        }
        Ok(wanted)
    }
}

static CHOSEN: OnceLock<Vector> = OnceLock::new();

/// Reads and checks [`VARIABLE`] and fixes the unit for this process; call it before any
/// training, so that a bad value stops the command before any work. Later calls give the
/// unit fixed by the first.
pub fn init() -> anyhow::Result<Vector> {
    if let Some(&v) = CHOSEN.get() {
        return Ok(v);
    }
    let v = Vector::requested(std::env::var_os(VARIABLE).as_deref())?;
    Ok(*CHOSEN.get_or_init(|| v))
}

/// The unit the products run on: the one [`init`] fixed, or the CPU's widest when a
/// library user never called it (an unusable [`VARIABLE`] is then ignored).
pub fn chosen() -> Vector {
    *CHOSEN
        .get_or_init(|| Vector::requested(std::env::var_os(VARIABLE).as_deref()).unwrap_or_else(|_| Vector::widest()))
}

/// A function compiled three times, for AVX-512, for AVX2 + FMA and for the baseline
/// x86-64 (SSE2) the rest of the binary is built for, and run in the version of the
/// [`chosen`] unit: its loops use that unit's registers. Arguments are plain names.
#[macro_export]
macro_rules! multiversion {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn body($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
            #[allow(clippy::too_many_arguments)]
            unsafe fn wide($($arg: $ty),*) $(-> $ret)? { body($($arg),*) }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            #[allow(clippy::too_many_arguments)]
            unsafe fn narrow($($arg: $ty),*) $(-> $ret)? { body($($arg),*) }
            match $crate::kernels::vector::chosen() {
                // SAFETY: `chosen` only gives a unit the CPU has.
                #[cfg(target_arch = "x86_64")]
                $crate::kernels::vector::Vector::Avx512 => unsafe { wide($($arg),*) },
                // SAFETY: as above.
                #[cfg(target_arch = "x86_64")]
                $crate::kernels::vector::Vector::Avx2 => unsafe { narrow($($arg),*) },
                _ => body($($arg),*),
            }
        }
    };
}

/// `dst = lhs · rhs` (or `dst += lhs · rhs` when `read_dst`), gemm's arguments: `m x k`
/// times `k x n`, each matrix by its column and row strides, on the [`chosen`] unit.
///
/// # Safety
/// As `gemm::gemm`: every element read or written lies inside its allocation, `dst`
/// aliases neither operand; the strides here must be non-negative.
#[allow(clippy::too_many_arguments)]
pub unsafe fn gemm(
    shape: [usize; 3],
    dst: *mut f32,
    dst_strides: [isize; 2],
    read_dst: bool,
    lhs: *const f32,
    lhs_strides: [isize; 2],
    rhs: *const f32,
    rhs_strides: [isize; 2],
    parallelism: gemm::Parallelism,
) {
    // SAFETY: the caller's contract; `chosen` only gives a unit the CPU has.
    unsafe { gemm_on(chosen(), shape, dst, dst_strides, read_dst, lhs, lhs_strides, rhs, rhs_strides, parallelism) }
}

/// [`gemm`] on `unit`, which this CPU must have.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_on(
    unit: Vector,
    [m, n, k]: [usize; 3],
    dst: *mut f32,
    [dst_cs, dst_rs]: [isize; 2],
    read_dst: bool,
    lhs: *const f32,
    [lhs_cs, lhs_rs]: [isize; 2],
    rhs: *const f32,
    [rhs_cs, rhs_rs]: [isize; 2],
    parallelism: gemm::Parallelism,
) {
    debug_assert!([dst_cs, dst_rs, lhs_cs, lhs_rs, rhs_cs, rhs_rs].iter().all(|&s| s >= 0));
    // Elsewhere every unit is gemm's own choice (NEON on aarch64).
    #[cfg(not(target_arch = "x86_64"))]
    let _ = unit;
    #[cfg(target_arch = "x86_64")]
    if unit != Vector::Native {
        // As `gemm::gemm` does before its own dispatch: its kernels want the destination
        // column-major, so a row-major one is computed as its transpose.
        let (m, n, dst_cs, dst_rs, lhs, lhs_cs, lhs_rs, rhs, rhs_cs, rhs_rs) = if dst_cs < dst_rs {
            (n, m, dst_rs, dst_cs, rhs, rhs_rs, rhs_cs, lhs, lhs_rs, lhs_cs)
        } else {
            (m, n, dst_cs, dst_rs, lhs, lhs_cs, lhs_rs, rhs, rhs_cs, rhs_rs)
        };
        // SAFETY: the caller's contract.
        unsafe {
            x86::gemm(
                unit,
                [m, n, k],
                dst,
                [dst_cs, dst_rs],
                read_dst,
                lhs,
                [lhs_cs, lhs_rs],
                rhs,
                [rhs_cs, rhs_rs],
                parallelism,
            )
        };
        return;
    }
    // SAFETY: the caller's contract.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            dst_cs,
            dst_rs,
            read_dst,
            lhs,
            lhs_cs,
            lhs_rs,
            rhs,
            rhs_cs,
            rhs_rs,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// gemm's x86-64 kernels called by unit, as its `gemm_basic` functions do (gemm 0.19).
#[cfg(target_arch = "x86_64")]
mod x86 {
    use gemm_common::gemm::gemm_basic_generic;
    use gemm_common::simd::{MixedSimd, V3, V4};
    use gemm_f32::microkernel::{avx512f::f32 as wide, fma::f32 as narrow};

    use super::Vector;

    /// Whether gemm's AVX-512 kernels can run here (every feature their SIMD type asks).
    pub fn wide_kernels_run() -> bool {
        <V4 as MixedSimd<f32, f32, f32, f32>>::try_new().is_some()
    }

    /// Whether gemm's AVX2 + FMA kernels can run here.
    pub fn narrow_kernels_run() -> bool {
        <V3 as MixedSimd<f32, f32, f32, f32>>::try_new().is_some()
    }

    /// Floats per register of each kernel set (private constants of gemm-f32).
    const WIDE_LANES: usize = 16;
    const NARROW_LANES: usize = 8;

    /// # Safety
    /// As [`super::gemm`], with a destination that is column-major (`dst_rs <= dst_cs`)
    /// and a `unit` that this CPU has.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn gemm(
        unit: Vector,
        [m, n, k]: [usize; 3],
        dst: *mut f32,
        [dst_cs, dst_rs]: [isize; 2],
        read_dst: bool,
        lhs: *const f32,
        [lhs_cs, lhs_rs]: [isize; 2],
        rhs: *const f32,
        [rhs_cs, rhs_rs]: [isize; 2],
        parallelism: gemm::Parallelism,
    ) {
        // gemm-f32's `gemm_basic` for one kernel set: its SIMD type, the kernels' module
        // and their floats per register.
        macro_rules! basic {
            ($simd:ty, $kernels:ident, $lanes:expr, $what:literal) => {
                gemm_basic_generic::<
                    _,
                    f32,
                    $lanes,
                    { $kernels::MR_DIV_N * $lanes },
                    { $kernels::NR },
                    { $kernels::MR_DIV_N },
                    { $kernels::H_M },
                    { $kernels::H_N },
                >(
                    <$simd as MixedSimd<f32, f32, f32, f32>>::try_new().expect($what),
                    m,
                    n,
                    k,
                    dst,
                    dst_cs,
                    dst_rs,
                    read_dst,
                    lhs,
                    lhs_cs,
                    lhs_rs,
                    rhs,
                    rhs_cs,
                    rhs_rs,
                    1.0,
                    1.0,
                    false,
                    false,
                    false,
                    |a: f32, b: f32, c: f32| a * b + c,
                    &$kernels::UKR,
                    &$kernels::H_UKR,
                    false,
                    parallelism,
                )
            };
        }
        match unit {
            // SAFETY: the caller's contract; `try_new` succeeds as the CPU has the unit.
            Vector::Avx512 => unsafe { basic!(V4, wide, WIDE_LANES, "the CPU has AVX-512F") },
            // SAFETY: as above.
            Vector::Avx2 => unsafe { basic!(V3, narrow, NARROW_LANES, "the CPU has AVX2 and FMA") },
            Vector::Native => unreachable!("the native unit goes through gemm::gemm"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_value_is_refused_and_auto_is_the_widest() {
        use std::ffi::OsStr;
        let ask = |v: &str| Vector::requested(Some(OsStr::new(v)));
        assert_eq!(Vector::requested(None).unwrap(), Vector::widest());
        for auto in ["auto", "", " AUTO "] {
            assert_eq!(ask(auto).unwrap(), Vector::widest());
        }
        let e = ask("avx1024").unwrap_err().to_string();
        assert!(e.contains("FITNETS_VECTOR") && e.contains("avx2"), "{e}");
        let e = ask(&"x".repeat(100_000)).unwrap_err().to_string();
        assert!(e.len() < 200 && e.contains('…'), "{e}");
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            let e = Vector::requested(Some(OsStr::from_bytes(b"avx\xff"))).unwrap_err().to_string();
            assert!(e.contains("not text"), "{e}");
        }
        for (v, value) in [(Vector::Avx512, "AVX512"), (Vector::Avx2, "avx2")] {
            match ask(value) {
                Ok(got) => assert!(got == v && v.available()),
                Err(e) => assert!(!v.available() && e.to_string().contains("this CPU has no"), "{e}"),
            }
        }
    }

    /// Every unit this CPU has computes the same products (to rounding) on shapes that
    /// take both orientations and a remainder in every dimension.
    #[test]
    fn every_available_unit_computes_the_same_product() {
        let [m, k, n] = [37, 29, 23];
        let lhs: Vec<f32> = (0..m * k).map(|i| ((i * 7919) % 97) as f32 / 97.0 - 0.5).collect();
        let rhs: Vec<f32> = (0..k * n).map(|i| ((i * 104_729) % 89) as f32 / 89.0 - 0.5).collect();
        let expected: Vec<f32> =
            (0..m * n).map(|i| (0..k).map(|j| lhs[i / n * k + j] * rhs[j * n + i % n]).sum()).collect();
        for unit in [Vector::Avx512, Vector::Avx2, Vector::Native].into_iter().filter(|v| v.available()) {
            for row_major_dst in [true, false] {
                let mut dst = vec![f32::NAN; m * n];
                let dst_strides = if row_major_dst { [1, n as isize] } else { [m as isize, 1] };
                // SAFETY: the strides describe `lhs` (m x k, row-major), `rhs` (k x n,
                // row-major) and `dst` (m x n).
                unsafe {
                    gemm_on(
                        unit,
                        [m, n, k],
                        dst.as_mut_ptr(),
                        dst_strides,
                        false,
                        lhs.as_ptr(),
                        [1, k as isize],
                        rhs.as_ptr(),
                        [1, n as isize],
                        gemm::Parallelism::None,
                    )
                };
                for i in 0..m {
                    for j in 0..n {
                        let got = if row_major_dst { dst[i * n + j] } else { dst[j * m + i] };
                        let want = expected[i * n + j];
                        assert!(
                            (got - want).abs() <= 1e-5 * want.abs().max(1.0),
                            "{unit:?} {row_major_dst} {i} {j}: {got} {want}"
                        );
                    }
                }
            }
        }
    }
}
