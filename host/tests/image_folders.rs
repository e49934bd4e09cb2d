//! Image folders end to end through the `fitnets` binary: generated folders of mixed
//! formats, sizes and colours with a corrupt file, trained on, exported, evaluated and
//! asked about single pictures; the errors of folders that cannot be a data set; and an
//! IDX set written out as PNG files being the same data set.

use std::path::Path;

use image::{DynamicImage, GrayImage, ImageFormat, RgbImage};

mod common;
use common::{STUDENT, TEACHER, ok, refused, write_idx};

const CLASSES: [&str; 3] = ["bag", "coat", "shoe"];

/// An image of class `label` at `side` pixels: a bright band on the class's rows (as
/// `write_idx` draws them, scaled), dark elsewhere, with a little noise.
fn picture(label: usize, side: u32, i: usize, rgb: bool) -> DynamicImage {
    let value = |x: u32, y: u32| {
        let row = (y * 8 / side) as usize;
        let noise = ((i * 31 + (x * 7 + y * 3) as usize) % 40) as u8;
        if row % 3 == label { 180 + noise } else { noise }
    };
    if rgb {
        RgbImage::from_fn(side, side, |x, y| {
            let v = value(x, y);
            image::Rgb([v, v, v])
        })
        .into()
    } else {
        GrayImage::from_fn(side, side, |x, y| image::Luma([value(x, y)])).into()
    }
}

/// A class-per-folder set: `per_class` pictures per class in rotating formats, sizes
/// (8 or 16 pixels) and colours, and one truncated PNG in `coat/`.
fn write_mixed_folder(dir: &Path, per_class: usize) {
    let formats = [
        ("png", ImageFormat::Png),
        ("jpg", ImageFormat::Jpeg),
        ("bmp", ImageFormat::Bmp),
        ("pgm", ImageFormat::Pnm),
        ("tiff", ImageFormat::Tiff),
        ("gif", ImageFormat::Gif),
    ];
    for (label, class) in CLASSES.iter().enumerate() {
        std::fs::create_dir_all(dir.join(class)).unwrap();
        for i in 0..per_class {
            let (ext, format) = formats[i % formats.len()];
            let rgb = i % 2 == 1 && ext != "pgm";
            let side = if i % 3 == 0 { 16 } else { 8 };
            let image = picture(label, side, i, rgb);
            let image = if ext == "gif" { DynamicImage::from(image.to_rgba8()) } else { image };
            image.save_with_format(dir.join(class).join(format!("{i:04}.{ext}")), format).unwrap();
        }
    }
    let good = std::fs::read(dir.join("coat/0000.png")).unwrap();
    std::fs::write(dir.join("coat/9999.png"), &good[..good.len() / 2]).unwrap();
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn train_export_predict_and_eval_on_an_image_folder() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).display().to_string();
    write_mixed_folder(&dir.path().join("shop"), 60);
    std::fs::write(dir.path().join("teacher.toml"), TEACHER).unwrap();
    std::fs::write(dir.path().join("student.toml"), STUDENT).unwrap();
    let (data, teacher, student) = (path("shop"), path("teacher"), path("hints"));
    let train = ["train", "teacher", "--config", &path("teacher.toml"), "--run", &teacher, "--data", &data];
    let short = ["--epochs", "2", "--batch", "16"];

    // The corrupt picture stops the load, named, before any run is written.
    let args = [&train[..], &short].concat();
    refused(&args, &["coat/9999.png", "--skip-bad"]);
    assert!(!dir.path().join("teacher").exists(), "a refused start leaves no run");

    let (_, stderr) = ok(&[&args[..], &["--skip-bad"]].concat());
    assert!(stderr.contains("decoded 180 images of 3 classes"), "{stderr}");
    assert!(stderr.contains("skipped 1 bad files") && stderr.contains("coat/9999.png"), "{stderr}");
    let record = json(&dir.path().join("teacher/run.json"));
    assert_eq!(record["data"]["classes"], serde_json::json!(CLASSES));
    assert_eq!(record["data"]["images"]["resize"], "stretch");
    assert_eq!(record["data"]["images"]["skipped"], 1);
    assert_eq!(record["data"]["name"], "shop");

    // The student distils from it, from the cache and with the teacher's conversion.
    let (_, stderr) = ok(&[
        "train",
        "student",
        "--config",
        &path("student.toml"),
        "--method",
        "hints",
        "--hint-epochs",
        "1",
        "--teacher",
        &teacher,
        "--run",
        &student,
        "--data",
        &data,
        "--skip-bad",
        "--epochs",
        "2",
        "--batch",
        "16",
    ]);
    assert!(stderr.contains("from the cache"), "{stderr}");
    assert_eq!(json(&dir.path().join("hints/run.json"))["data"]["classes"], serde_json::json!(CLASSES));

    // Export: the blob's labels are the folder names.
    let blob = path("shop.fnet");
    ok(&["export", &student, "-o", &blob, "--data", &data, "--skip-bad"]);
    let (inspect, _) = ok(&["inspect", &blob]);
    assert!(CLASSES.iter().all(|c| inspect.contains(c)), "{inspect}");

    // Eval of the run and of the blob on the folder's test split.
    let (stdout, _) = ok(&["eval", &student, "--data", &data, "--skip-bad"]);
    assert!(stdout.contains("test accuracy"), "{stdout}");
    let (stdout, _) = ok(&["eval", &blob, "--data", &data, "--skip-bad"]);
    assert!(stdout.contains("test accuracy"), "{stdout}");

    // Predict: single files of any format and size, and a whole folder.
    let shoe = dir.path().join("shop/shoe/0000.png").display().to_string();
    let coat = dir.path().join("shop/coat/0001.jpg").display().to_string();
    let (table, _) = ok(&["predict", &blob, &shoe, &coat]);
    assert!(table.contains("int8") && table.contains("0000.png") && table.contains("0001.jpg"), "{table}");
    let (text, _) = ok(&["predict", &blob, &shoe, "--json", "--top", "2"]);
    let answer: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(answer["scores"], "dequantized_logits");
    let top = answer["predictions"][0]["top"].as_array().unwrap();
    assert_eq!(top.len(), 2);
    assert!(CLASSES.contains(&top[0]["label"].as_str().unwrap()));
    assert!(top[0]["score"].as_f64().unwrap() >= top[1]["score"].as_f64().unwrap());

    let (text, _) = ok(&["predict", &student, &path("shop/bag"), "--json"]);
    let answer: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(answer["scores"], "probabilities");
    assert_eq!(answer["predictions"].as_array().unwrap().len(), 60, "every picture of bag/");
    let probabilities: f64 =
        answer["predictions"][0]["top"].as_array().unwrap().iter().map(|s| s["score"].as_f64().unwrap()).sum();
    assert!(probabilities > 0.0 && probabilities <= 1.0 + 1e-5, "{probabilities}");

    let (info, _) = ok(&["info", &student]);
    assert!(info.contains("classes: bag, coat, shoe") && info.contains("--resize stretch (1 bad files"), "{info}");

    // The report names the classes and the conversion.
    ok(&["report", "--runs", &path(""), "-o", &path("report"), "--data", &data, "--skip-bad"]);
    let report = std::fs::read_to_string(dir.path().join("report/report.md")).unwrap();
    assert!(report.contains("0 bag, 1 coat, 2 shoe"), "{report}");
    assert!(report.contains("`--resize stretch`; 1 bad files skipped"), "{report}");

    // What predict refuses: a corrupt picture (before any output), another resize than
    // the run's, a missing file.
    let corrupt = dir.path().join("shop/coat/9999.png").display().to_string();
    refused(&["predict", &blob, &shoe, &corrupt], &["9999.png"]);
    refused(&["predict", &student, &shoe, "--resize", "fit"], &["--resize fit", "stretch"]);
    refused(&["predict", &blob, &path("nothing.png")], &["nothing.png"]);
    refused(&["predict", &path("shop"), &shoe], &["run.json"]);
}

