//! The search of `fitnets fit`: price and prune the space, pick the candidates, train
//! them by successive halving, export the answer (see the module docs of [`super`]).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail, ensure};

use super::Search;
use super::pareto::{self, Point};
use super::record::{Answer, Record, Rung, RungResult, SETTING_FILE, Setting};
use super::space::{self, Candidate, Pricer, join_widths};
use super::write;
use crate::compare::{StudentPlan, finished};
use crate::data::DataSpec;
use crate::method::Method;
use crate::model::NetConfig;
use crate::quant::eval::evaluate_int8;
use crate::quant::export::{ExportOptions, class_labels, export_run};
use crate::run::RunInfo;
use crate::run::dir::{RunDir, write_atomic};
use crate::train::schedule::Schedule;

/// Prices the space, trains the search (unless a dry run) and writes its answer.
pub fn fit(args: &Search) -> anyhow::Result<()> {
    let target = args.target.clone();
    ensure!(
        args.first_epochs <= args.max_epochs,
        "--first-epochs {} is more than --max-epochs {}",
        args.first_epochs,
        args.max_epochs
    );
    let teacher_info: RunInfo =
        RunDir::open(&args.teacher)?.read_json("run.json").context("reading the teacher run")?;
    let teacher_result = finished(&args.teacher)
        .with_context(|| format!("the teacher run in {} has not finished", args.teacher.display()))?;
    let teacher = &teacher_info.config;
    let budgets = match &args.macs {
        Some(list) => {
            ensure!(!list.is_empty(), "--macs: give at least one budget");
            for &m in list {
                ensure!((1..=1_000_000_000_000).contains(&m), "--macs {m}: 1 to 10^12 multiply-accumulates");
            }
            list.clone()
        }
        None => space::ladder(teacher.input[0] * teacher.input[1]),
    };
    let reference = args.reference_config.clone();
    let reference_config = match &reference {
        Some(path) => {
            Some((path, NetConfig::load(path).context("--reference-config (or leave it out with --no-reference)")?))
        }
        None => None,
    };
    if let Some((path, config)) = &reference_config {
        ensure!(
            config.input == teacher.input && config.classes == teacher.classes,
            "--reference-config {} takes {:?} images in {} classes, the teacher {:?} in {}: give a reference for \
             this data, or --no-reference",
            path.display(),
            config.input,
            config.classes,
            teacher.input,
            teacher.classes
        );
    }
    let labels = class_labels(None, &teacher_info.data.classes, &args.data, teacher.classes)?;
    let normalization = &teacher_info.data.normalization;
    let pricer = Pricer::new(&target, normalization, &labels, teacher)?;

    // The data must be readable before anything is written (training checks that it is
    // the teacher's).
    if !args.dry_run {
        args.data.for_input(teacher.input).identity().context("the training data (--data, --cifar)")?;
    }
    // Students hold out the teacher's validation images unless told otherwise.
    let mut data = args.data.clone();
    data.valid = data.valid.or(Some(teacher_info.data.valid_images));
    let setting = Setting {
        teacher: args.teacher.clone(),
        target: target.clone(),
        budgets: budgets.clone(),
        candidates: usize::from(args.candidates),
        eta: usize::from(args.eta),
        first_epochs: usize::from(args.first_epochs),
        max_epochs: usize::from(args.max_epochs),
        subset: data.subset,
        valid: data.valid.unwrap_or(teacher_info.data.valid_images),
        test_subset: data.test_subset,
        split_seed: data.split_seed,
        schedule: Schedule { epochs: 0, ..args.schedule.clone() },
        reference: reference.clone(),
    };

    // The space, priced: everything before any training, so a budget nothing meets
    // fails at once.
    eprintln!("fit: pricing the students for {}", target.describe());
    let (candidates, texts): (Vec<Candidate>, Vec<String>) =
        space::generate(&pricer, teacher.input, teacher.classes, &budgets)?.into_iter().unzip();
    ensure!(
        !candidates.is_empty(),
        "no student can be generated for {:?} images at the budgets {budgets:?}: each is too small for 3 conv \
         layers one unit wide, or past the sizes a config may have; give --macs between those",
        teacher.input
    );
    let fitting: Vec<usize> = (0..candidates.len()).filter(|&i| candidates[i].pruned.is_none()).collect();
    if fitting.is_empty() {
        let smallest = candidates
            .iter()
            .min_by(|a, b| a.price.flash_bytes.cmp(&b.price.flash_bytes).then(a.macs.cmp(&b.macs)))
            .context("no candidates")?;
        bail!(
            "no student of the {} generated fits {}. The smallest, {} ({} units, {} MACs), needs {}: {}",
            candidates.len(),
            target.describe(),
            smallest.id,
            join_widths(&smallest.widths),
            smallest.macs,
            write::needs(&smallest.price),
            smallest.pruned.as_deref().unwrap_or("")
        );
    }
    let selected = select(&candidates, &fitting, usize::from(args.candidates));
    eprintln!(
        "fit: {} students generated, {} fit, {} selected for the search",
        candidates.len(),
        fitting.len(),
        selected.len()
    );

    let runs = RunDir::create(&args.runs)?;
    check_setting(&runs, &setting)?;
    let mut record = Record {
        setting,
        teacher_name: teacher_info.network_name(),
        teacher_test_accuracy: teacher_result.test_accuracy,
        candidates: candidates.clone(),
        selected: selected.iter().map(|&i| candidates[i].id.clone()).collect(),
        rungs: Vec::new(),
        chosen: None,
        reference: None,
    };
    for &i in &selected {
        RunDir::create(&candidate_dir(&args.runs, &candidates[i].id))?.write("config.toml", texts[i].as_bytes())?;
    }
    if args.dry_run {
        write::all(&record, &args.runs)?;
        print!("{}", write::markdown(&record));
        return Ok(());
    }

    // Successive halving.
    let plan = |epochs: usize| StudentPlan {
        student_epochs: epochs,
        hint_epochs: (epochs / 4).max(1),
        data: data.clone(),
        schedule: args.schedule.clone(),
        compute: args.compute.clone(),
    };
    let sizes = pareto::rung_sizes(selected.len(), usize::from(args.eta));
    let mut current: Vec<usize> = selected.clone();
    for rung in 0..sizes.len() {
        let epochs = record.setting.rung_epochs(rung);
        let plan = plan(epochs);
        let mut results = Vec::new();
        for (n, &i) in current.iter().enumerate() {
            let candidate = &candidates[i];
            let dir = candidate_dir(&args.runs, &candidate.id);
            let run = rung_run(&dir, &record.setting, rung);
            if finished(&run).is_none() {
                eprintln!(
                    "fit: rung {} of {}, {} epochs: {} ({} of {})",
                    rung + 1,
                    sizes.len(),
                    epochs,
                    candidate.id,
                    n + 1,
                    current.len()
                );
            }
            plan.train(&dir.join("config.toml"), Method::Hints, &args.teacher, &run, 0)?;
            let result = finished(&run).with_context(|| format!("{} did not finish", run.display()))?;
            results.push(RungResult {
                id: candidate.id.clone(),
                valid_accuracy: result.valid_accuracy,
                test_accuracy: result.test_accuracy,
                train_seconds: result.train_seconds,
            });
        }
        let ranked: Vec<(usize, Point)> =
            current.iter().zip(&results).map(|(&i, r)| (i, candidates[i].point(r.valid_accuracy))).collect();
        let keep = sizes.get(rung + 1).copied().unwrap_or(1);
        current = pareto::best(&ranked, keep);
        record.rungs.push(Rung { epochs, hint_epochs: plan.hint_epochs, results });
        // Partial results are worth seeing while the rest trains.
        write::all(&record, &args.runs)?;
    }
    let last_rung = record.rungs.len() - 1;
    let chosen = &candidates[current[0]];
    let chosen_run = rung_run(&candidate_dir(&args.runs, &chosen.id), &record.setting, last_rung);
    record.chosen = Some(answer(&args.runs, &chosen_run, "student.fnet", &pricer, &args.data, chosen.widths.clone())?);

    if let Some((path, config)) = reference_config {
        let dir = args.runs.join("reference");
        RunDir::create(&dir)?.write(
            "config.toml",
            std::fs::read(path).with_context(|| format!("reading {}", path.display()))?.as_slice(),
        )?;
        let run = dir.join("run");
        let epochs = record.setting.rung_epochs(last_rung);
        if finished(&run).is_none() {
            eprintln!("fit: the reference {} with the last rung's setting, {epochs} epochs", config.name);
        }
        plan(epochs).train(&dir.join("config.toml"), Method::Hints, &args.teacher, &run, 0)?;
        let widths = config.conv_widths();
        record.reference = Some(answer(&args.runs, &run, "reference.fnet", &pricer, &args.data, widths)?);
    }
    write::all(&record, &args.runs)?;
    print!("{}", write::markdown(&record));
    Ok(())
}

