//! Budgets: a per-user daily budget (admins exempt) and a per-deal lifetime budget that
//! warns at `warn_ratio` and blocks at 100%. Budget tokens are all input (cache writes
//! and reads included) plus output. The decisions here are pure; the gateway applies
//! them inside its admission transaction, so concurrent calls from any number of app
//! instances cannot overrun a budget by more than the estimation error of the calls in
//! flight. `store` holds the admin overrides, `service` the standing people see.

pub mod api;
#[cfg(feature = "ssr")]
pub mod service;
#[cfg(feature = "ssr")]
pub mod store;
pub mod view;

use serde::{Deserialize, Serialize};

use crate::error::AppError;
use crate::format::format_dollars;
use crate::limits::Limits;
use crate::usage::Window;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BudgetState {
    Ok,
    Warning,
    Blocked,
}

/// One budget's standing: tokens recorded, tokens reserved by calls in flight, limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meter {
    pub used: u64,
    pub reserved: u64,
    pub limit: u64,
}

impl Meter {
    pub fn committed(&self) -> u64 {
        self.used + self.reserved
    }

    pub fn remaining(&self) -> u64 {
        self.limit.saturating_sub(self.committed())
    }

    /// Share of the limit committed, 0.0 ..= (above 1 when overrun).
    pub fn ratio(&self) -> f64 {
        if self.limit == 0 { 1.0 } else { self.committed() as f64 / self.limit as f64 }
    }

    pub fn state(&self, warn_ratio: f64) -> BudgetState {
        if self.committed() >= self.limit {
            BudgetState::Blocked
        } else if self.ratio() >= warn_ratio {
            BudgetState::Warning
        } else {
            BudgetState::Ok
        }
    }
}

/// Which limit a meter stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "limit", content = "window")]
pub enum LimitKind {
    /// The deal's lifetime budget, in tokens.
    DealTokens,
    /// The caller's budget today, in tokens (none for admins).
    UserDailyTokens,
    /// The caller's budget this calendar month, in micro-dollars (none for admins).
    UserMonthlyUsd,
    /// A firm-wide cap on every user's calls, in tokens or in micro-dollars.
    FirmTokens(Window),
    FirmUsd(Window),
}

impl LimitKind {
    pub fn unit(self) -> Unit {
        match self {
            LimitKind::DealTokens | LimitKind::UserDailyTokens | LimitKind::FirmTokens(_) => Unit::Tokens,
            LimitKind::UserMonthlyUsd | LimitKind::FirmUsd(_) => Unit::MicroUsd,
        }
    }

    pub fn is_firm(self) -> bool {
        matches!(self, LimitKind::FirmTokens(_) | LimitKind::FirmUsd(_))
    }

    /// "the firm's daily cap", "your monthly budget", as sentences use them.
    pub fn describe(self) -> String {
        let window = |w: Window| match w {
            Window::Hour => "hourly",
            Window::Day => "daily",
            Window::Month => "monthly",
        };
        match self {
            LimitKind::DealTokens => "this deal's token budget".into(),
            LimitKind::UserDailyTokens => "your daily token budget".into(),
            LimitKind::UserMonthlyUsd => "your monthly budget".into(),
            LimitKind::FirmTokens(w) => format!("the firm's {} token cap", window(w)),
            LimitKind::FirmUsd(w) => format!("the firm's {} spending cap", window(w)),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    Tokens,
    MicroUsd,
}

/// One limit that applies to a call, with where it stands and when its window resets
/// (None for a deal's lifetime budget).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Limit {
    pub kind: LimitKind,
    /// In the kind's unit; a firm cap's `limit` is already lowered by its enforce ratio.
    pub meter: Meter,
    pub resets: Option<String>,
    /// Where the recent pace leads (for the budgets people plan by: a deal's, a user's
    /// month, the firm's day and month).
    #[serde(default)]
    pub forecast: Option<crate::forecast::Forecast>,
    /// For a token limit: what its used and reserved tokens cost, in micro-dollars, shown
    /// beside the tokens.
    #[serde(default)]
    pub cost_microusd: Option<u64>,
}

/// The levels of a firm-wide cap, as shares of its (enforced) value.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct FirmLevels {
    pub warning: f64,
    pub critical: f64,
    pub stop: f64,
    /// At the critical level, calls reserving more tokens than this are refused.
    pub critical_max_request_tokens: u64,
}

/// Where a firm-wide cap stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FirmLevel {
    Normal,
    Warning,
    Critical,
    Stop,
}

impl FirmLevels {
    pub fn level(&self, meter: &Meter) -> FirmLevel {
        let ratio = meter.ratio();
        if ratio >= self.stop {
            FirmLevel::Stop
        } else if ratio >= self.critical {
            FirmLevel::Critical
        } else if ratio >= self.warning {
            FirmLevel::Warning
        } else {
            FirmLevel::Normal
        }
    }
}

/// The call being admitted, in tokens and in micro-dollars.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallSize {
    /// The (calibrated) input estimate.
    pub input_tokens: u64,
    /// The most the call may write: its `max_tokens`.
    pub output_tokens: u64,
    /// What the input costs at the model's rates, in micro-dollars.
    pub input_microusd: u64,
    /// The model's output rate, micro-dollars per million tokens.
    pub output_rate: u64,
}

impl CallSize {
    /// The most the call may cost writing `output_tokens`, rounded up.
    pub fn cost(&self, output_tokens: u64) -> u64 {
        self.input_microusd + (u128::from(output_tokens) * u128::from(self.output_rate)).div_ceil(1_000_000) as u64
    }