#[test]
fn folders_that_cannot_be_a_data_set_are_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).display().to_string();
    std::fs::write(dir.path().join("teacher.toml"), TEACHER).unwrap();
    let train = |data: &str, config: &str| -> Vec<String> {
        ["train", "teacher", "--config", config, "--run", &path("run"), "--data", data, "--epochs", "1"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    let refuse = |args: Vec<String>, needles: &[&str]| {
        refused(&args.iter().map(String::as_str).collect::<Vec<_>>(), needles);
        assert!(!dir.path().join("run").exists(), "a refused start leaves no run");
    };
    let teacher = path("teacher.toml");

    let empty_class = dir.path().join("empty");
    write_mixed_folder(&empty_class, 12);
    std::fs::create_dir_all(empty_class.join("dress")).unwrap();
    refuse(train(&path("empty"), &teacher), &["dress", "no image files"]);

    let single = dir.path().join("single");
    std::fs::create_dir_all(single.join("bag")).unwrap();
    picture(0, 8, 0, false).save(single.join("bag/1.png")).unwrap();
    refuse(train(&path("single"), &teacher), &["only one class", "bag"]);

    let stray = dir.path().join("stray");
    write_mixed_folder(&stray, 12);
    std::fs::remove_file(stray.join("coat/9999.png")).unwrap();
    std::fs::write(stray.join("bag/labels.csv"), "x").unwrap();
    refuse(train(&path("stray"), &teacher), &["labels.csv", "not an image file name"]);

    refuse(train(&path("nowhere"), &teacher), &["nowhere", "not a folder"]);
    let long = dir.path().join("long");
    write_mixed_folder(&long, 12);
    std::fs::remove_file(long.join("coat/9999.png")).unwrap();
    std::fs::rename(long.join("coat"), long.join("a-coat-with-a-name-far-too-long-for-a-label")).unwrap();
    refuse(train(&path("long"), &teacher), &["a-coat-with-a-name-far-too-long-for-a-label", "at most 32"]);
    std::fs::create_dir_all(dir.path().join("flat")).unwrap();
    std::fs::write(dir.path().join("flat/readme.txt"), "x").unwrap();
    refuse(train(&path("flat"), &teacher), &["neither IDX files", "class folders"]);

    let good = dir.path().join("good");
    write_mixed_folder(&good, 12);
    std::fs::remove_file(good.join("coat/9999.png")).unwrap();
    let two_channels = dir.path().join("two.toml");
    std::fs::write(&two_channels, TEACHER.replace("input = [8, 8, 1]", "input = [8, 8, 2]")).unwrap();
    refuse(train(&path("good"), &two_channels.display().to_string()), &["2 channels", "1 or 3"]);
    let four_classes = dir.path().join("four.toml");
    std::fs::write(&four_classes, TEACHER.replace("classes = 3", "classes = 4").replace("units = 3", "units = 4"))
        .unwrap();
    refuse(train(&path("good"), &four_classes.display().to_string()), &["four.toml", "3"]);
    let mut resize = train(&path("good"), &teacher);
    resize.extend(["--resize".into(), "squash".into()]);
    refuse(resize, &["squash", "stretch"]);

    // A resumed run converts pictures as it did; another --resize, which changes the
    // pixels of these wide pictures, is refused.
    for entry in walk(&good) {
        let wide = image::open(&entry).unwrap().resize_exact(16, 8, image::imageops::FilterType::Triangle);
        let wide = if entry.extension().unwrap() == "gif" { DynamicImage::from(wide.to_rgba8()) } else { wide };
        wide.save(&entry).unwrap();
    }
    let mut fit = train(&path("good"), &teacher);
    fit.extend(["--resize".into(), "fit".into()]);
    ok(&fit.iter().map(String::as_str).collect::<Vec<_>>());
    let resume = ["train", "teacher", "--config", &teacher, "--run", &path("run"), "--data", &path("good"), "--resume"];
    ok(&resume);
    refused(&[&resume[..], &["--resize", "stretch"]].concat(), &["--resize fit", "--resize stretch"]);
}

/// The files below `dir`, hidden ones (the cache) left out.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() { files.extend(walk(&path)) } else { files.push(path) }
    }
    files
}