/// The run of a candidate (in `dir`) for rung `rung`: that of the first rung with as
/// many epochs, so that rungs capped at `max_epochs` do not train the same run twice.
fn rung_run(dir: &Path, setting: &Setting, rung: usize) -> PathBuf {
    let epochs = setting.rung_epochs(rung);
    let first = (0..rung).find(|&r| setting.rung_epochs(r) == epochs).unwrap_or(rung);
    dir.join(format!("rung-{first}"))
}

/// The students of the search: half of `k` spread over the edge candidates (the
/// widest of each shape that fits), the rest over all the others that fit.
fn select(candidates: &[Candidate], fitting: &[usize], k: usize) -> Vec<usize> {
    let edges: Vec<usize> = fitting.iter().copied().filter(|&i| candidates[i].edge).collect();
    let mut picked = spread(candidates, &edges, k / 2);
    let rest: Vec<usize> = fitting.iter().copied().filter(|i| !picked.contains(i)).collect();
    picked.extend(spread(candidates, &rest, k - picked.len()));
    picked
}

/// `k` of the fitting candidates spread evenly over their time, the fastest and the
/// slowest included.
fn spread(candidates: &[Candidate], fitting: &[usize], k: usize) -> Vec<usize> {
    let mut order = fitting.to_vec();
    order.sort_by(|&a, &b| candidates[a].time().total_cmp(&candidates[b].time()).then(a.cmp(&b)));
    if order.len() <= k || k == 0 {
        order.truncate(k);
        return order;
    }
    // Slowest first: with equal accuracy the halving keeps the faster one anyway.
    let mut picked: Vec<usize> =
        (0..k).map(|j| order[if k == 1 { order.len() - 1 } else { j * (order.len() - 1) / (k - 1) }]).collect();
    picked.dedup();
    picked.reverse();
    picked
}

