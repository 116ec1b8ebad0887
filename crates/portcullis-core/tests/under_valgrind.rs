//! The system clock works in a process run by valgrind, which gives the program no
//! vDSO: reading the kernel's coarse clock must not depend on finding one.
//!
//! The test runs itself again under `valgrind --tool=none`; without valgrind on the
//! machine it says so and passes.

use std::{process::Command, time::SystemTime};

use portcullis_core::clock::{Clock, SystemClock};

const CHILD: &str = "PORTCULLIS_UNDER_VALGRIND";

#[test]
fn system_clock_reads_under_valgrind() {
    if std::env::var_os(CHILD).is_some() {
        let before = SystemTime::now();
        assert!(SystemClock.now_or_later() >= before);
        return;
    }
    if Command::new("valgrind").arg("--version").output().is_err() {
        eprintln!("skipped: valgrind is not installed");
        return;
    }
    let me = std::env::current_exe().expect("the test binary's path");
    let out = Command::new("valgrind")
        .args(["--tool=none", "--quiet"])
        .arg(me)
        .args([
            "--exact",
            "system_clock_reads_under_valgrind",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .output()
        .expect("valgrind runs");
    assert!(
        out.status.success(),
        "under valgrind: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}
