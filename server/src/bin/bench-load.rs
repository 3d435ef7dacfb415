//! `make bench`'s load generator and fake Claude (never part of what operators deploy).
//!
//! - `bench-load fake-claude` answers every Messages API request at once with a short
//!   reply and its usage, so Claude is never the bottleneck.
//! - `bench-load run` signs in 50 analysts, gives each a deal, and sends budgeted chat
//!   messages (`/api/chat/send`) at fixed arrival rates. The load is open-loop: call i
//!   of a step is due at `i / rate` seconds, and its latency counts from when it was
//!   due, not from when it could be sent, so a server that falls behind is charged for
//!   the queue it builds (the correction oha and wrk2 make). It reads the server's (and
//!   PostgreSQL's) CPU time and peak memory from /proc around each step.
//! - `bench-load compare` reads two result files and names every figure that got worse.
//!
//! One `oha` cannot sign in as 50 people (one cookie per process), hence this tool.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use tokio::sync::Semaphore;

const USAGE: &str = "usage:
  bench-load fake-claude [--listen 127.0.0.1:0]
  bench-load run --url URL --password P [--analysts 50] [--rates 25,250,500,1000]
                 [--seconds 10] [--server-pid PID] [--label sqlite] [--record FILE]
  bench-load compare BASELINE CURRENT";

/// Calls a step may have in flight: beyond this the generator counts a call as failed
/// rather than open ever more sockets (the server is far behind by then anyway).
const MAX_IN_FLIGHT: usize = 4_000;
/// The outcome of a call the server shed (503: it was busy, try again in a second).
const SHED: &str = "shed";
/// Longest a call may take before it counts as failed.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// A figure this much worse than the baseline's is a regression (the machines are noisy).
const REGRESSION_RATIO: f64 = 1.25;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("fake-claude") => fake_claude(flag(&args, "--listen").unwrap_or("127.0.0.1:0")).await,
        Some("run") => run(&args).await,
        Some("compare") if args.len() == 3 => compare(&args[1], &args[2]),
        _ => Err(USAGE.to_string()),
    };
    if let Err(problem) = result {
        eprintln!("bench-load: {problem}");
        std::process::exit(2);
    }
}

fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).map(String::as_str)
}

fn parsed<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> Result<T, String> {
    match flag(args, name) {
        Some(value) => value.parse().map_err(|_| format!("{name}: not a valid value: {value}")),
        None => Ok(default),
    }
}

/// The fake Claude: the same short reply to every request, at once, whole or as
/// server-sent events when the request asks to stream; `count_tokens` answers a count of
/// the request's text (about 3.5 characters a token, 4 per message, 10 of framing).
async fn fake_claude(listen: &str) -> Result<(), String> {
    const REPLY: &str = r#"{"id":"msg_bench","type":"message","role":"assistant","model":"claude-sonnet-5-5","content":[{"type":"text","text":"The cap rate is net operating income over price: about 6.1% here."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":640,"output_tokens":18}}"#;
    const STREAM: &str = concat!(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_bench\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-5-5\",\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":640,\"output_tokens\":1}}}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"The cap rate is net operating income \"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"over price: about 6.1% here.\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":18}}\n\n",
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    );
    let app = Router::new()
        .route(
            "/v1/messages",
            post(|body: String| async move {
                let streamed = serde_json::from_str::<serde_json::Value>(&body).is_ok_and(|b| b["stream"] == true);
                let (kind, reply) = if streamed { ("text/event-stream", STREAM) } else { ("application/json", REPLY) };
                ([(axum::http::header::CONTENT_TYPE, kind), (axum::http::HeaderName::from_static("request-id"), "req_bench")], reply)
            }),
        )
        .route(
            "/v1/messages/count_tokens",
            post(|body: axum::Json<serde_json::Value>| async move {
                let chars = |v: &serde_json::Value| v.as_str().map_or(0, |s| s.chars().count() as u64);
                let messages = body["messages"].as_array().map_or(&[][..], |m| m.as_slice());
                let text = chars(&body["system"]) + messages.iter().map(|m| chars(&m["content"])).sum::<u64>();
                axum::Json(serde_json::json!({"input_tokens": (text * 10).div_ceil(35) + 4 * messages.len() as u64 + 10}))
            }),
        );
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    println!("listening on {address}");
    axum::serve(listener, app).await.map_err(|e| e.to_string())
}