/// An IDX set and the same images written out as numbered PNG files in train/ and test/
/// are one data set: the same pixels in the same order, the same training, and a
/// student on the PNG folder distils from a teacher trained on the IDX files.
#[test]
fn an_idx_set_written_as_png_files_is_the_same_data_set() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).display().to_string();
    write_idx(&dir.path().join("digits8"), (240, 60), [8, 8, 1], 3, 0);
    let png = dir.path().join("digits8-png");
    for (prefix, part) in [("train", "train"), ("t10k", "test")] {
        let read = |kind: &str| {
            std::fs::read(
                dir.path().join(format!("digits8/{prefix}-{kind}-idx{}-ubyte", if kind == "images" { 3 } else { 1 })),
            )
            .unwrap()
        };
        let (images, labels) = (read("images"), read("labels"));
        let (images, labels) = (&images[16..], &labels[8..]);
        for (i, (&label, pixels)) in labels.iter().zip(images.chunks(64)).enumerate() {
            let class = png.join(part).join(format!("class{label}"));
            std::fs::create_dir_all(&class).unwrap();
            GrayImage::from_raw(8, 8, pixels.to_vec()).unwrap().save(class.join(format!("{i:05}.png"))).unwrap();
        }
    }
    std::fs::write(dir.path().join("teacher.toml"), TEACHER).unwrap();
    std::fs::write(dir.path().join("student.toml"), STUDENT).unwrap();
    let teach = |data: &str, run: &str| {
        ok(&[
            "train",
            "teacher",
            "--config",
            &path("teacher.toml"),
            "--run",
            run,
            "--data",
            data,
            "--epochs",
            "2",
            "--batch",
            "16",
        ])
    };
    let (from_idx, _) = teach(&path("digits8"), &path("t-idx"));
    let (from_png, _) = teach(&png.display().to_string(), &path("t-png"));
    let accuracy = |text: &str| {
        let line = text.lines().find(|l| l.contains("test accuracy")).unwrap_or_default();
        line.split(" in ").next().unwrap_or_default().to_string()
    };
    assert_eq!(accuracy(&from_idx), accuracy(&from_png), "{from_idx}\n{from_png}");
    let (a, b) = (json(&dir.path().join("t-idx/run.json")), json(&dir.path().join("t-png/run.json")));
    assert_eq!(a["data"]["pixels_hash"], b["data"]["pixels_hash"]);
    assert_ne!(a["data"]["content_hash"], b["data"]["content_hash"]);
    ok(&[
        "train",
        "student",
        "--config",
        &path("student.toml"),
        "--method",
        "kd",
        "--teacher",
        &path("t-idx"),
        "--run",
        &path("s-png"),
        "--data",
        &png.display().to_string(),
        "--epochs",
        "1",
        "--batch",
        "16",
    ]);
}
