//! Parsers of option values shared by the subcommands: counts, epochs, numbers.

/// A count of at least one (`--valid`, `--subset`, `--test-subset`, `--batch`).
pub fn positive_count(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("not a whole number: {e}")),
    }
}

/// The most epochs a phase may ask for: more is a typo, not a schedule.
pub const MAX_EPOCHS: usize = 10_000;

/// A number of epochs, 0 to [`MAX_EPOCHS`].
pub fn epoch_count(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n <= MAX_EPOCHS => Ok(n),
        Ok(n) => Err(format!("{n} epochs: at most {MAX_EPOCHS}")),
        Err(e) => Err(format!("not a whole number: {e}")),
    }
}

/// A finite number above zero (learning rates, τ).
pub fn positive_number(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        Ok(v) => Err(format!("{v} is not a finite number above zero")),
        Err(e) => Err(format!("not a number: {e}")),
    }
}

/// A finite number, zero or more (the final learning rate, λ).
pub fn non_negative_number(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        Ok(v) => Err(format!("{v} is not a finite number of zero or more")),
        Err(e) => Err(format!("not a number: {e}")),
    }
}