    /// The most output a budget with `remaining` left lets the call write.
    fn output_within(&self, unit: Unit, remaining: u64) -> u64 {
        match unit {
            Unit::Tokens => remaining.saturating_sub(self.input_tokens),
            Unit::MicroUsd if self.output_rate == 0 => {
                if remaining >= self.input_microusd { u64::MAX } else { 0 }
            }
            Unit::MicroUsd => {
                let left = u128::from(remaining.saturating_sub(self.input_microusd));
                u64::try_from(left * 1_000_000 / u128::from(self.output_rate)).unwrap_or(u64::MAX)
            }
        }
    }
}

/// Why a call is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The user's daily token budget cannot take this call.
    DailyLimit,
    /// The deal's budget is used up (`exhausted`) or cannot take this call.
    DealBudget { exhausted: bool },
    /// The user's monthly budget cannot take this call.
    MonthlyBudget,
    /// A firm-wide cap: at its stop level, at its critical level for a call this large,
    /// or unable to take this call.
    FirmCap { kind: LimitKind, level: FirmLevel },
}

/// A call let through: `output_tokens` is its `max_tokens`, lowered when a budget could
/// take only part of what it asked for (`lowered_by` says which).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Admission {
    pub output_tokens: u64,
    pub lowered_by: Option<LimitKind>,
}

/// May `call` go ahead within `limits`? A deal whose budget is used up takes nothing; a
/// firm cap at its stop level takes nothing, and at its critical level nothing larger
/// than `critical_max_request_tokens`. Otherwise every limit must take the call's input
/// and output; when one can take its input but not all of its output, the call goes
/// ahead with its output lowered to what is left, if that is at least
/// `min_useful_output` (the last tokens of a budget are spent, not stranded).
pub fn admit(call: &CallSize, limits: &[Limit], firm: &FirmLevels, min_useful_output: u64) -> Result<Admission, Refusal> {
    for limit in limits {
        let refusal = |level| Refusal::FirmCap { kind: limit.kind, level };
        match limit.kind {
            LimitKind::DealTokens if limit.meter.committed() >= limit.meter.limit => return Err(Refusal::DealBudget { exhausted: true }),
            kind if kind.is_firm() => match firm.level(&limit.meter) {
                FirmLevel::Stop => return Err(refusal(FirmLevel::Stop)),
                FirmLevel::Critical if call.input_tokens + call.output_tokens > firm.critical_max_request_tokens => {
                    return Err(refusal(FirmLevel::Critical));
                }
                _ => {}
            },
            _ => {}
        }
    }
    let tightest = limits
        .iter()
        .map(|limit| (limit.kind, call.output_within(limit.kind.unit(), limit.meter.remaining())))
        .min_by_key(|&(_, output)| output);
    let Some((kind, allowed)) = tightest.filter(|&(_, allowed)| allowed < call.output_tokens) else {
        return Ok(Admission { output_tokens: call.output_tokens, lowered_by: None });
    };
    if min_useful_output <= call.output_tokens && allowed >= min_useful_output {
        return Ok(Admission { output_tokens: allowed, lowered_by: Some(kind) });
    }
    Err(match kind {
        LimitKind::DealTokens => Refusal::DealBudget { exhausted: false },
        LimitKind::UserDailyTokens => Refusal::DailyLimit,
        LimitKind::UserMonthlyUsd => Refusal::MonthlyBudget,
        kind => Refusal::FirmCap { kind, level: FirmLevel::Normal },
    })
}

/// The share left of the tightest of `limits` (remaining over limit; 0 for a budget of
/// nothing, 1 when there is no limit).
pub fn tightest_share(limits: &[Limit]) -> f64 {
    limits
        .iter()
        .map(|l| if l.meter.limit == 0 { 0.0 } else { l.meter.remaining() as f64 / l.meter.limit as f64 })
        .fold(1.0, f64::min)
}

/// The model tier for the tightest remaining share: the first tier whose share it is
/// above, else the last (which then takes only calls that fit).
pub fn model_tier(shares: &[f64], tightest: f64) -> usize {
    shares.iter().position(|share| tightest > *share).unwrap_or(shares.len().saturating_sub(1))
}

/// Budget-aware model choice as the caller's budgets stand: the tiers, which one the
/// next call gets, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelChoice {
    pub tiers: Vec<String>,
    pub shares: Vec<f64>,
}

impl ModelChoice {
    /// The tier a call gets with `limits` as they stand, and the limit that decided it.
    pub fn pick(&self, limits: &[Limit]) -> (usize, Option<LimitKind>) {
        let tightest = tightest_share(limits);
        let deciding = limits.iter().min_by(|a, b| share_of(a).total_cmp(&share_of(b))).map(|l| l.kind);
        (model_tier(&self.shares, tightest), deciding)
    }
}

fn share_of(limit: &Limit) -> f64 {
    if limit.meter.limit == 0 { 0.0 } else { limit.meter.remaining() as f64 / limit.meter.limit as f64 }
}

/// The one wording of each budget state: the deal page's banners (on every tab) and the
/// refusals of calls say the same thing, with dollars beside tokens.
pub mod wording {
    use super::{FirmLevel, Limit, LimitKind, Unit};
    use crate::format::{format_dollars, format_tokens};

    /// "100,000 tokens ($3.20 so far)" for a token limit whose cost is known.
    pub fn tokens_and_cost(tokens: u64, cost_microusd: Option<u64>) -> String {
        match cost_microusd {
            Some(cost) => format!("{} tokens ({} so far)", format_tokens(tokens), format_dollars(cost as i64)),
            None => format!("{} tokens", format_tokens(tokens)),
        }
    }

    /// What a limit's meter reads: committed of limit, and what that cost.
    pub fn amount(limit: &Limit, value: u64) -> String {
        match limit.kind.unit() {
            Unit::Tokens => format!("{} tokens", format_tokens(value)),
            Unit::MicroUsd => format_dollars(value as i64),
        }
    }

