//! Matrix products on the vector unit chosen at start ([`super::vector`]), for the
//! kernels of [`super::conv`] and [`super::unrolled`].

/// `dst = lhs · rhs` (or `dst += …` when `accumulate`), each matrix given by its
/// shape and its row and column strides, `dst` contiguous; on rayon's threads when
/// `parallel`.
#[allow(clippy::too_many_arguments)]
pub(super) fn matmul(
    [m, k, n]: [usize; 3],
    dst: &mut [f32],
    accumulate: bool,
    lhs: &[f32],
    lhs_strides: [usize; 2],
    rhs: &[f32],
    rhs_strides: [usize; 2],
    parallel: bool,
) {
    matmul_rows([m, k, n], dst, n, accumulate, lhs, lhs_strides, rhs, rhs_strides, parallel);
}

/// [`matmul`] into rows of `dst` that are `dst_rs` values apart.
#[allow(clippy::too_many_arguments)]
pub(super) fn matmul_rows(
    [m, k, n]: [usize; 3],
    dst: &mut [f32],
    dst_rs: usize,
    accumulate: bool,
    lhs: &[f32],
    [lhs_rs, lhs_cs]: [usize; 2],
    rhs: &[f32],
    [rhs_rs, rhs_cs]: [usize; 2],
    parallel: bool,
) {
    assert!(n <= dst_rs && (m == 0 || n == 0 || dst.len() >= (m - 1) * dst_rs + n));
    assert!(m == 0 || k == 0 || lhs.len() > (m - 1) * lhs_rs + (k - 1) * lhs_cs);
    assert!(k == 0 || n == 0 || rhs.len() > (k - 1) * rhs_rs + (n - 1) * rhs_cs);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        // A product over nothing: zeros (gemm is not asked to handle it).
        if !accumulate {
            dst.chunks_mut(dst_rs).take(m).for_each(|row| row[..n].fill(0.0));
        }
        return;
    }
    // SAFETY: the asserts above keep every element gemm reads inside `lhs` and `rhs`
    // and every element it writes inside `dst` (`m` rows of `n`, `dst_rs` apart); `dst`
    // is borrowed mutably, so it aliases neither operand.
    unsafe {
        super::vector::gemm(
            [m, n, k],
            dst.as_mut_ptr(),
            [1, dst_rs as isize],
            accumulate,
            lhs.as_ptr(),
            [lhs_cs as isize, lhs_rs as isize],
            rhs.as_ptr(),
            [rhs_cs as isize, rhs_rs as isize],
            if parallel { gemm::Parallelism::Rayon(rayon::current_num_threads()) } else { gemm::Parallelism::None },
        );
    }
}
