//! The `server` binary's start-up contract: bad settings and unusable databases stop it
//! with a message naming the problem; `user add` creates accounts.

use std::process::Command;

fn server() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_server"));
    cmd.env_remove("DATABASE_URL").env("DEALDESK_CONFIG", "/nonexistent/Leptos.toml");
    cmd
}

fn temp_sqlite_url() -> (String, std::path::PathBuf) {
    let path = std::env::temp_dir().join(format!("dealdesk_cli_{}.db", rand::random::<u64>()));
    (format!("sqlite://{}?mode=rwc", path.display()), path)
}

#[test]
fn a_missing_settings_file_named_explicitly_stops_start_up() {
    let out = server().output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent/Leptos.toml"), "{stderr}");
}

#[test]
fn an_invalid_setting_stops_start_up_naming_the_key() {
    let out = server()
        .env_remove("DEALDESK_CONFIG")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("APP_BUDGET__WARN_RATIO", "1.7")
        .env("DATABASE_URL", "sqlite::memory:")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("budget.warn_ratio"), "{stderr}");
}

#[test]
fn an_unreachable_database_stops_start_up() {
    let out = server()
        .env_remove("DEALDESK_CONFIG")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("DATABASE_URL", "mysql://localhost/nope")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("DATABASE_URL"), "{stderr}");
}

#[test]
fn user_add_creates_and_updates_accounts() {
    let (url, path) = temp_sqlite_url();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_server")).env("DATABASE_URL", &url).args(args).output().unwrap()
    };
    let out = run(&["user", "add", "--email", "Ops@Firm.com", "--password", "a long password", "--admin"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("ops@firm.com) saved as admin"));

    let out = run(&["user", "add", "--email", "ops@firm.com", "--password", "short"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 8 characters"));

    let out = run(&["user", "add", "--email", "ops@firm.com"]);
    assert_eq!(out.status.code(), Some(2));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}