    pub fn deal_used_up(limit: &Limit) -> String {
        format!(
            "This deal's budget of {} is used up: no more Claude calls for it. An admin can raise it.",
            tokens_and_cost(limit.meter.limit, limit.cost_microusd)
        )
    }

    pub fn deal_warning(limit: &Limit) -> String {
        let spent = limit.cost_microusd.map_or(String::new(), |c| format!(", {} so far", format_dollars(c as i64)));
        format!("This deal has used {:.0}% of its {}-token budget{spent}.", (limit.meter.ratio() * 100.0).floor(), format_tokens(limit.meter.limit))
    }

    pub fn daily_used_up(limit: &Limit, resets: &str) -> String {
        format!("You have reached your daily limit of {}. It resets at {resets}.", tokens_and_cost(limit.meter.limit, limit.cost_microusd))
    }

    pub fn monthly_used_up(limit: &Limit, resets: &str) -> String {
        format!("Your {} monthly budget is used up. It resets at {resets}.", format_dollars(limit.meter.limit as i64))
    }

    /// A firm-wide cap past its warning level (None below it).
    pub fn firm(limit: &Limit, level: FirmLevel, critical_max_tokens: u64, resets: &str) -> Option<String> {
        let cap = limit.kind.describe();
        let pct = (limit.meter.ratio() * 100.0).floor();
        let used = match (limit.kind, limit.cost_microusd) {
            (LimitKind::FirmTokens(_), Some(cost)) => format!(" ({} tokens, {})", format_tokens(limit.meter.committed()), format_dollars(cost as i64)),
            _ => format!(" ({})", amount(limit, limit.meter.committed())),
        };
        match level {
            FirmLevel::Normal => None,
            FirmLevel::Warning => Some(format!("The firm has used {pct}% of {cap}{used}.")),
            FirmLevel::Critical => Some(format!(
                "The firm has used {pct}% of {cap}{used}: requests over {} tokens are refused until {resets}.",
                format_tokens(critical_max_tokens)
            )),
            FirmLevel::Stop => Some(format!("The firm has used {pct}% of {cap}{used}: Claude calls are paused until {resets}.")),
        }
    }
}

/// Why a call is refused, in a few words ("your daily token budget is used up until
/// midnight UTC, in 3 h"), for the pre-flight under the message box.
pub fn refusal_reason(refusal: Refusal, status: &BudgetStatus) -> String {
    let until = |kind: LimitKind| status.limit(kind).and_then(|l| l.resets.clone()).map_or(String::new(), |r| format!(" until {r}"));
    match refusal {
        Refusal::DailyLimit => format!("your daily token budget cannot take it{}", until(LimitKind::UserDailyTokens)),
        Refusal::DealBudget { exhausted: true } => "this deal's budget is used up (an admin can raise it)".into(),
        Refusal::DealBudget { exhausted: false } => "this deal's budget cannot take it (an admin can raise it)".into(),
        Refusal::MonthlyBudget => format!("your monthly budget cannot take it{}", until(LimitKind::UserMonthlyUsd)),
        Refusal::FirmCap { kind, level: FirmLevel::Stop } => format!("{} is reached; calls are paused{}", kind.describe(), until(kind)),
        Refusal::FirmCap { kind, level: FirmLevel::Critical } => format!(
            "{} is nearly reached; requests over {} tokens wait{}",
            kind.describe(),
            status.firm.critical_max_request_tokens,
            until(kind)
        ),
        Refusal::FirmCap { kind, .. } => format!("{} cannot take it{}", kind.describe(), until(kind)),
    }
}

/// The pre-flight line of a call and whether it can go ahead now: `estimate` (what the
/// call is expected to cost), then either why a budget refuses it, or what it reserves
/// and the share of each remaining budget that is, and a reply limit a budget's last
/// tokens impose. The chat box and the memo's Generate button say the same thing;
/// `action` names what is refused ("sent", "generated").
pub fn describe_admission(estimate: &str, action: &str, call: &CallSize, admitted: Result<Admission, Refusal>, status: &BudgetStatus) -> (String, bool) {
    let admission = match admitted {
        Ok(admission) => admission,
        Err(refusal) => return (format!("{estimate} · cannot be {action} now: {}.", refusal_reason(refusal, status)), false),
    };
    let reserve = call.input_tokens + admission.output_tokens;
    let share = |limit: &Limit| {
        let needs = match limit.kind.unit() {
            Unit::Tokens => reserve,
            Unit::MicroUsd => call.cost(admission.output_tokens),
        };
        match limit.meter.remaining() {
            0 => format!("none left of {}", limit.kind.describe()),
            left => format!("{:.1}% of what is left of {}", needs as f64 * 100.0 / left as f64, limit.kind.describe()),
        }
    };
    let shares: Vec<String> = status.limits.iter().map(share).collect();
    let mut text = format!(
        "{estimate} · reserves up to {} tokens ({})",
        crate::format::format_tokens(reserve),
        crate::format::format_usd(call.cost(admission.output_tokens) as i64)
    );
    if !shares.is_empty() {
        text.push_str(&format!(": {}", shares.join(", ")));
    }
    if let Some(kind) = admission.lowered_by {
        text.push_str(&format!(" · the reply will be limited to {} tokens by {}", crate::format::format_tokens(admission.output_tokens), kind.describe()));
    }
    (text, true)
}

/// What a call reserves: its (corrected) input estimate plus the most it may write.
pub fn reservation_tokens(estimated_input: u64, max_output: u32) -> u64 {
    estimated_input + u64::from(max_output)
}

