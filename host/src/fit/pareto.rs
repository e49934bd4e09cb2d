//! The Pareto front of accuracy against time and flash, and successive halving's cut.

/// One trained candidate, as the front sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    /// Validation accuracy (higher is better).
    pub accuracy: f64,
    /// Estimated milliseconds, or predicted instructions where the core has no clock
    /// model: anything where lower is better (`f64::INFINITY` when unknown).
    pub time: f64,
    pub flash: u64,
}

impl Point {
    /// Whether `self` is at least as good as `other` in everything and better in one.
    pub fn dominates(&self, other: &Point) -> bool {
        let no_worse = self.accuracy >= other.accuracy && self.time <= other.time && self.flash <= other.flash;
        let better = self.accuracy > other.accuracy || self.time < other.time || self.flash < other.flash;
        no_worse && better
    }
}

/// Indices of the points no other point dominates, in input order.
pub fn front(points: &[Point]) -> Vec<usize> {
    (0..points.len()).filter(|&i| !points.iter().any(|p| p.dominates(&points[i]))).collect()
}

/// The `keep` best of `ranked` (index, point) by accuracy; ties go to the faster, then
/// the smaller, then the earlier: successive halving's cut, reproducible.
pub fn best(ranked: &[(usize, Point)], keep: usize) -> Vec<usize> {
    let mut order: Vec<&(usize, Point)> = ranked.iter().collect();
    order.sort_by(|(i, a), (j, b)| {
        b.accuracy.total_cmp(&a.accuracy).then(a.time.total_cmp(&b.time)).then(a.flash.cmp(&b.flash)).then(i.cmp(j))
    });
    order.into_iter().take(keep).map(|(i, _)| *i).collect()
}

/// Candidates per rung of successive halving: `n` at first, a `eta`-th of the last
/// (rounded up) each next, down to one.
pub fn rung_sizes(n: usize, eta: usize) -> Vec<usize> {
    let mut sizes = vec![n.max(1)];
    while let Some(&last) = sizes.last()
        && last > 1
    {
        sizes.push(last.div_ceil(eta.max(2)));
    }
    sizes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(accuracy: f64, time: f64, flash: u64) -> Point {
        Point { accuracy, time, flash }
    }

    #[test]
    fn the_front_keeps_what_nothing_beats() {
        let points =
            [p(0.90, 50.0, 100), p(0.85, 20.0, 100), p(0.80, 60.0, 200), p(0.90, 50.0, 90), p(0.70, 10.0, 500)];
        // 0 is beaten by 3 (same accuracy and time, less flash); 2 by 0, 1 and 3.
        assert_eq!(front(&points), vec![1, 3, 4]);
        // Equal points do not dominate each other: both stay.
        assert_eq!(front(&[p(0.5, 1.0, 1), p(0.5, 1.0, 1)]), vec![0, 1]);
    }

    #[test]
    fn halving_keeps_the_most_accurate_then_the_fastest() {
        let ranked = [(0, p(0.80, 5.0, 1)), (1, p(0.90, 9.0, 1)), (2, p(0.90, 7.0, 1)), (3, p(0.10, 1.0, 1))];
        assert_eq!(best(&ranked, 2), vec![2, 1]);
        assert_eq!(best(&ranked, 10).len(), 4);
        assert_eq!(rung_sizes(24, 3), vec![24, 8, 3, 1]);
        assert_eq!(rung_sizes(1, 3), vec![1]);
        assert_eq!(rung_sizes(5, 2), vec![5, 3, 2, 1]);
    }
}
