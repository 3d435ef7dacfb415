//! The command line: `serve` (default) runs DealDesk; `user add` creates or updates an
//! account; `budget status|reset` and `prices list|set` are the operators' limit tools;
//! `usage seed|check|bench|bench-admission` their ledger tools.

use std::time::Duration;

use app::auth::UserRole;
use app::claude::client::Endpoint;
use app::settings::Settings;

pub const USAGE: &str = "usage:
  server [serve]                                      run DealDesk
  server user add --email E --password P [--admin] [--daily-budget TOKENS]
                                                      create or update a user
  server budget status [--user EMAIL] [--deal ID]     every limit that applies: used, reserved, remaining, reset
  server budget reset --user EMAIL --window day|month start the user's window afresh (an audited adjustment)
  server prices list                                  the price book (USD per million tokens)
  server prices set --model M --input USD --output USD [--cache-write-5m USD] [--cache-write-1h USD]
                    [--cache-read USD] [--from YYYY-MM-DD] [--long-above TOKENS --long-input USD
                    --long-output USD [--long-cache-write-5m USD] [--long-cache-write-1h USD]
                    [--long-cache-read USD]]          add a dated price (today or later)
  server usage seed --records N [--days D] [--one-deal] [--user EMAIL]
                                                      add N synthetic usage records (benchmarks)
  server usage check                                  verify aggregates and counters against the records
  server usage bench [--runs R]                       time the dashboard and the admission of a call
  server usage bench-admission [--runs R]             time only the admission of a call";

#[derive(Debug, PartialEq)]
pub enum Command {
    Serve,
    UserAdd { email: String, password: String, role: UserRole, daily_budget: Option<String> },
    BudgetStatus { user: Option<String>, deal: Option<i64> },
    BudgetReset { user: String, window: String },
    PricesList,
    PricesSet(crate::limit_tools::PriceArgs),
    UsageSeed { records: usize, days: i64, one_deal: bool, user: Option<String> },
    UsageCheck,
    UsageBench { runs: usize },
    UsageBenchAdmission { runs: usize },
    Help,
}

pub fn parse_args(args: &[String]) -> Result<Command, String> {
    match args.first().map(String::as_str) {
        None => Ok(Command::Serve),
        Some("serve") if args.len() == 1 => Ok(Command::Serve),
        Some("-h" | "--help" | "help") => Ok(Command::Help),
        Some("user") if args.get(1).map(String::as_str) == Some("add") => parse_user_add(&args[2..]),
        Some("usage") => parse_usage(args),
        Some("budget") => parse_budget(&args[1..]),
        Some("prices") => parse_prices(&args[1..]),
        Some(other) => Err(format!("unknown command {other}")),
    }
}

fn parse_user_add(args: &[String]) -> Result<Command, String> {
    let (mut email, mut password, mut role, mut daily_budget) = (None, None, UserRole::Analyst, None);
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        match flag.as_str() {
            "--email" => email = rest.next().cloned(),
            "--password" => password = rest.next().cloned(),
            "--admin" => role = UserRole::Admin,
            "--daily-budget" => daily_budget = Some(rest.next().cloned().unwrap_or_default()),
            other => return Err(format!("unknown option {other}")),
        }
    }
    match (email, password) {
        (Some(email), Some(password)) => Ok(Command::UserAdd { email, password, role, daily_budget }),
        _ => Err("user add needs --email and --password".into()),
    }
}

/// `--name value` pairs after a subcommand; every name must be one of `known`.
fn options(args: &[String], known: &[&str]) -> Result<std::collections::HashMap<String, String>, String> {
    let mut out = std::collections::HashMap::new();
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        if !known.contains(&flag.as_str()) {
            return Err(format!("unknown option {flag}"));
        }
        let value = rest.next().ok_or(format!("{flag} needs a value"))?;
        out.insert(flag.trim_start_matches("--").to_string(), value.clone());
    }
    Ok(out)
}

fn parse_budget(args: &[String]) -> Result<Command, String> {
    match args.first().map(String::as_str) {
        Some("status") => {
            let o = options(&args[1..], &["--user", "--deal"])?;
            let deal = o.get("deal").map(|d| d.parse::<i64>().map_err(|_| "--deal needs a deal id".to_string())).transpose()?;
            Ok(Command::BudgetStatus { user: o.get("user").cloned(), deal })
        }
        Some("reset") => {
            let o = options(&args[1..], &["--user", "--window"])?;
            match (o.get("user"), o.get("window")) {
                (Some(user), Some(window)) if window == "day" || window == "month" => Ok(Command::BudgetReset { user: user.clone(), window: window.clone() }),
                _ => Err("budget reset needs --user EMAIL and --window day|month".into()),
            }
        }
        _ => Err("budget needs status or reset".into()),
    }
}