/// The caller's budgets on a deal, as the deal page shows them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BudgetStatus {
    /// Every limit that applies to the caller's calls on this deal.
    pub limits: Vec<Limit>,
    pub deal_state: BudgetState,
    pub warn_ratio: f64,
    pub firm: FirmLevels,
    pub min_useful_output_tokens: u64,
    /// The least any call reserves (its operation's `max_tokens`): a budget with less
    /// left cannot take another call until it resets.
    pub smallest_call_tokens: u64,
    /// The caller's latest budget alert this month, if any ("You have used 75% …").
    pub alert: Option<String>,
    /// Budget-aware model choice, when it applies to the caller.
    #[serde(default)]
    pub model_choice: Option<ModelChoice>,
}

impl BudgetStatus {
    pub fn limit(&self, kind: LimitKind) -> Option<&Limit> {
        self.limits.iter().find(|l| l.kind == kind)
    }

    pub fn deal(&self) -> Meter {
        self.limit(LimitKind::DealTokens).map(|l| l.meter).unwrap_or_default()
    }

    /// Whether `call` could go ahead now (the server decides for real).
    pub fn admits(&self, call: &CallSize) -> Result<Admission, Refusal> {
        admit(call, &self.limits, &self.firm, self.min_useful_output_tokens)
    }

    /// Why no call at all can go ahead now, in the words of the page's banner: the deal's
    /// budget used up, the caller's day or month, a firm cap that pauses calls. None while
    /// some call could.
    pub fn blocked_reason(&self) -> Option<String> {
        let resets = |l: &Limit| l.resets.clone().unwrap_or_default();
        if let Some(deal) = self.limit(LimitKind::DealTokens).filter(|_| self.deal_state == BudgetState::Blocked) {
            return Some(wording::deal_used_up(deal));
        }
        if let Some(day) = self.limit(LimitKind::UserDailyTokens).filter(|l| l.meter.remaining() < self.smallest_call_tokens) {
            return Some(wording::daily_used_up(day, &resets(day)));
        }
        if let Some(month) = self.limit(LimitKind::UserMonthlyUsd).filter(|l| l.meter.remaining() < 1_000) {
            return Some(wording::monthly_used_up(month, &resets(month)));
        }
        self.limits
            .iter()
            .filter(|l| l.kind.is_firm() && self.firm.level(&l.meter) == FirmLevel::Stop)
            .find_map(|l| wording::firm(l, FirmLevel::Stop, self.firm.critical_max_request_tokens, &resets(l)))
    }
}

/// An analyst's own usage this month, as "My usage" shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MyUsage {
    /// `YYYY-MM` in `time.zone`.
    pub month: String,
    pub tokens: u64,
    pub spent_microusd: u64,
    pub calls: u64,
    /// The month's tokens and dollars at the pace of the last days (no limit: it never
    /// runs out).
    pub month_tokens: crate::forecast::Forecast,
    pub month_usd: crate::forecast::Forecast,
    /// The days the pace is measured over (`alerts.burn_window_days`).
    pub window_days: u32,
    /// Every limit on the caller's calls that is not a deal's, with forecasts.
    pub limits: Vec<Limit>,
    pub warn_ratio: f64,
}

/// How much of one budget is used: an analyst's this month (micro-dollars), or a deal's
/// over its life (tokens). `limit` None: no budget (no monthly budget for anyone and none
/// of the analyst's own); Some(0) is a budget that allows nothing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BudgetUse {
    pub id: i64,
    pub name: String,
    pub used: u64,
    pub limit: Option<u64>,
    pub unit: Unit,
}

impl BudgetUse {
    /// Used as a share of the budget: 0 without one, 1 for a budget of nothing.
    pub fn share(&self) -> f64 {
        match self.limit {
            None => 0.0,
            Some(0) => 1.0,
            Some(limit) => self.used as f64 / limit as f64,
        }
    }
}

/// Every analyst's monthly budget and every deal's budget, most used first.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BudgetUses {
    /// `YYYY-MM` the analysts' spend is of.
    pub month: String,
    pub users: Vec<BudgetUse>,
    pub deals: Vec<BudgetUse>,
    /// `budget.warn_ratio`: rows at or past it are marked.
    pub warn_ratio: f64,
}

/// Users and deals at or over a budget's warning level, keyed by id as the usage
/// dashboard's rows are.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BudgetFlags {
    pub users: Vec<(String, BudgetState)>,
    pub deals: Vec<(String, BudgetState)>,
    /// The firm's caps at or past their warning level.
    pub firm: Vec<(Limit, FirmLevel)>,
    /// Requests larger than this are refused at a cap's critical level.
    pub firm_critical_max_request_tokens: u64,
    /// The firm's monthly spending cap against this month's spend (None only from an
    /// older server).
    #[serde(default)]
    pub firm_month: Option<FirmMonthBudget>,
}

/// The firm's monthly spending cap (`limits.firm_monthly_usd`, as set, before any
/// enforce ratio) against what every call this calendar month has cost so far.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirmMonthBudget {
    /// `YYYY-MM` in `time.zone`.
    pub month: String,
    /// Micro-dollars recorded this month.
    pub spent_microusd: u64,
    /// Micro-dollars; None when no monthly cap is set.
    pub cap_microusd: Option<u64>,
}