/// One analyst: a signed-in client and the deal it talks about.
struct Analyst {
    client: reqwest::Client,
    deal_id: i64,
}

async fn sign_in(url: &str, email: &str, password: &str, index: usize) -> Result<Analyst, String> {
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .pool_max_idle_per_host(1_000)
        .timeout(CALL_TIMEOUT)
        .build()
        .map_err(|e| e.to_string())?;
    let response = client.post(format!("{url}/api/login")).form(&[("email", email), ("password", password)]).send().await.map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("{email} cannot sign in: {}", response.status()));
    }
    let name = format!("Load deal {index:02}");
    let form = [("name", name.as_str()), ("address", "1 Bench St"), ("property_type", "Office"), ("asking_price", "25000000"), ("notes", "")];
    let response = client.post(format!("{url}/api/deals/create")).form(&form).send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    let body = response.text().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("{email} cannot create a deal: {status} {body}"));
    }
    let deal_id = body.trim().parse().map_err(|_| format!("deals/create answered {body}"))?;
    Ok(Analyst { client, deal_id })
}

/// What one step at one arrival rate measured.
struct Step {
    rate: u32,
    ok: usize,
    /// Calls the server refused at once because it was busy (503 `overloaded`): its load
    /// shedding at work, counted apart from the errors.
    shed: usize,
    failed: usize,
    /// Latency of successful calls from when each was due, in microseconds, sorted.
    latencies: Vec<u64>,
    seconds: f64,
    server_cpu_ms: f64,
    database_cpu_ms: f64,
    peak_rss_kb: u64,
}

impl Step {
    fn percentile(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let rank = ((p / 100.0) * self.latencies.len() as f64).ceil() as usize;
        self.latencies[rank.clamp(1, self.latencies.len()) - 1] as f64 / 1000.0
    }

    fn per_call(&self, cpu_ms: f64) -> f64 {
        if self.ok == 0 { f64::NAN } else { cpu_ms / self.ok as f64 }
    }
}