fn parse_prices(args: &[String]) -> Result<Command, String> {
    match args.first().map(String::as_str) {
        Some("list") if args.len() == 1 => Ok(Command::PricesList),
        Some("set") => {
            let known = [
                "--model", "--input", "--output", "--cache-write-5m", "--cache-write-1h", "--cache-read", "--from", "--long-above", "--long-input",
                "--long-output", "--long-cache-write-5m", "--long-cache-write-1h", "--long-cache-read",
            ];
            let o = options(&args[1..], &known)?;
            let get = |k: &str| o.get(k).cloned().unwrap_or_default();
            if get("model").is_empty() || get("input").is_empty() || get("output").is_empty() {
                return Err("prices set needs --model, --input and --output".into());
            }
            Ok(Command::PricesSet(crate::limit_tools::PriceArgs {
                model: get("model"),
                from: get("from"),
                input: get("input"),
                output: get("output"),
                cache_write_5m: get("cache-write-5m"),
                cache_write_1h: get("cache-write-1h"),
                cache_read: get("cache-read"),
                long_above: get("long-above"),
                long: [get("long-input"), get("long-output"), get("long-cache-write-5m"), get("long-cache-write-1h"), get("long-cache-read")],
            }))
        }
        _ => Err("prices needs list or set".into()),
    }
}

fn parse_usage(args: &[String]) -> Result<Command, String> {
    let flag = |name: &str, default: u64| -> Result<u64, String> {
        match args.iter().position(|a| a == name) {
            None => Ok(default),
            Some(i) => args.get(i + 1).and_then(|v| v.replace('_', "").parse().ok()).ok_or(format!("{name} needs a number")),
        }
    };
    match args.get(1).map(String::as_str) {
        Some("seed") => Ok(Command::UsageSeed {
            records: flag("--records", 1_000_000)? as usize,
            days: flag("--days", 90)?.max(1) as i64,
            one_deal: args.iter().any(|a| a == "--one-deal"),
            user: args.iter().position(|a| a == "--user").and_then(|i| args.get(i + 1)).cloned(),
        }),
        Some("check") => Ok(Command::UsageCheck),
        Some("bench") => Ok(Command::UsageBench { runs: flag("--runs", 10)?.max(1) as usize }),
        Some("bench-admission") => Ok(Command::UsageBenchAdmission { runs: flag("--runs", 200)?.max(1) as usize }),
        _ => Err("usage needs seed, check, bench or bench-admission".into()),
    }
}

/// Runs a command; the error is what to print.
pub async fn run(command: Command) -> Result<(), String> {
    match command {
        Command::Help => {
            println!("{USAGE}");
            Ok(())
        }
        Command::Serve => serve().await,
        Command::UserAdd { email, password, role, daily_budget } => add_user(&email, &password, role, daily_budget.as_deref()).await,
        Command::BudgetStatus { user, deal } => {
            with_database(|db, s| async move { crate::limit_tools::status(&db, &s, user.as_deref(), deal).await }).await
        }
        Command::BudgetReset { user, window } => with_database(|db, s| async move { crate::limit_tools::reset(&db, &s, &user, &window).await }).await,
        Command::PricesList => with_database(|db, s| async move { crate::limit_tools::prices_list(&db, &s).await }).await,
        Command::PricesSet(args) => with_database(|db, s| async move { crate::limit_tools::prices_set(&db, &s, args).await }).await,
        Command::UsageSeed { records, days, one_deal, user } => {
            with_database(|db, s| async move { crate::usage_tools::seed(&db, &s, records, days, one_deal, user.as_deref()).await }).await
        }
        Command::UsageCheck => with_database(|db, s| async move { crate::usage_tools::check(&db, &s).await }).await,
        Command::UsageBench { runs } => with_state(|state| async move { crate::usage_tools::bench(&state, runs).await }).await,
        Command::UsageBenchAdmission { runs } => with_state(|state| async move { crate::usage_tools::bench_admission(&state, runs).await }).await,
    }
}

async fn serve() -> Result<(), String> {
    let settings = Settings::load().map_err(|e| e.to_string())?;
    let seeded = settings.demo.seed;
    let options = crate::leptos_options();
    let addr = options.site_addr;
    let endpoint = settings.claude_endpoint();
    let claude_label = match &endpoint {
        Endpoint::Offline { .. } => "offline model (set ANTHROPIC_API_KEY to use Claude)".to_string(),
        Endpoint::Http { base_url, .. } => format!("{} at {base_url}", settings.claude.model),
    };
    let database_url = settings.env.database_url.expose().to_string();
    let state = crate::prepare(settings, &database_url, options, endpoint).await.map_err(|e| e.to_string())?;
    crate::spawn_cleanup(state.db.clone(), state.settings.auth.lockout_minutes);
    if !state.settings.metrics.listen_addr.is_empty() {
        let metrics_addr = state.settings.metrics.listen_addr.clone();
        let metrics_listener = tokio::net::TcpListener::bind(&metrics_addr).await.map_err(|e| format!("cannot listen on {metrics_addr} for metrics: {e}"))?;
        println!("Metrics on http://{metrics_addr}/metrics");
        tokio::spawn(axum::serve(metrics_listener, crate::metrics_router(state.clone())).into_future());
    }
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    // The address bound, so port 0 (any free port) prints the port the system chose.
    let bound = listener.local_addr().map_err(|e| format!("cannot read the address listened on: {e}"))?;
    println!("DealDesk is listening on http://{bound}");
    println!("Claude: {claude_label}");
    if seeded {
        println!(
            "Demo accounts: {} / {} (admin), {} / {} (analyst)",
            crate::demo::ADMIN_EMAIL,
            crate::demo::ADMIN_PASSWORD,
            crate::demo::ANALYST_EMAIL,
            crate::demo::ANALYST_PASSWORD
        );
    }
    crate::serve(listener, state, shutdown_signal()).await;
    Ok(())
}

