import numpy as np

def irr(cash_flows, lo=-0.99, hi=1.0, tol=1e-7):
    """Internal rate of return by bisection; cash_flows[0] is the (negative) equity."""
    def npv(rate):
        return sum(cf / (1 + rate) ** t for t, cf in enumerate(cash_flows))
    for _ in range(200):
        mid = (lo + hi) / 2
        if npv(mid) > 0:
            lo = mid
        else:
            hi = mid
        if hi - lo < tol:
            break
    return (lo + hi) / 2

noi = np.array([3.42, 3.61, 3.84, 3.95, 4.07, 4.19]) * 1e6
exit_value = noi[-1] / 0.055
flows = [-25_146_000] + list(noi[:5] - 2_549_972)
flows[-1] += exit_value * 0.98 - 29_268_114
print(f"levered IRR: {irr(flows):.2%}")