async fn run(args: &[String]) -> Result<(), String> {
    let url = flag(args, "--url").ok_or("--url is required")?.trim_end_matches('/').to_string();
    let password = flag(args, "--password").ok_or("--password is required")?;
    let analysts: usize = parsed(args, "--analysts", 50)?;
    let seconds: f64 = parsed(args, "--seconds", 10.0)?;
    let server_pid: Option<u32> = flag(args, "--server-pid").map(str::parse).transpose().map_err(|_| "--server-pid: not a number")?;
    let label = flag(args, "--label").unwrap_or("server");
    let rates: Vec<u32> = flag(args, "--rates")
        .unwrap_or("25,250,500,1000")
        .split(',')
        .map(|r| r.trim().parse().map_err(|_| format!("--rates: not a number: {r}")))
        .collect::<Result<_, _>>()?;

    let mut people = Vec::new();
    for i in 0..analysts {
        people.push(Arc::new(sign_in(&url, &format!("load-{i:02}@bench.dealdesk.test"), password, i).await?));
    }
    // A short warm-up (connections, caches, the first pages of the database) not counted.
    step(&url, &people, 25, 2.0, server_pid).await;
    let mut steps = Vec::new();
    for rate in rates {
        // `make profile` starts sampling on this line.
        eprintln!("  {label}: {rate}/s started");
        let measured = step(&url, &people, rate, seconds, server_pid).await;
        eprintln!("  {label}: {rate}/s done ({} ok, {} shed, {} failed)", measured.ok, measured.shed, measured.failed);
        steps.push(measured);
    }

    println!("{label}: /api/chat/send, {analysts} analysts, {seconds} s per rate, latency from when each call was due (ms)");
    println!("{:>8} {:>9} {:>8} {:>8} {:>8} {:>8} {:>7} {:>7} {:>11} {:>11} {:>9}", "offered", "achieved", "p50", "p95", "p99", "max", "shed", "errors", "server CPU", "db CPU", "peak RSS");
    for s in &steps {
        println!(
            "{:>6}/s {:>7.0}/s {:>8.2} {:>8.2} {:>8.2} {:>8.1} {:>7} {:>7} {:>8.3} ms {:>8.3} ms {:>6} MB",
            s.rate,
            s.ok as f64 / s.seconds,
            s.percentile(50.0),
            s.percentile(95.0),
            s.percentile(99.0),
            s.percentile(100.0),
            s.shed,
            s.failed,
            s.per_call(s.server_cpu_ms),
            s.per_call(s.database_cpu_ms),
            s.peak_rss_kb / 1024,
        );
    }
    if let Some(file) = flag(args, "--record") {
        let mut lines = String::new();
        for s in &steps {
            let name = |what: &str| format!("load.{label}.{}.{what}", s.rate);
            for (what, value) in [
                ("p50_ms", s.percentile(50.0)),
                ("p99_ms", s.percentile(99.0)),
                ("shed", s.shed as f64),
                ("errors", s.failed as f64),
                ("server_cpu_ms_per_call", s.per_call(s.server_cpu_ms)),
                ("db_cpu_ms_per_call", s.per_call(s.database_cpu_ms)),
                ("peak_rss_mb", (s.peak_rss_kb / 1024) as f64),
            ] {
                if value.is_finite() {
                    lines.push_str(&format!("{}\t{value:.3}\n", name(what)));
                }
            }
        }
        append(file, &lines)?;
    }
    Ok(())
}

fn append(file: &str, lines: &str) -> Result<(), String> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(file).map_err(|e| format!("{file}: {e}"))?;
    f.write_all(lines.as_bytes()).map_err(|e| format!("{file}: {e}"))
}

