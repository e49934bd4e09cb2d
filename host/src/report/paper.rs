//! The paper's own figures (Romero et al., *FitNets: Hints for Thin Deep Nets*, ICLR
//! 2015), as it prints them, to set beside ours. They are the only figures of the report
//! that are typed in, and the report labels them as the paper's.

/// What a table's figure measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Measure {
    /// Test misclassification, percent (Table 4).
    ErrorPercent,
    /// Test accuracy, percent (Table 5).
    AccuracyPercent,
}

impl Measure {
    /// The column heading: `test error`, `test accuracy`.
    pub fn name(self) -> &'static str {
        match self {
            Measure::ErrorPercent => "test error",
            Measure::AccuracyPercent => "test accuracy",
        }
    }

    /// This measure of a test accuracy in `[0, 1]`, in percent.
    pub fn of_accuracy(self, accuracy: f64) -> f64 {
        match self {
            Measure::ErrorPercent => 100.0 * (1.0 - accuracy),
            Measure::AccuracyPercent => 100.0 * accuracy,
        }
    }
}

/// One network of a paper table.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PaperRow {
    pub network: &'static str,
    /// The run of ours that does the same thing (`teacher`, `scratch`, `kd`, `hints`).
    pub run: Option<&'static str>,
    /// Parameters, as rounded in the paper.
    pub params: u64,
    /// Multiplications of one inference, where the paper gives them.
    pub mults: Option<u64>,
    /// The paper's figure, in the table's [`Measure`].
    pub value: f64,
}

/// A table of the paper.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PaperTable {
    pub title: &'static str,
    pub data_set: &'static str,
    pub measure: Measure,
    /// The teacher first.
    pub rows: &'static [PaperRow],
}

/// Table 4: MNIST, a ≈361K-parameter maxout teacher and a ≈30K-parameter FitNet
/// trained three ways.
pub const TABLE_4: PaperTable = PaperTable {
    title: "Table 4",
    data_set: "MNIST",
    measure: Measure::ErrorPercent,
    rows: &[
        PaperRow { network: "Teacher", run: Some("teacher"), params: 361_000, mults: None, value: 0.55 },
        PaperRow { network: "Standard backprop", run: Some("scratch"), params: 30_000, mults: None, value: 1.9 },
        PaperRow { network: "Knowledge distillation", run: Some("kd"), params: 30_000, mults: None, value: 0.65 },
        PaperRow { network: "FitNet (hints)", run: Some("hints"), params: 30_000, mults: None, value: 0.51 },
    ],
};

/// Table 5: CIFAR-10, FitNets 1-4 against a 9M-parameter teacher, all trained with hints.
pub const TABLE_5: PaperTable = PaperTable {
    title: "Table 5",
    data_set: "CIFAR-10",
    measure: Measure::AccuracyPercent,
    rows: &[
        PaperRow {
            network: "Teacher",
            run: Some("teacher"),
            params: 9_000_000,
            mults: Some(725_000_000),
            value: 90.18,
        },
        PaperRow { network: "FitNet 1", run: None, params: 250_000, mults: Some(30_000_000), value: 89.01 },
        PaperRow { network: "FitNet 2", run: None, params: 862_000, mults: Some(108_000_000), value: 91.06 },
        PaperRow { network: "FitNet 3", run: None, params: 1_600_000, mults: Some(392_000_000), value: 91.10 },
        PaperRow { network: "FitNet 4", run: None, params: 2_500_000, mults: Some(382_000_000), value: 91.61 },
    ],
};

/// The table for data of `input` (`[height, width, channels]`) and `classes`: Table 4
/// (MNIST) beside MNIST-like data (28x28 grey images of 10 classes: MNIST,
/// Fashion-MNIST), Table 5 beside CIFAR-10-like data (32x32 colour images of 10
/// classes); none beside anything else, which the paper did not measure.
pub fn for_data(input: [usize; 3], classes: usize) -> Option<&'static PaperTable> {
    match (input, classes) {
        ([28, 28, 1], 10) => Some(&TABLE_4),
        ([32, 32, 3], 10) => Some(&TABLE_5),
        _ => None,
    }
}