impl FirmMonthBudget {
    /// The headline and the line under it: "$X of $Y left", "Over by $Z", or "No firm
    /// cap set", with what was spent.
    pub fn describe(&self) -> (String, String) {
        let money = |micro: u64| format_dollars(i64::try_from(micro).unwrap_or(i64::MAX));
        let spent = money(self.spent_microusd);
        match self.cap_microusd {
            None => ("No firm cap set".into(), format!("{spent} spent in {}", self.month)),
            Some(cap) if self.spent_microusd > cap => (
                format!("Over by {}", money(self.spent_microusd - cap)),
                format!("{spent} spent in {} against a cap of {}", self.month, money(cap)),
            ),
            Some(cap) => (format!("{} of {} left", money(cap - self.spent_microusd), money(cap)), format!("{spent} spent in {}", self.month)),
        }
    }

    /// The share of the cap spent, at most 1 (a cap of nothing is all spent).
    pub fn share_spent(&self) -> Option<f64> {
        self.cap_microusd.map(|cap| if cap == 0 { 1.0 } else { (self.spent_microusd as f64 / cap as f64).min(1.0) })
    }
}

/// Parses an admin's budget field: empty means "back to the default".
pub fn parse_budget(raw: &str) -> Result<Option<i64>, AppError> {
    let text: String = raw.trim().chars().filter(|c| *c != ',' && *c != '_').collect();
    if text.is_empty() {
        return Ok(None);
    }
    match text.parse::<i64>() {
        Ok(n) if (1..=1_000_000_000_000).contains(&n) => Ok(Some(n)),
        _ => Err(AppError::invalid("A budget is a whole number of tokens between 1 and 1,000,000,000,000, or empty for the default.")),
    }
}

/// A USD amount as admins write it (`50`, `$1,250.50`), in micro-dollars; empty is
/// None (the default applies).
pub fn parse_usd(raw: &str, field: &str) -> Result<Option<u64>, AppError> {
    let text: String = raw.trim().trim_start_matches('$').chars().filter(|c| *c != ',' && *c != '_' && !c.is_whitespace()).collect();
    if text.is_empty() {
        return Ok(None);
    }
    let refuse = || AppError::invalid(format!("{field}: write an amount in US dollars, such as 50 or 1,250.50 (at most 1,000,000,000)."));
    let (whole, cents) = text.split_once('.').unwrap_or((&text, ""));
    if whole.is_empty() && cents.is_empty() || !whole.chars().all(|c| c.is_ascii_digit()) || !cents.chars().all(|c| c.is_ascii_digit()) || cents.len() > 2 || whole.len() > 10 {
        return Err(refuse());
    }
    let whole: u64 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| refuse())? };
    let cents: u64 = format!("{cents:0<2}").parse().map_err(|_| refuse())?;
    let micro = whole * 1_000_000 + cents * 10_000;
    if micro > 1_000_000_000 * 1_000_000 {
        return Err(refuse());
    }
    Ok(Some(micro))
}

/// The /admin/limits form, field by field as typed (percentages for ratios).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LimitsForm {
    pub user_monthly_usd: String,
    /// e.g. `50, 75, 90`.
    pub user_monthly_alert_percents: String,
    pub firm_hourly_tokens: String,
    pub firm_daily_tokens: String,
    pub firm_monthly_tokens: String,
    pub firm_hourly_usd: String,
    pub firm_daily_usd: String,
    pub firm_monthly_usd: String,
    pub firm_enforce_percent: String,
    pub firm_warning_percent: String,
    pub firm_critical_percent: String,
    pub firm_stop_percent: String,
    pub firm_critical_max_request_tokens: String,
    pub user_requests_per_minute: String,
    pub user_requests_per_day: String,
    pub max_request_tokens: String,
    pub min_useful_output_tokens: String,
    /// `on` or `off`.
    pub model_choice: String,
    /// e.g. `claude-opus-5-5, claude-sonnet-5-5, claude-haiku-5-5`.
    pub model_tiers: String,
    /// e.g. `70, 30, 10`.
    pub model_tier_percents: String,
}

impl LimitsForm {
    /// The form filled with `limits`.
    pub fn of(limits: &Limits) -> LimitsForm {
        let usd = |v: f64| if v == 0.0 { String::new() } else { format!("{v:.2}") };
        let tokens = |v: u64| if v == 0 { String::new() } else { v.to_string() };
        let percent = |r: f64| format!("{}", (r * 1000.0).round() / 10.0);
        LimitsForm {
            user_monthly_usd: usd(limits.user_monthly_usd),
            user_monthly_alert_percents: limits.user_monthly_alert_ratios.iter().map(|r| percent(*r)).collect::<Vec<_>>().join(", "),
            firm_hourly_tokens: tokens(limits.firm_hourly_tokens),
            firm_daily_tokens: tokens(limits.firm_daily_tokens),
            firm_monthly_tokens: tokens(limits.firm_monthly_tokens),
            firm_hourly_usd: usd(limits.firm_hourly_usd),
            firm_daily_usd: usd(limits.firm_daily_usd),
            firm_monthly_usd: usd(limits.firm_monthly_usd),
            firm_enforce_percent: percent(limits.firm_enforce_ratio),
            firm_warning_percent: percent(limits.firm_warning_ratio),
            firm_critical_percent: percent(limits.firm_critical_ratio),
            firm_stop_percent: percent(limits.firm_stop_ratio),
            firm_critical_max_request_tokens: limits.firm_critical_max_request_tokens.to_string(),
            user_requests_per_minute: limits.user_requests_per_minute.to_string(),
            user_requests_per_day: limits.user_requests_per_day.to_string(),
            max_request_tokens: limits.max_request_tokens.to_string(),
            min_useful_output_tokens: limits.min_useful_output_tokens.to_string(),
            model_choice: if limits.model_choice { "on" } else { "off" }.to_string(),
            model_tiers: limits.model_tiers.join(", "),
            model_tier_percents: limits.model_tier_shares.iter().map(|r| percent(*r)).collect::<Vec<_>>().join(", "),
        }
    }

