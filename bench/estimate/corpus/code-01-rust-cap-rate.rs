/// Going-in cap rate and debt metrics for one deal.
pub struct Underwriting {
    pub price: f64,
    pub noi: f64,
    pub loan: f64,
    pub rate: f64,
    pub amort_years: u32,
}

impl Underwriting {
    pub fn cap_rate(&self) -> f64 {
        self.noi / self.price
    }

    pub fn annual_debt_service(&self) -> f64 {
        let r = self.rate / 12.0;
        let n = (self.amort_years * 12) as f64;
        let monthly = self.loan * r / (1.0 - (1.0 + r).powf(-n));
        monthly * 12.0
    }

    pub fn dscr(&self) -> Option<f64> {
        let ds = self.annual_debt_service();
        if ds <= 0.0 { None } else { Some(self.noi / ds) }
    }
}

#[test]
fn cap_rate_of_the_harborview_deal() {
    let u = Underwriting { price: 61_000_000.0, noi: 3_420_000.0, loan: 39_650_000.0, rate: 0.0685, amort_years: 30 };
    assert!((u.cap_rate() - 0.056).abs() < 1e-3);
    assert!(u.dscr().unwrap() > 1.0);
}