/// Ctrl-C or SIGTERM (what service managers send) starts a graceful shutdown.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
}

async fn add_user(email: &str, password: &str, role: UserRole, daily_budget: Option<&str>) -> Result<(), String> {
    use app::budget::store::{Override, set_override};
    let budget = daily_budget.map(app::budget::parse_budget).transpose().map_err(|e| e.message)?.flatten();
    with_database(|db, settings| async move {
        let passwords = app::passwords::Passwords::new(settings.auth.password_checks_in_parallel as usize).await.map_err(|e| e.message)?;
        let id = app::auth::service::upsert_user(&db, &passwords, email, password, role).await.map_err(|e| e.message)?;
        let mut tx = db.begin_write().await.map_err(|e| e.to_string())?;
        set_override(&mut tx, Override::UserDaily, id, budget).await.map_err(|e| e.to_string())?;
        let subject = format!("user {}", app::auth::normalize_email(email));
        let new = format!("saved ({}, daily budget {})", role.as_str(), budget.map_or("default".into(), |b| b.to_string()));
        app::audit::store::record(&mut tx, &app::audit::Actor::cli(), app::time::now_millis(), &subject, "—", &new).await.map_err(|e| e.to_string())?;
        tx.commit().await.map_err(|e| e.to_string())?;
        println!("user {id} ({}) saved as {}", app::auth::normalize_email(email), role.as_str());
        Ok(())
    })
    .await
}

/// Runs a command against the configured database (migrated first).
async fn with_database<F, Fut>(run: F) -> Result<(), String>
where
    F: FnOnce(app::db::Db, Settings) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let settings = Settings::load().map_err(|e| e.to_string())?;
    let db = app::db::Db::connect(settings.env.database_url.expose()).await.map_err(|e| e.to_string())?;
    db.migrate().await.map_err(|e| e.to_string())?;
    run(db, settings).await
}

/// Runs a command that needs the whole app state (offline model, no demo data).
async fn with_state<F, Fut>(run: F) -> Result<(), String>
where
    F: FnOnce(app::state::AppState) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let mut settings = Settings::load().map_err(|e| e.to_string())?;
    settings.demo.seed = false;
    let database_url = settings.env.database_url.expose().to_string();
    let offline = Endpoint::Offline { delay: Duration::ZERO };
    let state = crate::prepare(settings, &database_url, crate::leptos_options(), offline).await.map_err(|e| e.to_string())?;
    run(state).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn parses_every_command() {
        assert_eq!(parse_args(&args("")), Ok(Command::Serve));
        assert_eq!(parse_args(&args("serve")), Ok(Command::Serve));
        assert_eq!(parse_args(&args("usage check")), Ok(Command::UsageCheck));
        assert_eq!(parse_args(&args("usage seed --records 1_000 --one-deal")), Ok(Command::UsageSeed { records: 1000, days: 90, one_deal: true, user: None }));
        assert_eq!(
            parse_args(&args("user add --email a@b.c --password pw --admin")),
            Ok(Command::UserAdd { email: "a@b.c".into(), password: "pw".into(), role: UserRole::Admin, daily_budget: None })
        );
        assert!(parse_args(&args("user add --email a@b.c")).is_err());
        assert!(parse_args(&args("usage seed --records lots")).is_err());
        assert!(parse_args(&args("launch")).is_err());
        assert_eq!(parse_args(&args("budget status --user a@b.c --deal 4")), Ok(Command::BudgetStatus { user: Some("a@b.c".into()), deal: Some(4) }));
        assert_eq!(parse_args(&args("budget reset --user a@b.c --window month")), Ok(Command::BudgetReset { user: "a@b.c".into(), window: "month".into() }));
        assert!(parse_args(&args("budget reset --user a@b.c --window year")).is_err());
        assert!(parse_args(&args("budget status --deal four")).is_err());
        assert_eq!(parse_args(&args("prices list")), Ok(Command::PricesList));
        let Ok(Command::PricesSet(p)) = parse_args(&args("prices set --model m --input 1 --output 5 --from 2027-01-01")) else { panic!() };
        assert_eq!((p.model.as_str(), p.input.as_str(), p.from.as_str()), ("m", "1", "2027-01-01"));
        assert!(parse_args(&args("prices set --model m --input 1")).is_err());
        assert!(parse_args(&args("prices set --model m --input 1 --output 2 --colour red")).is_err());
    }
}
