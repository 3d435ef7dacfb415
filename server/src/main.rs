//! The `server` binary: parses the command line (`cli.rs`) and runs the command.

use std::process::ExitCode;

use server::cli::{USAGE, parse_args, run};

#[tokio::main]
async fn main() -> ExitCode {
    return_large_allocations();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,sqlx=warn,tower_sessions=warn".into()))
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match parse_args(&args) {
        Ok(command) => command,
        Err(problem) => {
            eprintln!("{problem}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(problem) => {
            eprintln!("error: {problem}");
            ExitCode::FAILURE
        }
    }
}

/// Large allocations — argon2 takes 19 MiB for each password hash or check — are mapped
/// and unmapped each time. glibc otherwise raises its mapping threshold once the first
/// is freed, and later ones stay in the heaps of whichever threads made them: the
/// server's peak memory after 50 sign-ins was measured at 145 MB with the default and
/// 47 MB with this.
fn return_large_allocations() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a parameter of the allocator, under its own lock.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}
