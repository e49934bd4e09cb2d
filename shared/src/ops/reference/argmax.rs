//! Argmax over logits: the first index of the largest value (TFLite's `ARG_MAX`).

/// Index of the first maximum; `0` for an empty slice.
pub fn argmax(logits: &[i8]) -> usize {
    let mut best = 0;
    for (i, &v) in logits.iter().enumerate() {
        if v > logits[best] {
            best = i;
        }
    }
    best
}
