//! Budgets (SPEC 2): a per-user daily budget (admins exempt) and a per-deal lifetime
//! budget that warns at `warn_ratio` and blocks at 100%. Budget tokens are all input
//! (cache writes and reads included) plus output. The decisions here are pure; `service`
//! takes the reservation atomically in the database before every Claude call, so
//! concurrent calls from any number of app instances cannot overrun a budget by more
//! than the estimation error of the calls in flight.

pub mod api;
#[cfg(feature = "ssr")]
pub mod day;
#[cfg(feature = "ssr")]
pub mod service;

use serde::{Deserialize, Serialize};

use crate::claude::pricing::Rates;

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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The user's daily budget cannot take this call.
    DailyLimit,
    /// The deal's budget is used up (`exhausted`) or cannot take this call.
    DealBudget { exhausted: bool },
}

/// May a call reserving `tokens` go ahead? `daily` is None for users exempt from the
/// daily budget (admins). The deal budget applies to everyone.
pub fn admit(tokens: u64, daily: Option<&Meter>, deal: &Meter) -> Result<(), Refusal> {
    if deal.committed() >= deal.limit {
        return Err(Refusal::DealBudget { exhausted: true });
    }
    if let Some(daily) = daily {
        if daily.committed() + tokens > daily.limit {
            return Err(Refusal::DailyLimit);
        }
    }
    if deal.committed() + tokens > deal.limit {
        return Err(Refusal::DealBudget { exhausted: false });
    }
    Ok(())
}

/// What a call reserves: its (corrected) input estimate plus the most it may write.
pub fn reservation_tokens(estimated_input: u64, max_output: u32) -> u64 {
    estimated_input + u64::from(max_output)
}

/// Budget standing and pre-flight inputs for the chat tab.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BudgetStatus {
    /// None when the caller is exempt (admins).
    pub daily: Option<Meter>,
    pub deal: Meter,
    pub deal_state: BudgetState,
    pub warn_ratio: f64,
    /// e.g. "midnight UTC, in 3 h 12 min".
    pub daily_resets: String,
    /// For the browser's estimate: the system prompt's raw token estimate...
    pub system_tokens: u64,
    pub max_messages: u32,
    pub max_input_tokens: u64,
    pub max_output_tokens: u32,
    /// ...the current calibration of the estimator, and the model's prices.
    pub calibration: f64,
    pub rates: Rates,
    pub cooldown_seconds: u64,
}

/// A deal's budget as the deals list shows it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct DealBudget {
    pub used: u64,
    pub limit: u64,
    pub state: BudgetState,
}

pub fn format_tokens(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at_percent(pct: u64) -> Meter {
        Meter { used: pct * 10_000, reserved: 0, limit: 1_000_000 }
    }

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
        for pct in [79, 80, 99] {
            assert_eq!(admit(1_000, None, &at_percent(pct)), Ok(()), "{pct}%");
        }
        for pct in [100, 101] {
            assert_eq!(admit(1, None, &at_percent(pct)), Err(Refusal::DealBudget { exhausted: true }), "{pct}%");
        }
        // At 99% a call that would not fit is refused even though the deal is not yet blocked.
        assert_eq!(admit(20_000, None, &at_percent(99)), Err(Refusal::DealBudget { exhausted: false }));
    }

    #[test]
    fn daily_budget_binds_users_and_admins_are_exempt() {
        let deal = at_percent(10);
        let daily = Meter { used: 499_000, reserved: 0, limit: 500_000 };
        assert_eq!(admit(1_000, Some(&daily), &deal), Ok(()));
        assert_eq!(admit(1_001, Some(&daily), &deal), Err(Refusal::DailyLimit));
        // An admin's daily meter is not consulted...
        assert_eq!(admit(1_001, None, &deal), Ok(()));
        // ...but the deal budget blocks admins too.
        assert_eq!(admit(1, None, &at_percent(100)), Err(Refusal::DealBudget { exhausted: true }));
    }

    #[test]
    fn reservations_count_until_settled() {
        let limit = 10_000;
        let mut deal = Meter { used: 0, reserved: 0, limit };
        let each = reservation_tokens(1_500, 1_000);
        assert_eq!(each, 2_500);
        let mut admitted = 0;
        for _ in 0..10 {
            if admit(each, None, &deal).is_ok() {
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
        assert_eq!(admit(700, None, &deal), Ok(()));
        assert!(admit(701, None, &deal).is_err());
    }

    #[test]
    fn formats_token_counts() {
        assert_eq!(format_tokens(0), "0");
        assert_eq!(format_tokens(1_234_567), "1,234,567");
    }
}
