//! Students generated for the depth sweep: on budget at every depth, stages and the
//! guided layer where the paper puts them, the regressor by the paper's rule.

use fitnets::method::regressor_shape;
use fitnets::model::config::LayerConfig;
use fitnets::model::generate::{self, StudentSpec, TOLERANCE};
use fitnets::model::{NetConfig, count};

const FITNET_MACS: u64 = 5_947_032;

fn spec(depth: usize, budget_macs: u64) -> StudentSpec {
    StudentSpec { depth, budget_macs, input: [28, 28, 1], classes: 10 }
}

#[test]
fn every_depth_hits_the_budget() {
    for budget in [FITNET_MACS, 1_000_000, 30_000_000] {
        let mut previous_width = usize::MAX;
        for depth in [3, 4, 5, 6, 7, 9, 11, 13] {
            let (config, text) = generate::student(&spec(depth, budget)).unwrap();
            let (_, macs) = count::totals(&config).unwrap();
            let off = (macs as f64 - budget as f64).abs() / budget as f64;
            assert!(off <= TOLERANCE, "depth {depth}: {macs} MACs, {:.1}% off {budget}", 100.0 * off);
            let widths: Vec<usize> = config
                .layers
                .iter()
                .filter_map(|l| match l {
                    LayerConfig::Conv { units, .. } => Some(*units),
                    _ => None,
                })
                .collect();
            assert_eq!(widths.len(), depth);
            // Deeper students are thinner at the same budget.
            let widest = *widths.iter().max().unwrap();
            assert!(widest <= previous_width, "depth {depth} is wider ({widest}) than the one before");
            previous_width = widest;
            // The TOML written for the run reads back to the same network.
            assert_eq!(NetConfig::parse(&text).unwrap(), config);
        }
    }
}

#[test]
fn stages_spread_the_layers_and_the_guided_layer_ends_the_middle_stage() {
    assert_eq!(generate::stages(3), [1, 1, 1]);
    assert_eq!(generate::stages(5), [1, 2, 2]);
    assert_eq!(generate::stages(7), [2, 2, 3]);
    assert_eq!(generate::stages(13), [4, 4, 5]);
    let teacher =
        NetConfig::load(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/mnist-teacher.toml")))
            .unwrap();
    for depth in [3, 6, 13] {
        let (config, _) = generate::student(&spec(depth, FITNET_MACS)).unwrap();
        let shapes = config.shapes().unwrap();
        let guided = config.layer_index("pool2").unwrap();
        assert_eq!(config.guided.as_deref(), Some("pool2"));
        let [_, h, w] = shapes[guided];
        assert_eq!([h, w], [7, 7], "depth {depth}");
        // The guided layer comes after 2/3 of the convs or so, as the FitNet's 4th of 6.
        let convs_before = config.layers[..guided].iter().filter(|l| matches!(l, LayerConfig::Conv { .. })).count();
        assert_eq!(convs_before, generate::stages(depth)[0] + generate::stages(depth)[1]);
        // The paper's rule: a valid regressor with kernel N_g - N_h + 1 = 7 - 3 + 1.
        let regressor = regressor_shape(&config, &teacher).unwrap();
        assert_eq!(regressor.kernel, [5, 5]);
        assert_eq!(regressor.padding, [0, 0]);
        assert_eq!(regressor.units, 48);
    }
}

#[test]
fn impossible_students_are_clear_errors() {
    let error = generate::student(&spec(2, FITNET_MACS)).unwrap_err().to_string();
    assert!(error.contains("at least 3 conv layers"), "{error}");
    let error = generate::student(&spec(13, 10_000)).unwrap_err().to_string();
    assert!(error.contains("cannot hold 13 layers"), "{error}");
    let tiny = StudentSpec { depth: 3, budget_macs: FITNET_MACS, input: [3, 3, 1], classes: 10 };
    assert!(generate::student(&tiny).unwrap_err().to_string().contains("4x4"));
}