    /// The limits the form sets, checked; the first problem names its field. Empty
    /// caps and rate limits mean "none".
    pub fn parse(&self) -> Result<Limits, AppError> {
        let whole = |raw: &str, field: &str| -> Result<u64, AppError> {
            let text: String = raw.trim().chars().filter(|c| *c != ',' && *c != '_').collect();
            if text.is_empty() {
                return Ok(0);
            }
            text.parse::<u64>().map_err(|_| AppError::invalid(format!("{field}: write a whole number, or leave it empty for none.")))
        };
        let usd = |raw: &str, field: &str| -> Result<f64, AppError> { Ok(parse_usd(raw, field)?.unwrap_or(0) as f64 / 1_000_000.0) };
        let percent = |raw: &str, field: &str| -> Result<f64, AppError> {
            let text = raw.trim().trim_end_matches('%').trim();
            match text.parse::<f64>() {
                Ok(p) if p.is_finite() && p > 0.0 && p <= 100.0 => Ok(p / 100.0),
                _ => Err(AppError::invalid(format!("{field}: write a percentage above 0 and at most 100."))),
            }
        };
        let percents = |text: &str, field: &str| {
            text.split(',').map(str::trim).filter(|p| !p.is_empty()).map(|p| percent(p, field)).collect::<Result<Vec<f64>, AppError>>()
        };
        let alerts = percents(&self.user_monthly_alert_percents, "Monthly budget alerts")?;
        let model_choice = match self.model_choice.trim() {
            "on" => true,
            "off" | "" => false,
            _ => return Err(AppError::invalid("Model choice: on or off.")),
        };
        let u32_of = |raw: &str, field: &str| -> Result<u32, AppError> {
            u32::try_from(whole(raw, field)?).map_err(|_| AppError::invalid(format!("{field}: too large.")))
        };
        let limits = Limits {
            user_monthly_usd: usd(&self.user_monthly_usd, "Monthly budget per user")?,
            user_monthly_alert_ratios: alerts,
            firm_hourly_tokens: whole(&self.firm_hourly_tokens, "Firm tokens per hour")?,
            firm_daily_tokens: whole(&self.firm_daily_tokens, "Firm tokens per day")?,
            firm_monthly_tokens: whole(&self.firm_monthly_tokens, "Firm tokens per month")?,
            firm_hourly_usd: usd(&self.firm_hourly_usd, "Firm spend per hour")?,
            firm_daily_usd: usd(&self.firm_daily_usd, "Firm spend per day")?,
            firm_monthly_usd: usd(&self.firm_monthly_usd, "Firm spend per month")?,
            firm_enforce_ratio: percent(&self.firm_enforce_percent, "Enforce caps at")?,
            firm_warning_ratio: percent(&self.firm_warning_percent, "Warning level")?,
            firm_critical_ratio: percent(&self.firm_critical_percent, "Critical level")?,
            firm_stop_ratio: percent(&self.firm_stop_percent, "Stop level")?,
            firm_critical_max_request_tokens: whole(&self.firm_critical_max_request_tokens, "Largest request at the critical level")?,
            user_requests_per_minute: u32_of(&self.user_requests_per_minute, "Requests per user per minute")?,
            user_requests_per_day: u32_of(&self.user_requests_per_day, "Requests per user per day")?,
            max_request_tokens: whole(&self.max_request_tokens, "Largest request")?,
            min_useful_output_tokens: u32_of(&self.min_useful_output_tokens, "Smallest useful reply")?,
            model_choice,
            model_tiers: self.model_tiers.split(',').map(str::trim).filter(|m| !m.is_empty()).map(str::to_string).collect(),
            model_tier_shares: percents(&self.model_tier_percents, "Model tier shares")?,
        };
        limits.validate().map_err(|e| AppError::invalid(format!("{}: {}.", label_of(e.key), e.reason)))?;
        Ok(limits)
    }
}

/// The form's label of a `limits.…` key, for errors.
fn label_of(key: &str) -> &'static str {
    match key {
        "limits.user_monthly_usd" => "Monthly budget per user",
        "limits.user_monthly_alert_ratios" => "Monthly budget alerts",
        "limits.firm_hourly_usd" | "limits.firm_daily_usd" | "limits.firm_monthly_usd" => "Firm spending cap",
        "limits.firm_hourly_tokens" | "limits.firm_daily_tokens" | "limits.firm_monthly_tokens" => "Firm token cap",
        "limits.firm_enforce_ratio" => "Enforce caps at",
        "limits.firm_warning_ratio" | "limits.firm_critical_ratio" | "limits.firm_stop_ratio" => "Cap levels",
        "limits.firm_critical_max_request_tokens" => "Largest request at the critical level",
        "limits.max_request_tokens" => "Largest request",
        "limits.min_useful_output_tokens" => "Smallest useful reply",
        "limits.model_tiers" => "Model tiers",
        "limits.model_tier_shares" => "Model tier shares",
        _ => "Limits",
    }
}

/// What /admin/limits shows: the limits in force, and whether an admin set them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LimitsView {
    pub form: LimitsForm,
    /// True when an admin's saved limits apply (else the configured ones).
    pub saved: bool,
}

