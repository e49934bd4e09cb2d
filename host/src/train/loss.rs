//! The losses of the three methods and the KD weight schedule.
//!
//! - Labels: `H(y, P_S)`, the cross-entropy of the student's softmax with the labels.
//! - Knowledge distillation (Hinton et al., as the FitNets paper uses it):
//!   `H(y, P_S) + λ H(P_T^τ, P_S^τ)` where `P^τ = softmax(logits / τ)`; no `τ²` factor,
//!   as in the authors' code.
//! - Hints: `½ ‖u_h − r(v_g)‖²` per image, averaged over the batch.

use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};

/// Mean cross-entropy of `logits` `[N, K]` with integer `labels` `[N]`.
pub fn cross_entropy<B: Backend>(logits: Tensor<B, 2>, labels: Tensor<B, 1, Int>) -> Tensor<B, 1> {
    let [n, _] = logits.dims();
    let log_p = log_softmax(logits, 1);
    let picked = log_p.gather(1, labels.reshape([n, 1]));
    picked.mean().neg()
}

/// Mean cross-entropy `H(softmax(teacher/τ), softmax(student/τ))`.
pub fn soft_cross_entropy<B: Backend>(student: Tensor<B, 2>, teacher: Tensor<B, 2>, tau: f64) -> Tensor<B, 1> {
    let [n, _] = student.dims();
    let target = softmax(teacher.div_scalar(tau), 1);
    let log_p = log_softmax(student.div_scalar(tau), 1);
    (target * log_p).sum().div_scalar(n as f64).neg()
}

/// The KD objective `H(y, P_S) + λ H(P_T^τ, P_S^τ)`.
pub fn kd_loss<B: Backend>(
    student: Tensor<B, 2>,
    teacher: Tensor<B, 2>,
    labels: Tensor<B, 1, Int>,
    lambda: f64,
    tau: f64,
) -> Tensor<B, 1> {
    cross_entropy(student.clone(), labels) + soft_cross_entropy(student, teacher, tau).mul_scalar(lambda)
}

/// `½ ‖hint − prediction‖²` per image, averaged over the batch; both `[N, C, H, W]`.
pub fn hint_loss<B: Backend>(prediction: Tensor<B, 4>, hint: Tensor<B, 4>) -> Tensor<B, 1> {
    let [n, ..] = prediction.dims();
    (prediction - hint).powi_scalar(2).sum().div_scalar(2.0 * n as f64)
}

/// λ annealed linearly from `start` at the first step to `end` at the last.
pub fn lambda_at(step: usize, total_steps: usize, start: f64, end: f64) -> f64 {
    if total_steps <= 1 {
        return start;
    }
    start + (end - start) * step as f64 / (total_steps - 1) as f64
}
