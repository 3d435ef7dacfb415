//! The `server` binary: `serve` (default) runs DealDesk; `user add` creates or updates
//! an account for bootstrapping and scripts.

use std::process::ExitCode;

use std::time::Duration;

use app::auth::Role;
use app::claude::client::Endpoint;
use app::settings::Settings;

const USAGE: &str = "usage:
  server [serve]                                      run DealDesk
  server user add --email E --password P [--admin] [--daily-budget TOKENS]
                                                      create or update a user
  server usage seed --records N [--days D]           add N synthetic usage records (benchmarks)
  server usage check                                  verify daily aggregates against the records
  server usage bench [--runs R]                       time the dashboard's queries";

enum Command {
    Serve,
    UserAdd { email: String, password: String, role: Role, daily_budget: Option<String> },
    UsageSeed { records: usize, days: i64 },
    UsageCheck,
    UsageBench { runs: usize },
    Help,
}

fn parse_args(args: &[String]) -> Result<Command, String> {
    match args.first().map(String::as_str) {
        None | Some("serve") if args.len() <= 1 => Ok(Command::Serve),
        Some("-h" | "--help" | "help") => Ok(Command::Help),
        Some("user") if args.get(1).map(String::as_str) == Some("add") => {
            let (mut email, mut password, mut role, mut daily_budget) = (None, None, Role::Analyst, None);
            let mut rest = args[2..].iter();
            while let Some(flag) = rest.next() {
                match flag.as_str() {
                    "--email" => email = rest.next().cloned(),
                    "--password" => password = rest.next().cloned(),
                    "--admin" => role = Role::Admin,
                    "--daily-budget" => daily_budget = Some(rest.next().cloned().unwrap_or_default()),
                    other => return Err(format!("unknown option {other}")),
                }
            }
            match (email, password) {
                (Some(email), Some(password)) => Ok(Command::UserAdd { email, password, role, daily_budget }),
                _ => Err("user add needs --email and --password".into()),
            }
        }
        Some("usage") => {
            let flag = |name: &str, default: u64| -> Result<u64, String> {
                match args.iter().position(|a| a == name) {
                    None => Ok(default),
                    Some(i) => args.get(i + 1).and_then(|v| v.replace('_', "").parse().ok()).ok_or(format!("{name} needs a number")),
                }
            };
            match args.get(1).map(String::as_str) {
                Some("seed") => Ok(Command::UsageSeed { records: flag("--records", 1_000_000)? as usize, days: flag("--days", 90)?.max(1) as i64 }),
                Some("check") => Ok(Command::UsageCheck),
                Some("bench") => Ok(Command::UsageBench { runs: flag("--runs", 10)?.max(1) as usize }),
                _ => Err("usage needs seed, check or bench".into()),
            }
        }
        Some(other) => Err(format!("unknown command {other}")),
        None => Ok(Command::Serve),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,tower_sessions=warn".into()),
        )
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match parse_args(&args) {
        Ok(command) => command,
        Err(problem) => {
            eprintln!("{problem}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = match command {
        Command::Help => {
            println!("{USAGE}");
            Ok(())
        }
        Command::Serve => serve().await,
        Command::UserAdd { email, password, role, daily_budget } => {
            add_user(&email, &password, role, daily_budget.as_deref()).await
        }
        Command::UsageSeed { records, days } => usage_command(|db, s| async move {
            app::usage::seed::seed(&db, &s, records, days).await.map_err(|e| e.message)
        })
        .await,
        Command::UsageCheck => usage_command(|db, s| async move {
            let rows = app::usage::seed::check(&db, &s).await?;
            println!("daily aggregates agree with the raw records ({rows} aggregate rows)");
            Ok(())
        })
        .await,
        Command::UsageBench { runs } => usage_command(|db, s| async move {
            app::usage::seed::bench(&db, &s, runs).await.map_err(|e| e.message)
        })
        .await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(problem) => {
            eprintln!("error: {problem}");
            ExitCode::FAILURE
        }
    }
}

async fn serve() -> Result<(), String> {
    let settings = Settings::load().map_err(|e| e.to_string())?;
    let seeded = settings.demo.seed;
    let options = server::leptos_options();
    let addr = options.site_addr;
    let endpoint = Endpoint::from_env(Duration::from_millis(settings.claude.offline_delay_ms));
    let claude_label = match &endpoint {
        Endpoint::Offline { .. } => "offline model (set ANTHROPIC_API_KEY to use Claude)".to_string(),
        Endpoint::Http { base_url, .. } => format!("{} at {base_url}", settings.claude.model),
    };
    let state = server::prepare(settings, &server::database_url(), options, endpoint)
        .await
        .map_err(|e| e.to_string())?;
    server::spawn_session_cleanup(state.db.clone());
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    println!("DealDesk is listening on http://{addr}");
    println!("Claude: {claude_label}");
    if seeded {
        println!(
            "Demo accounts: {} / {} (admin), {} / {} (analyst)",
            app::demo::ADMIN_EMAIL,
            app::demo::ADMIN_PASSWORD,
            app::demo::ANALYST_EMAIL,
            app::demo::ANALYST_PASSWORD
        );
    }
    axum::serve(listener, server::router(state))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| format!("server stopped: {e}"))
}

async fn add_user(email: &str, password: &str, role: Role, daily_budget: Option<&str>) -> Result<(), String> {
    let budget = daily_budget.map(app::budget::api::parse_budget).transpose().map_err(|e| e.message)?.flatten();
    let db = app::db::Db::connect(&server::database_url()).await.map_err(|e| e.to_string())?;
    db.migrate().await.map_err(|e| e.to_string())?;
    let id = app::auth::ssr::upsert_user(&db, email, password, role)
        .await
        .map_err(|e| e.message)?;
    sqlx::query("UPDATE users SET daily_token_budget = $1 WHERE id = $2")
        .bind(budget)
        .bind(id)
        .execute(&db.pool)
        .await
        .map_err(|e| format!("setting the daily budget: {e}"))?;
    println!("user {id} ({}) saved as {}", email.trim().to_lowercase(), role.as_str());
    Ok(())
}

/// Runs a `usage` subcommand against `DATABASE_URL` (migrated first).
async fn usage_command<F, Fut>(run: F) -> Result<(), String>
where
    F: FnOnce(app::db::Db, Settings) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let settings = Settings::load().map_err(|e| e.to_string())?;
    let db = app::db::Db::connect(&server::database_url()).await.map_err(|e| e.to_string())?;
    db.migrate().await.map_err(|e| e.to_string())?;
    run(db, settings).await
}