/// A deal's budget as the deals list shows it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct DealBudget {
    pub used: u64,
    pub limit: u64,
    pub state: BudgetState,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_firm_month_says_what_is_left_of_its_cap_or_by_how_much_it_is_over() {
        let month = |spent: u64, cap: Option<u64>| FirmMonthBudget { month: "2025-06".into(), spent_microusd: spent, cap_microusd: cap };
        assert_eq!(month(4_000_000, Some(10_000_000)).describe(), ("$6.00 of $10.00 left".into(), "$4.00 spent in 2025-06".into()));
        assert_eq!(month(0, Some(2_500_000_000)).describe().0, "$2,500.00 of $2,500.00 left");
        assert_eq!(month(10_000_000, Some(10_000_000)).describe().0, "$0.00 of $10.00 left");
        assert_eq!(
            month(12_345_678, Some(10_000_000)).describe(),
            ("Over by $2.35".into(), "$12.35 spent in 2025-06 against a cap of $10.00".into())
        );
        assert_eq!(month(7_000_000, None).describe(), ("No firm cap set".into(), "$7.00 spent in 2025-06".into()));
        assert_eq!(month(5, None).share_spent(), None);
        assert_eq!(month(5_000_000, Some(10_000_000)).share_spent(), Some(0.5));
        assert_eq!(month(20_000_000, Some(10_000_000)).share_spent(), Some(1.0));
        assert_eq!(month(0, Some(0)).share_spent(), Some(1.0), "a cap of nothing is all spent");
    }

    fn at_percent(pct: u64) -> Meter {
        Meter { used: pct * 10_000, reserved: 0, limit: 1_000_000 }
    }

    fn limit(kind: LimitKind, meter: Meter) -> Limit {
        Limit { kind, meter, resets: None, forecast: None, cost_microusd: None }
    }

    /// A call of `input` tokens in and `output` out, at $2 / $10 per MTok.
    fn call(input: u64, output: u64) -> CallSize {
        CallSize { input_tokens: input, output_tokens: output, input_microusd: input * 2, output_rate: 10_000_000 }
    }

    const FIRM: FirmLevels = FirmLevels { warning: 0.8, critical: 0.95, stop: 0.98, critical_max_request_tokens: 10_000 };
    const FULL: fn(&CallSize) -> Admission = |c| Admission { output_tokens: c.output_tokens, lowered_by: None };

    #[test]
    fn deal_state_at_79_80_99_100_101_percent() {
        assert_eq!(at_percent(79).state(0.8), BudgetState::Ok);
        assert_eq!(at_percent(80).state(0.8), BudgetState::Warning);
        assert_eq!(at_percent(99).state(0.8), BudgetState::Warning);
        assert_eq!(at_percent(100).state(0.8), BudgetState::Blocked);
        assert_eq!(at_percent(101).state(0.8), BudgetState::Blocked);
    }

    #[test]
    fn admission_at_79_80_99_100_101_percent_of_the_deal() {
        let c = call(500, 500);
        for pct in [79, 80, 99] {
            assert_eq!(admit(&c, &[limit(LimitKind::DealTokens, at_percent(pct))], &FIRM, 512), Ok(FULL(&c)), "{pct}%");
        }
        for pct in [100, 101] {
            assert_eq!(admit(&call(1, 0), &[limit(LimitKind::DealTokens, at_percent(pct))], &FIRM, 512), Err(Refusal::DealBudget { exhausted: true }), "{pct}%");
        }
        // At 99% a call whose input alone does not fit is refused though the deal is not yet blocked.
        assert_eq!(admit(&call(20_000, 1_000), &[limit(LimitKind::DealTokens, at_percent(99))], &FIRM, 512), Err(Refusal::DealBudget { exhausted: false }));
    }

    #[test]
    fn the_last_tokens_are_spent_with_a_lowered_max_tokens() {
        // 10,000 left on the deal; 4,000 in, 8,000 asked out: 6,000 are left for output.
        let deal = Meter { used: 90_000, reserved: 0, limit: 100_000 };
        let lowered = admit(&call(4_000, 8_000), &[limit(LimitKind::DealTokens, deal)], &FIRM, 512).unwrap();
        assert_eq!(lowered, Admission { output_tokens: 6_000, lowered_by: Some(LimitKind::DealTokens) });
        // Fewer than 512 left for output: refused.
        assert_eq!(admit(&call(9_600, 8_000), &[limit(LimitKind::DealTokens, deal)], &FIRM, 512), Err(Refusal::DealBudget { exhausted: false }));
        // A call that asks for less than the useful minimum must fit whole.
        assert_eq!(admit(&call(9_800, 300), &[limit(LimitKind::DealTokens, deal)], &FIRM, 512), Err(Refusal::DealBudget { exhausted: false }));
        assert!(admit(&call(9_700, 300), &[limit(LimitKind::DealTokens, deal)], &FIRM, 512).is_ok());
    }

    #[test]
    fn money_budgets_lower_output_at_the_output_rate() {
        // $1 left this month; 100,000 input tokens cost $0.20, so $0.80 buys 80,000 output tokens at $10 / MTok.
        let month = Meter { used: 49_000_000, reserved: 0, limit: 50_000_000 };
        let c = call(100_000, 128_000);
        assert_eq!(c.cost(128_000), 200_000 + 1_280_000);
        let lowered = admit(&c, &[limit(LimitKind::UserMonthlyUsd, month)], &FIRM, 512).unwrap();
        assert_eq!(lowered, Admission { output_tokens: 80_000, lowered_by: Some(LimitKind::UserMonthlyUsd) });
        // The call that would cross an exhausted budget is refused.
        let spent = Meter { used: 50_000_000, reserved: 0, limit: 50_000_000 };
        assert_eq!(admit(&call(10, 10), &[limit(LimitKind::UserMonthlyUsd, spent)], &FIRM, 512), Err(Refusal::MonthlyBudget));
    }

    #[test]
    fn the_tightest_limit_binds_and_names_the_refusal() {
        let deal = at_percent(10);
        let daily = Meter { used: 499_000, reserved: 0, limit: 500_000 };
        let c = call(600, 400);
        assert_eq!(admit(&c, &[limit(LimitKind::DealTokens, deal), limit(LimitKind::UserDailyTokens, daily)], &FIRM, 512), Ok(FULL(&c)));
        assert_eq!(
            admit(&call(601, 400), &[limit(LimitKind::DealTokens, deal), limit(LimitKind::UserDailyTokens, daily)], &FIRM, 512),
            Err(Refusal::DailyLimit)
        );
        // An admin has no daily meter; the deal budget still binds.
        assert_eq!(admit(&call(601, 400), &[limit(LimitKind::DealTokens, deal)], &FIRM, 512), Ok(FULL(&call(601, 400))));
        assert_eq!(admit(&call(1, 0), &[limit(LimitKind::DealTokens, at_percent(100))], &FIRM, 512), Err(Refusal::DealBudget { exhausted: true }));
    }

    #[test]
    fn firm_caps_warn_then_refuse_large_calls_then_every_call() {
        let firm = |pct: u64| limit(LimitKind::FirmTokens(Window::Day), at_percent(pct));
        let small = call(2_000, 4_000);
        let large = call(8_000, 4_000);
        assert_eq!(FIRM.level(&at_percent(79)), FirmLevel::Normal);
        assert_eq!(FIRM.level(&at_percent(80)), FirmLevel::Warning);
        assert_eq!(admit(&large, &[firm(80)], &FIRM, 512), Ok(FULL(&large)));
        assert_eq!(FIRM.level(&at_percent(95)), FirmLevel::Critical);
        assert_eq!(admit(&small, &[firm(95)], &FIRM, 512), Ok(FULL(&small)));
        assert_eq!(
            admit(&large, &[firm(95)], &FIRM, 512),
            Err(Refusal::FirmCap { kind: LimitKind::FirmTokens(Window::Day), level: FirmLevel::Critical })
        );
        assert_eq!(FIRM.level(&at_percent(98)), FirmLevel::Stop);
        assert_eq!(
            admit(&call(1, 1), &[firm(98)], &FIRM, 512),
            Err(Refusal::FirmCap { kind: LimitKind::FirmTokens(Window::Day), level: FirmLevel::Stop })
        );
    }

    #[test]
    fn reservations_count_until_settled() {
        let limit_tokens = 10_000;
        let mut deal = Meter { used: 0, reserved: 0, limit: limit_tokens };
        let each = reservation_tokens(1_500, 1_000);
        assert_eq!(each, 2_500);
        let mut admitted = 0;
        for _ in 0..10 {
            if admit(&call(1_500, 1_000), &[limit(LimitKind::DealTokens, deal)], &FIRM, 1_000).is_ok() {
                deal.reserved += each;
                admitted += 1;
            }
        }
        assert_eq!(admitted, 4, "4 × 2,500 fill 10,000 exactly");
        assert_eq!(deal.remaining(), 0);
        // Settling one: its reservation is replaced by what it really used.
        deal.reserved -= each;
        deal.used += 1_800;
        assert_eq!(deal.committed(), 9_300);
        assert!(admit(&call(0, 700), &[limit(LimitKind::DealTokens, deal)], &FIRM, 1_000).is_ok());
        assert!(admit(&call(0, 701), &[limit(LimitKind::DealTokens, deal)], &FIRM, 1_000).is_err());
    }

    #[test]
    fn dollar_amounts_parse_exactly() {
        assert_eq!(parse_usd("50", "x").unwrap(), Some(50_000_000));
        assert_eq!(parse_usd(" $1,250.5 ", "x").unwrap(), Some(1_250_500_000));
        assert_eq!(parse_usd("", "x").unwrap(), None);
        for bad in ["-5", "1.234", "ten", "1e3", "99999999999"] {
            assert!(parse_usd(bad, "x").is_err(), "{bad}");
        }
    }

    #[test]
    fn the_limits_form_round_trips_and_names_bad_fields() {
        let limits = Limits { firm_daily_usd: 500.0, firm_hourly_tokens: 2_000_000, ..Limits::default() };
        assert_eq!(LimitsForm::of(&limits).parse().unwrap(), limits);
        let bad = LimitsForm { firm_warning_percent: "120".into(), ..LimitsForm::of(&limits) };
        assert!(bad.parse().unwrap_err().message.contains("Warning level"));
        let unordered = LimitsForm { firm_critical_percent: "99.5".into(), ..LimitsForm::of(&limits) };
        assert!(unordered.parse().unwrap_err().message.contains("Cap levels"));
        let alerts = LimitsForm { user_monthly_alert_percents: "90, 50".into(), ..LimitsForm::of(&limits) };
        assert!(alerts.parse().unwrap_err().message.contains("Monthly budget alerts"));
    }

    #[test]
    fn the_model_tier_switches_at_70_30_and_10_percent_left() {
        let shares = [0.7, 0.3, 0.1];
        for (left, tier) in [(1.0, 0), (0.71, 0), (0.7, 1), (0.31, 1), (0.3, 2), (0.11, 2), (0.1, 2), (0.0, 2)] {
            assert_eq!(model_tier(&shares, left), tier, "{left}");
        }
        let monthly = limit(LimitKind::UserMonthlyUsd, Meter { used: 35, reserved: 0, limit: 100 });
        let deal = limit(LimitKind::DealTokens, Meter { used: 10, reserved: 0, limit: 100 });
        assert_eq!(tightest_share(&[deal.clone(), monthly.clone()]), 0.65);
        let choice = ModelChoice { tiers: vec!["opus".into(), "sonnet".into(), "haiku".into()], shares: shares.to_vec() };
        assert_eq!(choice.pick(&[deal, monthly]), (1, Some(LimitKind::UserMonthlyUsd)));
        assert_eq!(tightest_share(&[]), 1.0);
    }
}