fn candidate_dir(runs: &Path, id: &str) -> PathBuf {
    runs.join("candidates").join(id)
}

/// Exports the finished `run` to `runs/blob` and tests it with shared's kernels.
fn answer(
    runs: &Path,
    run: &Path,
    blob: &str,
    pricer: &Pricer<'_>,
    data: &DataSpec,
    widths: Vec<usize>,
) -> anyhow::Result<Answer> {
    let info: RunInfo = RunDir::open(run)?.read_json("run.json")?;
    let result = finished(run).with_context(|| format!("{} did not finish", run.display()))?;
    let output = runs.join(blob);
    // The run's own splits: its test set is the one the blob is tested on.
    let (exported, options, splits) = export_run(run, data, None, &ExportOptions::default())?;
    write_atomic(&output, &exported.blob)?;
    print!("{}", exported.describe(&options, &output));
    let bytes = exported.blob;
    let model = fitnets_shared::Model::from_bytes(&bytes)
        .map_err(|e| anyhow::anyhow!("{} is not a valid model: {e}", output.display()))?;
    let test = splits.test;
    let int8 = evaluate_int8(&model, &test).with_context(|| format!("testing {}", output.display()))?;
    let price = pricer.price_blob(&bytes)?;
    Ok(Answer {
        name: info.network_name(),
        run: run.strip_prefix(runs).unwrap_or(run).to_path_buf(),
        blob: PathBuf::from(blob),
        widths,
        params: result.params,
        macs: result.macs,
        valid_accuracy: result.valid_accuracy,
        test_accuracy: result.test_accuracy,
        int8_test_accuracy: int8.accuracy,
        test_images: test.len(),
        pruned: space::verdict(&price, pricer.target),
        price,
    })
}

/// Writes `setting.json` for a new search, or checks that an existing one has `setting`.
fn check_setting(runs: &RunDir, setting: &Setting) -> anyhow::Result<()> {
    if !runs.join(SETTING_FILE).exists() {
        return runs.write_json(SETTING_FILE, setting);
    }
    let saved: Setting = runs.read_json(SETTING_FILE)?;
    ensure!(
        saved == *setting,
        "{} holds a search with another setting; pass its options again or choose another --runs.\n  It has:      \
         {}\n  This call asks: {}",
        runs.path().display(),
        serde_json::to_string(&saved)?,
        serde_json::to_string(setting)?
    );
    Ok(())
}
