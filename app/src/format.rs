//! How numbers read on screen, the same in the server and the browser: token counts,
//! dollars, prices, square feet, $/SF and percentages. "—" stands for "not known".

/// `1234567` → `1,234,567`.
pub fn format_tokens(n: u64) -> String {
    group_thousands(&n.to_string())
}

/// Whole dollars, `12500000` → `$12,500,000`.
pub fn format_price(price: Option<i64>) -> String {
    match price {
        None => "—".to_string(),
        Some(p) if p < 0 => format!("-${}", group_thousands(&p.unsigned_abs().to_string())),
        Some(p) => format!("${}", group_thousands(&p.to_string())),
    }
}

/// Micro-dollars as dollars: cents, or four decimals below one cent.
pub fn format_usd(microusd: i64) -> String {
    let usd = microusd as f64 / 1e6;
    if usd != 0.0 && usd.abs() < 0.01 { format!("${usd:.4}") } else { format!("${usd:.2}") }
}

/// A rate in micro-dollars per million tokens as USD: at least cents, and every
/// significant digit below them (`125_000` → `$0.125`).
pub fn format_rate(micro_per_mtok: u64) -> String {
    let cents = format!("${}.{:02}", group_thousands(&(micro_per_mtok / 1_000_000).to_string()), (micro_per_mtok % 1_000_000) / 10_000);
    let below = micro_per_mtok % 10_000;
    if below == 0 { cents } else { cents + format!("{below:04}").trim_end_matches('0') }
}

/// Whole dollars and cents of micro-dollars, grouped: `50_000_000` → `$50.00`.
pub fn format_dollars(microusd: i64) -> String {
    let cents = (microusd.unsigned_abs() + 5_000) / 10_000;
    let sign = if microusd < 0 && cents > 0 { "-" } else { "" };
    format!("{sign}${}.{:02}", group_thousands(&(cents / 100).to_string()), cents % 100)
}

/// Square feet, `98000` → `98,000`.
pub fn format_sf(sf: Option<i64>) -> String {
    sf.map_or("—".into(), |v| group_thousands(&v.max(0).to_string()))
}

/// Dollars per square foot, two decimals.
pub fn format_psf(price_per_sf: Option<f64>) -> String {
    price_per_sf.map_or("—".into(), |p| format!("${p:.2}"))
}

/// A percentage such as a cap rate, two decimals.
pub fn format_percent(percent: Option<f64>) -> String {
    percent.map_or("—".into(), |c| format!("{c:.2}%"))
}

fn group_thousands(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
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

    #[test]
    fn formats_counts_money_and_ratios() {
        assert_eq!(format_tokens(0), "0");
        assert_eq!(format_tokens(1_234_567), "1,234,567");
        assert_eq!(format_price(Some(12_500_000)), "$12,500,000");
        assert_eq!(format_price(Some(999)), "$999");
        assert_eq!(format_price(Some(1_000)), "$1,000");
        assert_eq!(format_rate(2_500_000), "$2.50");
        assert_eq!(format_rate(125_000), "$0.125");
        assert_eq!(format_rate(10_000), "$0.01");
        assert_eq!(format_rate(1), "$0.000001");
        assert_eq!(format_dollars(50_000_000), "$50.00");
        assert_eq!(format_dollars(1_234_567_890), "$1,234.57");
        assert_eq!(format_dollars(-4_999), "$0.00");
        assert_eq!(format_dollars(-5_000), "-$0.01");
        assert_eq!(format_price(None), "—");
        assert_eq!(format_usd(5_550_000), "$5.55");
        assert_eq!(format_usd(540), "$0.0005");
        assert_eq!(format_usd(0), "$0.00");
        assert_eq!(format_sf(Some(98_000)), "98,000");
        assert_eq!(format_psf(Some(250.0)), "$250.00");
        assert_eq!(format_percent(Some(6.25)), "6.25%");
        assert_eq!(format_percent(None), "—");
    }
}