/// Sends `rate` calls a second for `seconds`, each at its due time, spread over the
/// analysts in turn; waits for the last to finish.
async fn step(url: &str, people: &[Arc<Analyst>], rate: u32, seconds: f64, server_pid: Option<u32>) -> Step {
    let total = (rate as f64 * seconds).round() as usize;
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let refused = Arc::new(AtomicUsize::new(0));
    let server_before = server_pid.map(process_cpu_ms).unwrap_or(0.0);
    let database_before = database_cpu_ms();
    let started = Instant::now();
    let mut calls = Vec::with_capacity(total);
    for i in 0..total {
        let due = started + Duration::from_secs_f64(i as f64 / rate as f64);
        tokio::time::sleep_until(due.into()).await;
        let Ok(permit) = in_flight.clone().try_acquire_owned() else {
            refused.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let analyst = people[i % people.len()].clone();
        let endpoint = format!("{url}/api/chat/send");
        calls.push(tokio::spawn(async move {
            let form = [("deal_id", analyst.deal_id.to_string()), ("message", format!("What cap rate does call {i} imply at the asking price?"))];
            let outcome = analyst.client.post(endpoint).form(&form).send().await;
            let failure = match outcome {
                Ok(response) if response.status().is_success() => response.bytes().await.err().map(|e| e.to_string()),
                Ok(response) => {
                    let status = response.status();
                    let body = response.text().await.unwrap_or_default();
                    let kind = serde_json::from_str::<serde_json::Value>(&body).ok().and_then(|v| v["kind"].as_str().map(str::to_string));
                    match kind {
                        Some(kind) if status == reqwest::StatusCode::SERVICE_UNAVAILABLE && kind == "overloaded" => Some(SHED.to_string()),
                        kind => Some(format!("{status} {}", kind.unwrap_or(body))),
                    }
                }
                Err(e) => Some(if e.is_timeout() { "timed out".to_string() } else { e.to_string() }),
            };
            drop(permit);
            match failure {
                None => Ok(due.elapsed().as_micros() as u64),
                Some(why) => Err(why),
            }
        }));
    }
    let mut latencies = Vec::with_capacity(total);
    let mut failed = refused.load(Ordering::Relaxed);
    let mut shed = 0;
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    if failed > 0 {
        reasons.insert(format!("over {MAX_IN_FLIGHT} calls in flight"), failed);
    }
    for call in calls {
        match call.await {
            Ok(Ok(latency)) => latencies.push(latency),
            Ok(Err(why)) if why == SHED => shed += 1,
            Ok(Err(why)) => {
                failed += 1;
                *reasons.entry(why).or_default() += 1;
            }
            Err(_) => failed += 1,
        }
    }
    for (why, count) in &reasons {
        eprintln!("  {rate}/s: {count} failed: {why}");
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    Step {
        rate,
        ok: latencies.len(),
        shed,
        failed,
        latencies,
        seconds: elapsed.max(seconds),
        server_cpu_ms: server_pid.map(process_cpu_ms).unwrap_or(0.0) - server_before,
        database_cpu_ms: database_cpu_ms() - database_before,
        peak_rss_kb: server_pid.map(peak_rss_kb).unwrap_or(0),
    }
}

/// User plus system CPU time of a process, in ms (the kernel counts 100 ticks a second).
fn process_cpu_ms(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0.0 };
    // Fields after the command name, which is in parentheses and may hold spaces.
    let Some((_, rest)) = stat.rsplit_once(')') else { return 0.0 };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after ')'.
    (ticks(11) + ticks(12)) * 10.0
}

/// CPU time of every PostgreSQL process on the machine (0 where there are none).
fn database_cpu_ms() -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0.0 };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "postgres"))
        .map(process_cpu_ms)
        .sum()
}

fn peak_rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

/// Reads a result file: one `name<TAB>value` per line (lower is better for every one).
fn read_results(file: &str) -> Result<BTreeMap<String, f64>, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
    let mut figures = BTreeMap::new();
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#')) {
        let (name, value) = line.split_once('\t').ok_or_else(|| format!("{file}:{}: not name<TAB>value", n + 1))?;
        let value: f64 = value.trim().parse().map_err(|_| format!("{file}:{}: not a number: {value}", n + 1))?;
        figures.insert(name.to_string(), value);
    }
    Ok(figures)
}

/// Prints every figure beside its baseline; fails when one is more than
/// `REGRESSION_RATIO` worse (and worse by more than a millisecond's worth of noise).
fn compare(baseline: &str, current: &str) -> Result<(), String> {
    let before = read_results(baseline)?;
    let after = read_results(current)?;
    let mut regressions = Vec::new();
    println!("{:<52} {:>12} {:>12} {:>8}", "figure (lower is better)", "baseline", "now", "change");
    for (name, now) in &after {
        let Some(then) = before.get(name) else {
            println!("{name:<52} {:>12} {now:>12.3} {:>8}", "-", "new");
            continue;
        };
        let change = if *then > 0.0 { format!("{:+.0}%", (now / then - 1.0) * 100.0) } else { "-".into() };
        let worse = *now > then * REGRESSION_RATIO && now - then > 1.0;
        println!("{name:<52} {then:>12.3} {now:>12.3} {change:>8}{}", if worse { "  REGRESSION" } else { "" });
        if worse {
            regressions.push(name.clone());
        }
    }
    if regressions.is_empty() {
        Ok(())
    } else {
        Err(format!("{} figure(s) more than {:.0}% worse than {baseline}: {}", regressions.len(), (REGRESSION_RATIO - 1.0) * 100.0, regressions.join(", ")))
    }
}
