//! The `fitnets inspect` command on the committed tiny model and on bad input.

use std::path::PathBuf;
use std::process::Command;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tiny.fnet")
}

fn fitnets(args: &[&std::ffi::OsStr]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_fitnets")).args(args).output().unwrap();
    (out.status.success(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

#[test]
fn inspect_prints_layers_params_macs_and_arena() {
    let (ok, stdout, _) = fitnets(&["inspect".as_ref(), fixture().as_os_str()]);
    assert!(ok);
    // conv 3x3x1 -> 8 on 8x8: 72 weights + 8 biases, 72 * 64 MACs.
    assert!(stdout.contains("conv2d") && stdout.contains("80") && stdout.contains("4608"), "{stdout}");
    // 80 + 222 + 150 parameters; 4608 + 864 + 144 MACs.
    assert!(stdout.lines().any(|l| l.contains("total") && l.contains("452") && l.contains("5616")), "{stdout}");
    // The fused plan (see tests/tests/golden.rs): the first conv is the peak, its 9-value
    // window's weights padded to whole runs of 4 in the scratch (8 channels x 12 bytes).
    assert!(stdout.contains("arena     579 bytes"), "{stdout}");
}

#[test]
fn inspect_names_the_file_and_the_fault() {
    let dir = std::env::temp_dir().join(format!("fitnets-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.fnet");
    let mut bytes = std::fs::read(fixture()).unwrap();
    bytes.truncate(100);
    std::fs::write(&bad, &bytes).unwrap();
    let (ok, _, stderr) = fitnets(&["inspect".as_ref(), bad.as_os_str()]);
    assert!(!ok);
    assert!(stderr.contains("bad.fnet is not a valid model") && stderr.contains("checksum mismatch"), "{stderr}");
    let (ok, _, stderr) = fitnets(&["inspect".as_ref(), dir.join("missing.fnet").as_os_str()]);
    assert!(!ok);
    assert!(stderr.contains("reading") && stderr.contains("missing.fnet"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}
